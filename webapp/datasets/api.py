"""REST views of datasets: built-ins, the user's datasets, creating from a built-in, uploading."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, generics, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.core.exceptions import InvalidInput
from webapp.core.permissions import OWNER_ONLY
from webapp.core.query import id_param
from webapp.datasets import selectors, services, upload_guard, uploads
from webapp.datasets.models import Dataset
from webapp.projects.models import Project

# Multipart framing around the file: boundaries, headers and the small form fields.
MULTIPART_OVERHEAD_BYTES = upload_guard.MULTIPART_OVERHEAD_BYTES
DEFAULT_SAMPLES = 16
MAX_SAMPLES = 64


VIEW_HELP = ("how the features are shaped for a graph: {} as stored, {\"kind\": \"flat\"}, {\"kind\": \"image\", "
             "\"shape\": [C, H, W], \"layout\": \"chw\" or \"hwc\"} or {\"kind\": \"sequence\", \"shape\": [T, F]}; "
             "schema gives the shapes with the view applied")


class DatasetSerializer(serializers.ModelSerializer):
    file_name = serializers.SerializerMethodField(
        help_text="the stored file's name (uploads; GET .../file downloads it)")
    original_name = serializers.CharField(read_only=True, help_text="the uploaded file's name")
    image_shape = serializers.SerializerMethodField(
        help_text="[channels, height, width] when the samples are images (GET .../samples draws them), else null")

    schema = serializers.SerializerMethodField(
        help_text="shapes, dtypes, task, classes; at most the first 100 feature and 1,000 label names "
                  "(feature_count and label_count give the totals)")
    preview = serializers.SerializerMethodField(help_text="the first rows, at most 100 values of each")
    state = serializers.CharField(read_only=True, help_text="processing (an upload being read and converted by a "
                                                            "worker), ready, or failed (see error)")
    error = serializers.CharField(read_only=True, help_text="why a failed upload was refused, naming the limit")
    view = serializers.JSONField(read_only=True, help_text=VIEW_HELP)

    class Meta:
        model = Dataset
        fields = ["id", "name", "kind", "builtin_name", "file_format", "file_name", "original_name", "options",
                  "view", "schema", "preview", "image_shape", "rows", "state", "error", "content_hash", "size_bytes",
                  "project", "created_at", "archived_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_schema(self, dataset: Dataset) -> dict:
        return selectors.schema_summary(selectors.viewed_schema(dataset))

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_preview(self, dataset: Dataset) -> dict:
        return selectors.preview_summary(dataset.preview)

    def get_file_name(self, dataset: Dataset) -> str:
        return dataset.file.name.rsplit("/", 1)[-1] if dataset.file else ""

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField(), allow_null=True))
    def get_image_shape(self, dataset: Dataset) -> list[int] | None:
        layout = selectors.dataset_image_layout(dataset)
        return layout.shape if layout is not None else None


class SamplesQuerySerializer(serializers.Serializer):
    offset = serializers.IntegerField(required=False, default=0, min_value=0)
    limit = serializers.IntegerField(required=False, default=DEFAULT_SAMPLES, min_value=1, max_value=MAX_SAMPLES)


class SampleSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="the row's position in the dataset")
    label = serializers.JSONField(allow_null=True, help_text="the target value (a class index for classifiers)")
    label_name = serializers.CharField(allow_null=True, help_text="the class's name, where the dataset has names")
    image = serializers.CharField(required=False, help_text="image data: the sample as a PNG data URL")
    features = serializers.DictField(child=serializers.JSONField(),
                                     help_text="the row's other arrays (all features of tabular data) as lists")


class SamplesSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    count = serializers.IntegerField(help_text="rows in the dataset")
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    task = serializers.CharField()
    image_shape = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
    label_names = serializers.ListField(child=serializers.CharField(), allow_null=True)
    feature_names = serializers.ListField(child=serializers.CharField(), allow_null=True)
    feature_count = serializers.IntegerField(allow_null=True, required=False,
                                             help_text="columns in all (feature_names lists the first 100)")
    results = SampleSerializer(many=True)


class DatasetUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    view = serializers.JSONField(required=False, help_text=VIEW_HELP)
    archived = serializers.BooleanField(required=False, help_text="true hides it from the lists (its runs keep it); "
                                                                  "false brings it back")


class BuiltinDatasetCreateSerializer(serializers.Serializer):
    builtin = serializers.CharField(max_length=100, help_text="a name from GET /api/datasets/builtin")
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    options = serializers.DictField(required=False, default=None, allow_null=True,
                                    help_text="the built-in's options (see its entry), and 'seed'; default: those "
                                              "the project's template recommends (its metadata.dataset_options)")
    view = serializers.JSONField(required=False, default=None, allow_null=True, help_text=VIEW_HELP)
    project = serializers.IntegerField(required=False, allow_null=True, default=None)


class DatasetUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV/TSV, .npz, IDX images, or a zip of images in class folders")
    labels = serializers.FileField(required=False, help_text="IDX labels for IDX images (optional)")
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    format = serializers.ChoiceField(choices=uploads.FORMATS, required=False, allow_null=True, default=None,
                                     help_text="default: from the file name")
    target = serializers.CharField(required=False, help_text="CSV/TSV: the label column (required)")
    delimiter = serializers.CharField(required=False, trim_whitespace=False, help_text="CSV: default ','")
    task = serializers.ChoiceField(choices=["classification", "binary", "regression"], required=False,
                                   help_text="default: inferred from the target")
    x_key = serializers.CharField(required=False, help_text="NPZ: the features array (default x)")
    y_key = serializers.CharField(required=False, help_text="NPZ: the target array (default y; 'none': unlabeled)")
    # Text, not a BooleanField: a form that leaves a checkbox out would otherwise send false for every format.
    flatten = serializers.ChoiceField(choices=["true", "false"], required=False,
                                      help_text="IDX: true gives images as (N, H*W) instead of (N, 1, H, W)")
    view = serializers.CharField(required=False, help_text="JSON: " + VIEW_HELP)
    project = serializers.IntegerField(required=False, allow_null=True, default=None)

    OPTION_FIELDS = ("target", "delimiter", "task", "x_key", "y_key", "flatten")


def _json_field(text: str | None, field: str):
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise InvalidInput(f"{field}: not valid JSON ({error})", details={field: ["not JSON"]}) from None


def _project_of(request, project_id: int | None) -> Project | None:
    if project_id is None:
        return None
    project = Project.objects.filter(owner=request.user, pk=project_id).first()
    if project is None:
        raise InvalidInput(f"unknown project {project_id}", details={"project": [f"no project {project_id}"]})
    return project


class BuiltinDatasetListView(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="The engine's built-in datasets: name, task, description, per-row shapes, options.")
    def get(self, request):
        return Response({"results": selectors.builtin_list()})


class DatasetPagination(LimitOffsetPagination):
    """Pages of datasets that also say how much disk all the user's datasets use."""

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["storage_bytes"] = {
            "type": "integer", "description": "disk used by all the user's datasets (not only this page)"}
        paginated["properties"]["storage_limit_bytes"] = {
            "type": "integer", "description": "the most the user's datasets may hold"}
        return paginated


class DatasetListView(generics.GenericAPIView):
    """The user's datasets, with the disk they use. POST (JSON) adds one from a built-in by name;
    adding a built-in the user already has with the same options (and project) returns that one
    (200) instead of a duplicate (201 when new)."""

    serializer_class = DatasetSerializer
    pagination_class = DatasetPagination

    @extend_schema(parameters=[
        OpenApiParameter("project", OpenApiTypes.INT, description="only this project's datasets"),
        OpenApiParameter("kind", OpenApiTypes.STR, enum=list(Dataset.Kind.values)),
        OpenApiParameter("archived", OpenApiTypes.STR, enum=list(selectors.ARCHIVED_CHOICES),
                         description=selectors.ARCHIVED_HELP),
    ], responses=DatasetSerializer(many=True))
    def get(self, request):
        project = id_param(request, "project")
        services.datasets_fail_stale(owner=request.user)
        datasets = selectors.dataset_list(user=request.user, project_id=project,
                                          kind=request.query_params.get("kind"),
                                          archived=request.query_params.get("archived") or "false")
        page = self.paginate_queryset(datasets)
        response = self.get_paginated_response(DatasetSerializer(page, many=True).data)
        response.data["storage_bytes"] = services.storage_used(owner=request.user)
        response.data["storage_limit_bytes"] = int(settings.DATASET_MAX_STORAGE_PER_USER_BYTES)
        return response

    @extend_schema(request=BuiltinDatasetCreateSerializer, responses={201: DatasetSerializer, 200: DatasetSerializer})
    def post(self, request):
        serializer = BuiltinDatasetCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        project = _project_of(request, values["project"])
        options = values["options"]
        if options is None:
            options = services.template_dataset_options(project=project, builtin=values["builtin"])
        existing = services.builtin_duplicate(owner=request.user, builtin=values["builtin"], options=options,
                                              project=project, view=values["view"])
        if existing is not None:
            return Response(DatasetSerializer(existing).data, status=status.HTTP_200_OK)
        dataset = services.dataset_create_builtin(owner=request.user, builtin=values["builtin"], name=values["name"],
                                                  options=options, project=project, view=values["view"])
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetUploadView(APIView):
    """Upload a dataset file (multipart). It is stored and answered at once with the dataset in
    state ``processing``; a worker then reads and converts it, and the dataset becomes ``ready`` or
    ``failed`` with the reason (a malformed file names the line and column, a file over a limit
    names the limit). Bad fields are a 400 and a body over the upload limit a 413, with nothing
    stored."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": DatasetUploadSerializer}, responses={201: DatasetSerializer})
    def post(self, request):
        declared = request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > services.max_upload_bytes() + MULTIPART_OVERHEAD_BYTES:
            # Refused before the multipart body is parsed and written to temporary files.
            services.check_upload_size(file_name="the upload", size=int(declared) - MULTIPART_OVERHEAD_BYTES)
        serializer = DatasetUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        options = {key: values[key] for key in DatasetUploadSerializer.OPTION_FIELDS if values.get(key) is not None}
        dataset = services.dataset_create_upload(
            owner=request.user, file=values["file"], labels_file=values.get("labels"), name=values["name"],
            file_format=values["format"], options=options, project=_project_of(request, values["project"]),
            view=_json_field(values.get("view"), "view"),
        )
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(generics.GenericAPIView):
    serializer_class = DatasetSerializer
    permission_classes = OWNER_ONLY

    def get_object(self) -> Dataset:
        dataset = selectors.dataset_get(user=self.request.user, dataset_id=self.kwargs["dataset_id"])
        self.check_object_permissions(self.request, dataset)
        return dataset

    def get(self, request, dataset_id: int):
        services.datasets_fail_stale(owner=request.user)
        return Response(DatasetSerializer(self.get_object()).data)

    @extend_schema(request=DatasetUpdateSerializer)
    def patch(self, request, dataset_id: int):
        dataset = self.get_object()
        serializer = DatasetUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        archived = values.pop("archived", None)
        if values:
            dataset = services.dataset_update(dataset=dataset, **values)
        if archived is not None:
            dataset = services.dataset_archive(dataset=dataset, archived=archived)
        return Response(DatasetSerializer(dataset).data)

    @extend_schema(responses={204: None})
    def delete(self, request, dataset_id: int):
        services.dataset_delete(dataset=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class OwnedDatasetMixin:
    permission_classes = OWNER_ONLY

    def get_dataset(self) -> Dataset:
        dataset = selectors.dataset_get(user=self.request.user, dataset_id=self.kwargs["dataset_id"])
        self.check_object_permissions(self.request, dataset)
        return dataset


class DatasetSamplesView(OwnedDatasetMixin, APIView):
    @extend_schema(
        parameters=[OpenApiParameter("offset", OpenApiTypes.INT, description="first row (default 0)"),
                    OpenApiParameter("limit", OpenApiTypes.INT,
                                     description=f"rows, 1 to {MAX_SAMPLES} (default {DEFAULT_SAMPLES})")],
        responses={200: SamplesSerializer},
        description="Rows of the dataset with their labels; for image data (zips of images, IDX, the digits "
                    "built-in, any (H, W) or (C, H, W) samples) each sample is also a PNG data URL the browser can "
                    "show. An offset past the end gives no results.",
    )
    def get(self, request, dataset_id: int):
        dataset = self.get_dataset()
        query = SamplesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(selectors.dataset_samples(dataset, **query.validated_data))


class DatasetFileView(OwnedDatasetMixin, APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
                   description="The stored file of an uploaded dataset (IDX pairs and zips of images as the .npz "
                               "they became), as the exported training script reads it. Built-ins have none (404).")
    def get(self, request, dataset_id: int):
        dataset = self.get_dataset()
        if not dataset.file:
            raise exceptions.NotFound(f"dataset '{dataset.name}' is the built-in '{dataset.builtin_name}' and has no "
                                      "file; engine.data.load_builtin makes it")
        try:
            handle = dataset.file.open("rb")
        except FileNotFoundError:
            raise exceptions.NotFound(f"the file of dataset '{dataset.name}' is missing from storage") from None
        return FileResponse(handle, as_attachment=True, filename=selectors.dataset_file_name(dataset),
                            content_type="application/octet-stream")
