"""REST views that manage endpoints (the owner's session or API token): endpoints, versions (publish,
pin, unpin, roll back), API keys (created and shown once, revoked), metrics (JSON for the UI and
Prometheus text), ONNX download, and ``POST /api/runs/<id>/publish``.

The prediction routes themselves are async views in ``webapp.endpoints.serving``.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.core import prometheus
from webapp.core.exceptions import InvalidInput
from webapp.endpoints import selectors, services
from webapp.endpoints.models import NAME_PATTERN, ApiKey, Endpoint, ModelVersion
from webapp.runs.models import Run
from webapp.serving import metrics as serving_metrics
from webapp.serving import runtime as serving


class ModelVersionSerializer(serializers.ModelSerializer):
    is_default = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = ["number", "state", "error", "run", "created_at", "weights_sha256", "input_schema", "source",
                  "is_default"]
        read_only_fields = fields

    def get_is_default(self, version: ModelVersion) -> bool:
        return version.endpoint.default_version_id == version.pk


class EndpointSerializer(serializers.ModelSerializer):
    default_version = serializers.IntegerField(source="default_version.number", read_only=True, allow_null=True,
                                               default=None)
    versions = serializers.SerializerMethodField()
    urls = serializers.SerializerMethodField()

    class Meta:
        model = Endpoint
        fields = ["id", "name", "description", "default_version", "pinned", "max_batch_size", "max_queue_delay_ms",
                  "max_queue_size", "created_at", "updated_at", "versions", "urls"]
        read_only_fields = fields

    def get_versions(self, endpoint: Endpoint) -> list[int]:
        return sorted((version.number for version in endpoint.versions.all()), reverse=True)

    def get_urls(self, endpoint: Endpoint) -> dict[str, str | None]:
        base = f"/api/v1/endpoints/{endpoint.name}"
        return {"predict": f"{base}/predict", "metadata": f"{base}/metadata", "health": f"{base}/health",
                "ready": f"{base}/ready", "v2_infer": f"/v2/models/{endpoint.name}/infer",
                "grpc_method": "netforge.serving.v1.PredictionService/Predict",
                "grpc_port": str(settings.NETFORGE_GRPC_PORT) if settings.NETFORGE_GRPC_PORT else None}


class EndpointCreateSerializer(serializers.Serializer):
    name = serializers.RegexField(NAME_PATTERN, max_length=64,
                                  help_text="lowercase letters, digits and dashes; part of every prediction URL")
    description = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)
    max_batch_size = serializers.IntegerField(required=False, min_value=1, max_value=1024, default=32)
    max_queue_delay_ms = serializers.FloatField(required=False, min_value=0.0, max_value=1000.0, default=1.0)
    max_queue_size = serializers.IntegerField(required=False, min_value=1, max_value=100_000, default=256)


class EndpointUpdateSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    max_batch_size = serializers.IntegerField(required=False, min_value=1, max_value=1024)
    max_queue_delay_ms = serializers.FloatField(required=False, min_value=0.0, max_value=1000.0)
    max_queue_size = serializers.IntegerField(required=False, min_value=1, max_value=100_000)


class PublishSerializer(serializers.Serializer):
    run = serializers.IntegerField(help_text="id of one of your succeeded runs")


class RunPublishSerializer(serializers.Serializer):
    endpoint = serializers.RegexField(NAME_PATTERN, max_length=64,
                                      help_text="the endpoint's name; created (yours) when it does not exist")
    description = serializers.CharField(required=False, default="", allow_blank=True, max_length=5000)


class ApiKeySerializer(serializers.ModelSerializer):
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "revoked_at", "active"]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="the key itself: shown only in this response")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=100)


class MetricsPointSerializer(serializers.Serializer):
    minute = serializers.DateTimeField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    mean_latency_ms = serializers.FloatField(allow_null=True)
    p50_latency_ms = serializers.FloatField(allow_null=True)
    p99_latency_ms = serializers.FloatField(allow_null=True)
    average_batch_size = serializers.FloatField(allow_null=True)


class MetricsTotalSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    protocol = serializers.CharField()
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    mean_latency_ms = serializers.FloatField(allow_null=True)
    p99_latency_ms = serializers.FloatField(allow_null=True)
    average_batch_size = serializers.FloatField(allow_null=True)


class MetricsSerializer(serializers.Serializer):
    minutes = MetricsPointSerializer(many=True)
    versions = MetricsTotalSerializer(many=True)


def _endpoint(request, name: str) -> Endpoint:
    return selectors.endpoint_of(request.user, name)


def _detail(endpoint: Endpoint) -> dict:
    return EndpointSerializer(selectors.endpoint_of(endpoint.owner, endpoint.name)).data


class EndpointListView(generics.GenericAPIView):
    """Your endpoints; POST creates one (no version yet: publish a run to it)."""

    serializer_class = EndpointSerializer
    pagination_class = None

    @extend_schema(responses=EndpointSerializer(many=True))
    def get(self, request):
        return Response(EndpointSerializer(selectors.endpoints_of(request.user), many=True).data)

    @extend_schema(request=EndpointCreateSerializer, responses={201: EndpointSerializer})
    def post(self, request):
        serializer = EndpointCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_create(owner=request.user, **serializer.validated_data)
        return Response(_detail(endpoint), status=status.HTTP_201_CREATED)


class EndpointDetailView(generics.GenericAPIView):
    """One endpoint. PATCH changes its description and batching limits; DELETE removes it with
    its versions and keys."""

    serializer_class = EndpointSerializer

    def get(self, request, name: str):
        return Response(EndpointSerializer(_endpoint(request, name)).data)

    @extend_schema(request=EndpointUpdateSerializer, responses={200: EndpointSerializer})
    def patch(self, request, name: str):
        endpoint = _endpoint(request, name)
        if not isinstance(request.data, dict):
            raise InvalidInput("the body must be a JSON object")
        fixed = sorted(set(request.data) - set(EndpointUpdateSerializer().fields))
        if fixed:
            raise InvalidInput(f"cannot change {', '.join(fixed)} here; changeable: description, max_batch_size, "
                               "max_queue_delay_ms, max_queue_size", details={field: ["read-only"] for field in fixed})
        serializer = EndpointUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, **serializer.validated_data)
        return Response(_detail(endpoint))

    @extend_schema(responses={204: None})
    def delete(self, request, name: str):
        services.endpoint_delete(endpoint=_endpoint(request, name))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _owned_run(request, run_id) -> Run:
    run = Run.objects.filter(pk=run_id, project__owner=request.user).select_related("project").first()
    if run is None:
        raise InvalidInput(f"unknown run {run_id}", details={"run": ["no such run"]})
    return run


class VersionListView(generics.GenericAPIView):
    """The endpoint's versions, newest first; POST publishes a succeeded run as the next version
    (it becomes the default once loaded and warmed up, unless the endpoint is pinned)."""

    serializer_class = ModelVersionSerializer
    pagination_class = None

    @extend_schema(responses=ModelVersionSerializer(many=True))
    def get(self, request, name: str):
        endpoint = _endpoint(request, name)
        return Response(ModelVersionSerializer(endpoint.versions.select_related("endpoint"), many=True).data)

    @extend_schema(request=PublishSerializer, responses={201: ModelVersionSerializer})
    def post(self, request, name: str):
        endpoint = _endpoint(request, name)
        serializer = PublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.version_publish(endpoint=endpoint, run=_owned_run(request, serializer.validated_data["run"]),
                                           created_by=request.user)
        version.refresh_from_db()
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class VersionDetailView(generics.GenericAPIView):
    serializer_class = ModelVersionSerializer

    def get(self, request, name: str, number: int):
        return Response(ModelVersionSerializer(selectors.version_of(_endpoint(request, name), number)).data)


class VersionPinView(APIView):
    @extend_schema(request=None, responses={200: EndpointSerializer},
                   description="Make this version the default and keep it there when new versions are published.")
    def post(self, request, name: str, number: int):
        return Response(_detail(services.version_pin(endpoint=_endpoint(request, name), number=number)))


class EndpointUnpinView(APIView):
    @extend_schema(request=None, responses={200: EndpointSerializer},
                   description="Follow the newest ready version again.")
    def post(self, request, name: str):
        return Response(_detail(services.endpoint_unpin(endpoint=_endpoint(request, name))))


class EndpointRollbackView(APIView):
    @extend_schema(request=None, responses={200: EndpointSerializer},
                   description="Pin the newest ready version older than the current default.")
    def post(self, request, name: str):
        return Response(_detail(services.endpoint_rollback(endpoint=_endpoint(request, name))))


class ApiKeyListView(generics.GenericAPIView):
    """The endpoint's API keys (never the keys themselves); POST creates one and shows it once."""

    serializer_class = ApiKeySerializer
    pagination_class = None

    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request, name: str):
        return Response(ApiKeySerializer(selectors.api_keys_of(_endpoint(request, name)), many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request, name: str):
        endpoint = _endpoint(request, name)
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record, key = services.api_key_create(endpoint=endpoint, name=serializer.validated_data["name"],
                                              created_by=request.user)
        return Response({**ApiKeySerializer(record).data, "key": key}, status=status.HTTP_201_CREATED)


class ApiKeyDetailView(APIView):
    @extend_schema(request=None, responses={200: ApiKeySerializer}, description="Revoke the key.")
    def delete(self, request, name: str, key_id: int):
        api_key = selectors.api_key_of(_endpoint(request, name), key_id)
        return Response(ApiKeySerializer(services.api_key_revoke(api_key=api_key)).data)


class EndpointMetricsView(APIView):
    """The last hour, a point a minute, every serving process summed; and totals per version."""

    @extend_schema(responses={200: MetricsSerializer})
    def get(self, request, name: str):
        endpoint = _endpoint(request, name)
        serving.flush_metrics()
        return Response(serving_metrics.series(endpoint))


class PrometheusMetricsView(APIView):
    """Serving counters in the Prometheus text format (or OpenMetrics, when Accept asks for it).

    A scraper (``Authorization: Bearer <NETFORGE_METRICS_TOKEN>``, or an address in
    ``NETFORGE_METRICS_ALLOWED_NETWORKS``) gets every endpoint, runs by state, HTTP requests by route
    and status code, and the process and Python metrics; a user's API token gets that user's endpoints."""

    permission_classes = [prometheus.ScraperOrUser]
    renderer_classes = [prometheus.ExpositionRenderer]
    content_negotiation_class = prometheus.ExpositionNegotiation

    @extend_schema(responses={(200, "text/plain"): OpenApiResponse(OpenApiTypes.STR)})
    def get(self, request):
        serving.flush_metrics()
        operator = prometheus.is_scraper(request)
        endpoints = Endpoint.objects.all() if operator else selectors.endpoints_of(request.user)
        body, content_type = prometheus.exposition([serving_metrics.endpoint_collector(endpoints)],
                                                   accept=request.headers.get("Accept", ""), operator=operator)
        return HttpResponse(body, content_type=content_type)


class VersionOnnxView(APIView):
    """The version as an ONNX model: same inputs (raw features; standardization is inside), the
    graph's outputs, and ``probabilities`` for classifiers."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)})
    def get(self, request, name: str, number: int):
        from engine import onnx_export  # noqa: PLC0415
        from engine.errors import EngineError  # noqa: PLC0415

        version = selectors.version_of(_endpoint(request, name), number)
        if version.state != ModelVersion.State.READY:
            raise InvalidInput(f"{name} v{number} is {version.state}; only a ready version can be exported")
        try:
            content = onnx_export.export_folder(version.path)
        except onnx_export.UnsupportedOp as error:
            raise InvalidInput(str(error), code="unsupported_op",
                               details={"node": error.node_id, "op": error.op}) from None
        except EngineError as error:
            raise InvalidInput(f"{name} v{number} cannot be exported: {error}") from None
        response = HttpResponse(content, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{name}-v{number}.onnx"'
        return response


class RunPublishView(APIView):
    """Publish this succeeded run as the next version of an endpoint (created when new)."""

    @extend_schema(request=RunPublishSerializer, responses={201: ModelVersionSerializer})
    def post(self, request, run_id: int):
        run = Run.objects.filter(pk=run_id, project__owner=request.user).first()
        if run is None:
            raise Http404(f"no run {run_id}")
        serializer = RunPublishSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.publish_run(run=run, endpoint_name=serializer.validated_data["endpoint"], user=request.user,
                                       description=serializer.validated_data["description"])
        version.refresh_from_db()
        return Response({**ModelVersionSerializer(version).data, "endpoint": version.endpoint.name},
                        status=status.HTTP_201_CREATED)
