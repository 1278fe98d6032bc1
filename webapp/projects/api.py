"""REST views of projects and graph versions: thin adapters over selectors and services."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from engine.graph import DEFAULT_BATCH_SIZE
from engine.optimizers import OPTIMIZERS
from webapp.core.exceptions import InvalidInput
from webapp.core.permissions import OWNER_ONLY
from webapp.datasets.selectors import ARCHIVED_CHOICES, ARCHIVED_HELP, dataset_find
from webapp.projects import imports, selectors, services
from webapp.projects.converter import EDITOR_FORMAT
from webapp.projects.models import GraphVersion, Project
from webapp.runs.services import check_inputs_can_be_fed, validate_hyperparameters


class ProjectSerializer(serializers.ModelSerializer):
    archived = serializers.BooleanField(required=False, write_only=True,
                                        help_text="true hides the project from the list (archived=true or all shows "
                                                  "it); false brings it back")

    class Meta:
        model = Project
        fields = ["id", "name", "description", "created_at", "updated_at", "archived_at", "archived"]
        read_only_fields = ["id", "created_at", "updated_at", "archived_at"]
        # Uniqueness per owner is checked by the service, which knows the owner.
        validators = []

    name = serializers.CharField(max_length=200, allow_blank=False, trim_whitespace=True)


class GraphVersionSummarySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = GraphVersion
        fields = ["id", "project", "name", "number", "message", "summary", "draft", "created_by", "created_at"]
        read_only_fields = fields


class GraphVersionSerializer(GraphVersionSummarySerializer):
    class Meta(GraphVersionSummarySerializer.Meta):
        fields = [*GraphVersionSummarySerializer.Meta.fields, "editor_document", "spec"]
        read_only_fields = fields


class GraphVersionCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, default="main", help_text="the graph's name within the project")
    message = serializers.CharField(max_length=500, default="", allow_blank=True, help_text="what changed")
    editor_document = serializers.JSONField(help_text=f"the editor document (\"format\": \"{EDITOR_FORMAT}\")")
    batch_size = serializers.IntegerField(min_value=1, max_value=1_000_000, default=DEFAULT_BATCH_SIZE,
                                          help_text="batch size for the memory estimate")
    draft = serializers.BooleanField(default=False, help_text="save work in progress whatever its errors: a draft "
                                                              "cannot be trained until it is promoted")


class ProjectListView(generics.GenericAPIView):
    """The requesting user's projects."""

    serializer_class = ProjectSerializer

    def get_queryset(self):
        return selectors.project_list(user=self.request.user,
                                      archived=self.request.query_params.get("archived") or "false")

    @extend_schema(parameters=[OpenApiParameter("archived", OpenApiTypes.STR, enum=list(ARCHIVED_CHOICES),
                                                description=ARCHIVED_HELP)],
                   responses=ProjectSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ProjectSerializer(page, many=True).data)

    @extend_schema(request=ProjectSerializer, responses={201: ProjectSerializer})
    def post(self, request):
        serializer = ProjectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        values.pop("archived", None)  # a new project is not archived
        project = services.project_create(owner=request.user, **values)
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(generics.GenericAPIView):
    serializer_class = ProjectSerializer
    permission_classes = OWNER_ONLY

    def get_object(self) -> Project:
        project = selectors.project_get(user=self.request.user, project_id=self.kwargs["project_id"])
        self.check_object_permissions(self.request, project)
        return project

    def get(self, request, project_id: int):
        return Response(ProjectSerializer(self.get_object()).data)

    def put(self, request, project_id: int):
        return self._update(request, partial=False)

    def patch(self, request, project_id: int):
        return self._update(request, partial=True)

    def _update(self, request, *, partial: bool):
        project = self.get_object()
        serializer = ProjectSerializer(project, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        archived = values.pop("archived", None)
        project = services.project_update(project=project, **values)
        if archived is not None:
            project = services.project_archive(project=project, archived=archived)
        return Response(ProjectSerializer(project).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int):
        services.project_delete(project=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class GraphVersionListView(generics.GenericAPIView):
    """Saved versions of the project's graphs, newest first. POST converts and validates an editor
    document and saves it as the next version; an invalid graph is a 400 with the errors per node."""

    serializer_class = GraphVersionSummarySerializer

    def get_queryset(self):
        project = selectors.project_get(user=self.request.user, project_id=self.kwargs["project_id"])
        return selectors.graph_version_list(project=project, name=self.request.query_params.get("name"))

    @extend_schema(parameters=[OpenApiParameter("name", OpenApiTypes.STR, description="only this graph's versions")],
                   responses=GraphVersionSummarySerializer(many=True))
    def get(self, request, project_id: int):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(GraphVersionSummarySerializer(page, many=True).data)

    @extend_schema(request=GraphVersionCreateSerializer, responses={201: GraphVersionSerializer})
    def post(self, request, project_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        serializer = GraphVersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.graph_version_create(project=project, created_by=request.user, **serializer.validated_data)
        return Response(GraphVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class GraphVersionDetailView(generics.GenericAPIView):
    """One graph version with its editor document and engine spec. Versions are immutable."""

    serializer_class = GraphVersionSerializer
    permission_classes = OWNER_ONLY

    def get(self, request, project_id: int, version_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        version = selectors.graph_version_get(project=project, version_id=version_id)
        self.check_object_permissions(request, version)
        return Response(GraphVersionSerializer(version).data)


class GraphVersionPromoteView(APIView):
    permission_classes = OWNER_ONLY

    @extend_schema(request=None, responses={201: GraphVersionSerializer},
                   description="Save a draft's document as the next ordinary version of its graph (the draft stays). "
                               "A draft that still has errors is a 400 with the errors per node, as a save; a "
                               "version that is not a draft is a 409.")
    def post(self, request, project_id: int, version_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        version = selectors.graph_version_get(project=project, version_id=version_id)
        self.check_object_permissions(request, version)
        promoted = services.graph_version_promote(version=version, created_by=request.user)
        return Response(GraphVersionSerializer(promoted).data, status=status.HTTP_201_CREATED)


class GraphImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="an ONNX model (.onnx), self-contained (no external data)")
    name = serializers.CharField(max_length=200, default="main", help_text="the graph's name within the project")


class GraphImportView(APIView):
    """Import an ONNX model as the next version of a graph of the project: its ops as catalog
    nodes, laid out for the editor, its initializers stored as starting weights (a run takes them
    with ``init_from_import``). A node the catalog cannot compute is a 400 naming it and its op
    type (``details.unsupported``); a file over the limit a 413."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": GraphImportSerializer}, responses={201: GraphVersionSerializer})
    def post(self, request, project_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        serializer = GraphImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = imports.graph_version_import(project=project, upload=serializer.validated_data["file"],
                                               created_by=request.user, name=serializer.validated_data["name"])
        return Response(GraphVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class ScriptQuerySerializer(serializers.Serializer):
    dataset = serializers.IntegerField(help_text="id of one of your datasets")
    epochs = serializers.IntegerField(required=False, min_value=1)
    batch_size = serializers.IntegerField(required=False, min_value=1)
    optimizer = serializers.ChoiceField(choices=sorted(OPTIMIZERS), required=False)
    learning_rate = serializers.FloatField(required=False, min_value=0, max_value=1e3)
    seed = serializers.IntegerField(required=False, min_value=0)
    validation_fraction = serializers.FloatField(required=False, min_value=0, max_value=0.99)

    def hyperparameters(self) -> dict:
        """The query as run hyperparameters: the optimizer and learning rate become one
        ``optimizer`` object (a run's default, Adam at 1e-3, for what is not given)."""
        values = {key: value for key, value in self.validated_data.items() if key != "dataset"}
        name, rate = values.pop("optimizer", None), values.pop("learning_rate", None)
        if name is not None or rate is not None:
            values["optimizer"] = {"name": name or "adam", **({"lr": rate} if rate is not None else {})}
        return values


class GraphVersionScriptView(APIView):
    permission_classes = OWNER_ONLY

    @extend_schema(
        parameters=[ScriptQuerySerializer],
        responses={(200, "text/x-python"): OpenApiTypes.STR},
        description="A standalone Python script (a download) that builds this graph version with the `engine` "
                    "package and trains it on the dataset as a run would: the graph embedded as JSON, the dataset "
                    "loaded as the worker loads it (an upload from a file named by --data), the run's default "
                    "training options with those given here, progress and final metrics printed, the model "
                    "saved with engine.serialization.",
    )
    def get(self, request, project_id: int, version_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        version = selectors.graph_version_get(project=project, version_id=version_id)
        self.check_object_permissions(request, version)
        if version.draft:  # a script that trains it would fail as a run would
            raise InvalidInput(f"graph version {version.number} of '{version.name}' is a draft (work in progress); "
                               "promote it to export a training script", code="draft_graph_version",
                               details={"graph_version": ["a draft"]})
        query = ScriptQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        dataset = dataset_find(user=request.user, dataset_id=query.validated_data["dataset"])
        if dataset is None:
            raise InvalidInput(f"unknown dataset {query.validated_data['dataset']}",
                               details={"dataset": ["no such dataset"]})
        hyperparameters = validate_hyperparameters(query.hyperparameters())
        check_inputs_can_be_fed(graph_version=version, dataset=dataset)
        file_name, source = selectors.graph_version_training_script(graph_version=version, dataset=dataset,
                                                                    hyperparameters=hyperparameters)
        response = HttpResponse(source, content_type="text/x-python; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{file_name}"'
        return response
