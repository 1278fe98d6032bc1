"""REST views of runs: start, list, inspect, cancel, resume, rename and tag, delete; metrics and
checkpoints. The live view is the WebSocket (``webapp.runs.consumers``)."""

from __future__ import annotations

import dataclasses

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from engine.trainer import TrainConfig
from webapp.core.downsample import MIN_POINTS
from webapp.core.exceptions import InvalidInput
from webapp.core.permissions import OWNER_ONLY
from webapp.core.query import id_param
from webapp.datasets.selectors import ARCHIVED_CHOICES, ARCHIVED_HELP
from webapp.endpoints.models import ModelVersion
from webapp.projects.selectors import graph_version_training_script, project_get
from webapp.runs import lifecycle, selectors, services
from webapp.runs.models import Checkpoint, Run
from webapp.runs.selectors import training_inputs_get

DEFAULT_MAX_POINTS = 2000
DEFAULT_MAX_LAYER_SAMPLES = 200


class PublishedVersionSerializer(serializers.Serializer):
    endpoint = serializers.CharField(help_text="the endpoint's name")
    number = serializers.IntegerField(help_text="the model version's number at that endpoint")


def published_versions(run_ids) -> dict[int, list[dict]]:
    """The endpoints' model versions made from each run, newest first, by run id."""
    published: dict[int, list[dict]] = {}
    versions = (ModelVersion.objects.filter(run_id__in=list(run_ids)).order_by("-created_at", "-pk")
                .values_list("run_id", "endpoint__name", "number"))
    for run_id, endpoint, number in versions:
        published.setdefault(run_id, []).append({"endpoint": endpoint, "number": number})
    return published


class RunSerializer(serializers.ModelSerializer):
    graph_version_number = serializers.IntegerField(source="graph_version.number", read_only=True)
    graph_name = serializers.CharField(source="graph_version.name", read_only=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    duration_seconds = serializers.SerializerMethodField(
        help_text="seconds from start to finish (to now while running); null before it starts")
    published = serializers.SerializerMethodField(
        help_text="the endpoint versions published from this run, newest first; empty when none")

    class Meta:
        model = Run
        fields = ["id", "project", "graph_version", "graph_name", "graph_version_number", "dataset", "dataset_name",
                  "name", "hyperparameters", "device", "workers", "state", "cancel_requested", "attempt", "task_id",
                  "worker", "created_by", "created_at", "started_at", "finished_at", "heartbeat_at",
                  "duration_seconds", "epochs_completed", "steps_completed", "last_sequence", "final_metrics", "error",
                  "tags", "notes", "published", "archived_at", "parent"]
        read_only_fields = fields

    def get_duration_seconds(self, run: Run) -> float | None:
        return selectors.run_duration_seconds(run)

    @extend_schema_field(PublishedVersionSerializer(many=True))
    def get_published(self, run: Run) -> list[dict]:
        # A list's page passes the versions of all its runs in one query (context "published").
        known = self.context.get("published")
        return (known if known is not None else published_versions([run.pk])).get(run.pk, [])


class RunCreateSerializer(serializers.Serializer):
    graph_version = serializers.IntegerField(help_text="id of a graph version of this project")
    dataset = serializers.IntegerField(help_text="id of one of your datasets")
    hyperparameters = serializers.JSONField(required=False, default=dict,
                                            help_text="engine TrainConfig fields: epochs, batch_size, optimizer, ...")
    device = serializers.ChoiceField(choices=services.DEVICES, default="cpu")
    workers = serializers.IntegerField(min_value=1, max_value=services.MAX_WORKERS, default=1)
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=services.MAX_TAG_LENGTH), required=False,
                                 default=list, max_length=services.MAX_TAGS)
    notes = serializers.CharField(required=False, default="", allow_blank=True, max_length=services.MAX_NOTES_LENGTH)


class RunUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=services.MAX_TAG_LENGTH), required=False,
                                 max_length=services.MAX_TAGS)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=services.MAX_NOTES_LENGTH)
    archived = serializers.BooleanField(required=False, help_text="true hides the run from the lists (archived=true "
                                                                  "or all shows it); false brings it back")


class EvaluationClassSerializer(serializers.Serializer):
    class_ = serializers.IntegerField(help_text="class index")
    name = serializers.CharField()
    precision = serializers.FloatField(allow_null=True, help_text="null when the class was never predicted")
    recall = serializers.FloatField(allow_null=True, help_text="null when the class does not occur")
    f1 = serializers.FloatField(allow_null=True)
    support = serializers.IntegerField(help_text="samples of this class")
    predicted = serializers.IntegerField(help_text="samples predicted as this class")

    def get_fields(self):
        fields = super().get_fields()
        fields["class"] = fields.pop("class_")
        return fields


class EvaluationTopClassSerializer(serializers.Serializer):
    class_ = serializers.IntegerField()
    name = serializers.CharField()
    probability = serializers.FloatField(allow_null=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["class"] = fields.pop("class_")
        return fields


class EvaluationSampleSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="the row in the dataset (GET /api/datasets/<id>/samples shows it)")
    true = serializers.IntegerField()
    true_name = serializers.CharField()
    predicted = serializers.IntegerField()
    predicted_name = serializers.CharField()
    correct = serializers.BooleanField()
    top = EvaluationTopClassSerializer(many=True, help_text="the three most probable classes")
    image = serializers.CharField(required=False, help_text="image data: the sample as a PNG data URL")


class EvaluationPairsSerializer(serializers.Serializer):
    index = serializers.ListField(child=serializers.IntegerField(), help_text="each pair's row in the dataset")
    true = serializers.ListField(child=serializers.JSONField(), help_text="numbers, or lists for several outputs")
    predicted = serializers.ListField(child=serializers.JSONField())


class EvaluationSerializer(serializers.Serializer):
    state = serializers.CharField(help_text="pending (the run is queued or running), ready (with the results), "
                                            "failed (with the error) or unavailable (with the reason)")
    run_state = serializers.CharField(help_text="the run's state")
    reason = serializers.CharField(required=False, help_text="why there is no evaluation (pending, unavailable)")
    error = serializers.CharField(required=False, help_text="failed: what went wrong")
    kind = serializers.ChoiceField(choices=["classification", "regression"], required=False)
    task = serializers.CharField(required=False)
    split = serializers.ChoiceField(choices=["validation", "training"], required=False,
                                    help_text="the rows evaluated: the validation split, or the training data "
                                              "when the run had none")
    rows = serializers.IntegerField(required=False)
    class_names = serializers.ListField(child=serializers.CharField(), required=False)
    confusion_matrix = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()),
                                             required=False, help_text="[true class][predicted class] counts")
    accuracy = serializers.FloatField(required=False)
    per_class = EvaluationClassSerializer(many=True, required=False)
    image_shape = serializers.ListField(child=serializers.IntegerField(), required=False, allow_null=True,
                                        help_text="[channels, height, width] of the samples' images")
    samples = EvaluationSampleSerializer(many=True, required=False,
                                         help_text="up to 24 predictions, up to half of them mistakes")
    outputs = serializers.IntegerField(required=False, help_text="regression: values per sample")
    pairs = EvaluationPairsSerializer(required=False, help_text="regression: up to 500 samples, as columns")
    residuals = serializers.DictField(required=False,
                                      help_text="regression: count, mean, std, mae, rmse, min, max, median, r2 of "
                                                "predicted - true, and a histogram {counts, edges}")


class CheckpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Checkpoint
        fields = ["id", "epoch", "step", "created_at"]
        read_only_fields = fields


class MetricsQuerySerializer(serializers.Serializer):
    names = serializers.CharField(required=False, default="", allow_blank=True)
    max_points = serializers.IntegerField(required=False, default=DEFAULT_MAX_POINTS, min_value=MIN_POINTS,
                                          max_value=1_000_000)
    after_sequence = serializers.IntegerField(required=False, default=0, min_value=0)


RUN_LIST_PARAMETERS = [
    OpenApiParameter("state", OpenApiTypes.STR, description="comma-separated states, e.g. running,queued"),
    OpenApiParameter("tag", OpenApiTypes.STR, description="only runs with this tag"),
    OpenApiParameter("graph_version", OpenApiTypes.INT),
    OpenApiParameter("dataset", OpenApiTypes.INT),
    OpenApiParameter("archived", OpenApiTypes.STR, enum=list(ARCHIVED_CHOICES), description=ARCHIVED_HELP),
    OpenApiParameter("ordering", OpenApiTypes.STR,
                     description=f"one of {', '.join(selectors.ORDERINGS)}, or one value of the final metrics or "
                                 "hyperparameters such as final_metrics__val_accuracy or hyperparameters__batch_size "
                                 "(runs without it come last); prefix - for descending (default -created_at)"),
]


def _filtered_runs(request, *, project_id: int | None):
    states = [state for state in request.query_params.get("state", "").split(",") if state]
    return selectors.run_list(
        user=request.user, project_id=project_id, states=states or None, tag=request.query_params.get("tag") or None,
        graph_version_id=id_param(request, "graph_version"), dataset_id=id_param(request, "dataset"),
        ordering=request.query_params.get("ordering") or "-created_at",
        archived=request.query_params.get("archived") or "false",
    )


class OwnedRunMixin:
    """Views of one run: the requesting user's, else 404."""

    permission_classes = OWNER_ONLY

    def get_run(self) -> Run:
        run = selectors.run_get(user=self.request.user, run_id=self.kwargs["run_id"])
        self.check_object_permissions(self.request, run)
        return run


class ProjectRunListView(generics.GenericAPIView):
    """The project's runs (filters: state, tag, graph_version, dataset; ordering). POST starts a run:
    it is saved as queued and its training task queued once the transaction commits."""

    serializer_class = RunSerializer

    @extend_schema(parameters=RUN_LIST_PARAMETERS, responses=RunSerializer(many=True))
    def get(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        page = self.paginate_queryset(_filtered_runs(request, project_id=project.pk))
        context = {"published": published_versions(run.pk for run in page)}
        return self.get_paginated_response(RunSerializer(page, many=True, context=context).data)

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer})
    def post(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        serializer = RunCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        graph_version, dataset = training_inputs_get(user=request.user, values=values, data=request.data)
        run = services.run_create(project=project, graph_version=graph_version, dataset=dataset,
                                  created_by=request.user, **values)
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


class RunListView(generics.GenericAPIView):
    """All the user's runs, across projects (same filters, plus project)."""

    serializer_class = RunSerializer

    @extend_schema(parameters=[OpenApiParameter("project", OpenApiTypes.INT), *RUN_LIST_PARAMETERS],
                   responses=RunSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(_filtered_runs(request, project_id=id_param(request, "project")))
        context = {"published": published_versions(run.pk for run in page)}
        return self.get_paginated_response(RunSerializer(page, many=True, context=context).data)


class RunDetailView(OwnedRunMixin, generics.GenericAPIView):
    """One run. PATCH changes only its name, tags and notes, or archives it; DELETE removes a finished
    run with its points and checkpoints (a model published from it keeps serving its own copy)."""

    serializer_class = RunSerializer

    def get(self, request, run_id: int):
        return Response(RunSerializer(self.get_run()).data)

    @extend_schema(request=RunUpdateSerializer, responses={200: RunSerializer})
    def patch(self, request, run_id: int):
        run = self.get_run()
        if not isinstance(request.data, dict):
            raise InvalidInput("the body must be a JSON object with name, tags, notes or archived")
        fixed = sorted(set(request.data) - set(RunUpdateSerializer().fields))
        if fixed:
            raise InvalidInput(f"only name, tags and notes of a run can be changed, and archived set, not "
                               f"{', '.join(fixed)}",
                               details={field: ["read-only"] for field in fixed})
        serializer = RunUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        return Response(RunSerializer(services.run_update(run=run, **serializer.validated_data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, run_id: int):
        services.run_delete(run=self.get_run())
        return Response(status=status.HTTP_204_NO_CONTENT)


# A run's hyperparameters that the engine's TrainConfig takes; the platform's own (a distributed run's
# strategy and staleness) stay behind, as the worker leaves them out when it builds the trainer.
ENGINE_OPTIONS = frozenset(field.name for field in dataclasses.fields(TrainConfig)) - {"device", "checkpoint_dir"}


class RunScriptView(OwnedRunMixin, APIView):
    @extend_schema(
        responses={(200, "text/x-python"): OpenApiTypes.STR},
        description="A standalone Python script (a download) that trains this run's graph version on its dataset "
                    "with exactly its training options and seed (as GET /api/projects/<id>/versions/<id>/script, "
                    "the run's settings instead of the defaults): on the same engine and thread count it "
                    "reproduces the final metrics of a single-worker run.",
    )
    def get(self, request, run_id: int):
        run = self.get_run()
        hyperparameters = {key: value for key, value in (run.hyperparameters or {}).items() if key in ENGINE_OPTIONS}
        file_name, source = graph_version_training_script(
            graph_version=run.graph_version, dataset=run.dataset, hyperparameters=hyperparameters,
            origin=f"run {run.pk}{f' ({run.name})' if run.name else ''} (seed {hyperparameters.get('seed', 0)})",
            device=run.device, name_suffix=f"run-{run.pk}")
        response = HttpResponse(source, content_type="text/x-python; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{file_name}"'
        return response


class RunCancelView(OwnedRunMixin, APIView):
    @extend_schema(request=None, responses={200: RunSerializer},
                   description="Queued runs are cancelled at once; a running run stops after its current batch.")
    def post(self, request, run_id: int):
        run = self.get_run()
        return Response(RunSerializer(lifecycle.run_cancel(run=run)).data)


class RunResumeView(OwnedRunMixin, APIView):
    @extend_schema(request=None, responses={200: RunSerializer},
                   description="Queue a failed or cancelled run again, to continue from its newest checkpoint.")
    def post(self, request, run_id: int):
        run = self.get_run()
        return Response(RunSerializer(services.run_resume(run=run)).data)


class RunMetricsView(OwnedRunMixin, APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("names", OpenApiTypes.STR, description="comma-separated series, e.g. loss,val_loss"),
            OpenApiParameter("max_points", OpenApiTypes.INT,
                             description=f"per series, at least {MIN_POINTS} (default {DEFAULT_MAX_POINTS}); longer "
                                         "series keep each bucket's first, min, max and last point"),
            OpenApiParameter("after_sequence", OpenApiTypes.INT, description="only points after this sequence"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, run_id: int):
        run = self.get_run()
        query = MetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        names = [name.strip() for name in query.validated_data["names"].split(",") if name.strip()]
        return Response(selectors.run_metric_history(run, names=names or None,
                                                     max_points=query.validated_data["max_points"],
                                                     after_sequence=query.validated_data["after_sequence"]))


class LayerStatsQuerySerializer(serializers.Serializer):
    node = serializers.CharField(required=False, max_length=200, help_text="one node's statistics, with histograms")
    max_samples = serializers.IntegerField(required=False, default=DEFAULT_MAX_LAYER_SAMPLES, min_value=2,
                                           max_value=100_000)


class RunLayerStatsView(OwnedRunMixin, APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("node", OpenApiTypes.STR,
                             description="a node id: its samples with their histograms (without it, every node's "
                                         "statistics but no histograms)"),
            OpenApiParameter("max_samples", OpenApiTypes.INT,
                             description=f"at most this many samples, evenly spread over the steps (default "
                                         f"{DEFAULT_MAX_LAYER_SAMPLES}); the first, the last and the first NaN's "
                                         "are kept"),
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="The run's per-layer statistics, sampled while it trained (live on the WebSocket as "
                    "`run.layer_stats`): per node, weight and gradient norms, update/weight ratio, activation "
                    "mean, std and histogram (counts in the bins between `histogram_edges`, open-ended at both "
                    "sides), dead-unit fraction (ReLU), saturation (tanh, sigmoid), non-finite values; and `nan`, "
                    "the step and node where the first NaN or Inf appeared.",
    )
    def get(self, request, run_id: int):
        run = self.get_run()
        query = LayerStatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(selectors.run_layer_stats(run, node=query.validated_data.get("node"),
                                                  max_samples=query.validated_data["max_samples"]))


class RunCheckpointListView(OwnedRunMixin, generics.GenericAPIView):
    serializer_class = CheckpointSerializer
    pagination_class = None

    @extend_schema(responses=CheckpointSerializer(many=True))
    def get(self, request, run_id: int):
        run = self.get_run()
        return Response(CheckpointSerializer(selectors.checkpoint_list(run=run), many=True).data)


class RunEvaluationView(OwnedRunMixin, APIView):
    @extend_schema(
        responses={200: EvaluationSerializer},
        description="What the trained model does on the validation split, computed when the run succeeds. Always "
                    "200 with a `state`: `pending` while the run is queued or running (poll again, or wait for the "
                    "run's state on the WebSocket), `ready` with the results, `failed` with the `error`, "
                    "`unavailable` with a `reason` (the run failed or was cancelled, or the data has no labels). "
                    "Classifiers: confusion matrix, precision/recall/F1 per class, sample predictions (with images "
                    "for image data); regression: (true, predicted) pairs and residual statistics.",
    )
    def get(self, request, run_id: int):
        return Response(selectors.run_evaluation(self.get_run()))
