"""``GET /api/ops`` (the catalog the palette is generated from), ``GET /api/training-options`` (the
schema the train panel is generated from) and ``POST /api/graphs/validate``."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from engine.graph import DEFAULT_BATCH_SIZE
from webapp.catalog import selectors
from webapp.core.exceptions import InvalidInput
from webapp.core.parsers import JsonBodyParser
from webapp.datasets.models import Dataset
from webapp.datasets.selectors import dataset_get, dataset_list, dataset_training_data
from webapp.projects.converter import validate_editor_document


class BatchSizeSerializer(serializers.Serializer):
    batch_size = serializers.IntegerField(min_value=1, max_value=1_000_000, default=DEFAULT_BATCH_SIZE)


class ValidateQuerySerializer(BatchSizeSerializer):
    dataset = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)


class OpsView(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="The engine's op catalog (ops with parameter schemas and named ports), the editor's "
                               "special node types, and the zoo models as templates with their editor documents.")
    def get(self, request):
        return Response(selectors.op_catalog())


class TrainingOptionsView(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT},
                   description="The engine's training options (engine.training_options): the top-level options "
                               "(epochs, batch_size, validation_fraction, seed, device, workers, strategy, ...), each "
                               "optimizer's and each learning-rate schedule's options, early stopping's and the "
                               "metric names, each option with its type, default, bounds or choices, label and doc. "
                               "A run's hyperparameters are checked against it; errors name the field by its path.")
    def get(self, request):
        return Response(selectors.training_options())


class ValidateGraphView(APIView):
    parser_classes = [JsonBodyParser]

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[OpenApiParameter("batch_size", OpenApiTypes.INT,
                                     description="for the memory estimate (default 32)"),
                    OpenApiParameter("dataset", OpenApiTypes.INT,
                                     description="the id of the dataset the graph will train on: each input is "
                                                 "checked with the trainer's binding rule and the loss against the "
                                                 "dataset's labels; errors carry a `fix` where one exists")],
        responses={200: OpenApiTypes.OBJECT},
        description="Convert an editor document (the body) and validate it with the engine. Always 200 for a "
                    "JSON object: `ok` says whether it is valid; `nodes` gives per editor node its output shapes, "
                    "parameters and errors, `edges` the shape each edge carries, `errors` the graph-level problems. "
                    "An error that can be mended in one step has a `fix`: `insert_reshape` (`shape`, "
                    "`input_shape`), `set_view` (`dataset`, `view`) or `set_param` (`param`, `value`).",
    )
    def post(self, request):
        if not isinstance(request.data, dict) or _empty_body(request):
            raise InvalidInput(f"the body must be a JSON object (an editor document), got {_kind(request.data)}",
                               code="not_an_object")
        query = ValidateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        document = dict(request.data)
        dataset_id = query.validated_data.get("dataset")
        dataset = dataset_get(user=request.user, dataset_id=dataset_id) if dataset_id is not None else None
        report = validate_editor_document(document, batch_size=query.validated_data["batch_size"],
                                          label_classes=label_classes(request.user, document),
                                          training_data=dataset_training_data(dataset) if dataset else None)
        if dataset is not None and dataset.state != Dataset.State.READY:
            # Nothing to check the graph against yet; Start would be refused for the same reason.
            advice = f": {dataset.error}" if dataset.error else "; wait until it is ready"
            report["errors"].append({"node": None, "field": "dataset", "code": "dataset_not_ready",
                                     "message": f"dataset '{dataset.name}' is {dataset.state}{advice}"})
            report["error_count"] += 1
            report["ok"] = False
        return Response(report)


def _empty_body(request) -> bool:
    return not request.data and request.META.get("CONTENT_LENGTH") in (None, "", "0")


def _kind(data) -> str:
    if data == {}:
        return "an empty body"
    return {list: "a list", str: "a string", type(None): "null"}.get(type(data), type(data).__name__)


def label_classes(user, document: dict) -> dict:
    """(name, number of classes) of the user's datasets that the document's label inputs are bound to."""
    wanted = {node.get("data", {}).get("dataset") for node in document.get("nodes") or []
              if isinstance(node, dict) and isinstance(node.get("data"), dict) and node["data"].get("role") == "labels"}
    ids = {value for value in wanted if isinstance(value, int) and not isinstance(value, bool)}
    if not ids:
        return {}
    return {dataset.pk: (dataset.name, dataset.schema["num_classes"])
            for dataset in dataset_list(user=user).filter(pk__in=ids)
            if isinstance(dataset.schema.get("num_classes"), int)}
