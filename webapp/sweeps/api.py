"""REST views of sweeps: start and list a project's sweeps, inspect one (its trials, best trial and
parameter importance), cancel it. Trials are runs: their curves, cancel and publish are the runs'."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.core.permissions import OWNER_ONLY
from webapp.projects.selectors import project_get
from webapp.runs import services as run_services
from webapp.runs.selectors import training_inputs_get
from webapp.sweeps import selectors, services, space
from webapp.sweeps.models import Sweep, Trial


class SweepParameterSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="a training option's path (optimizer.lr, batch_size) or "
                                           "node:<node id>.<parameter> (node:fc1.units)")
    type = serializers.ChoiceField(choices=space.TYPES)
    low = serializers.FloatField(required=False, help_text="float and int ranges: the lowest value")
    high = serializers.FloatField(required=False, help_text="float and int ranges: the highest value")
    log = serializers.BooleanField(required=False, help_text="sample the range on a log scale (low > 0)")
    grid_points = serializers.IntegerField(required=False, help_text="values a grid tries in the range (3)")
    choices = serializers.ListField(child=serializers.JSONField(), required=False,
                                    help_text="choice: the values to try (numbers, strings, true, false, null)")


@extend_schema_field(SweepParameterSerializer(many=True))
class SweepParametersField(serializers.JSONField):
    """The search space as given; ``webapp.sweeps.space`` checks it and names the bad field."""


class TrialSerializer(serializers.ModelSerializer):
    run_name = serializers.CharField(source="run.name", read_only=True, default=None, allow_null=True)
    run_state = serializers.CharField(source="run.state", read_only=True, default=None, allow_null=True,
                                      help_text="the trial's run's state (null when it could not be created)")
    epochs_completed = serializers.IntegerField(source="run.epochs_completed", read_only=True, default=None,
                                                allow_null=True)
    params = serializers.DictField(child=serializers.JSONField(), help_text="parameter name -> the value tried")

    class Meta:
        model = Trial
        fields = ["number", "run", "run_name", "run_state", "epochs_completed", "params", "state", "value",
                  "pruned_at_epoch", "error", "created_at", "finished_at"]
        read_only_fields = fields


class SweepSerializer(serializers.ModelSerializer):
    graph_name = serializers.CharField(source="graph_version.name", read_only=True)
    graph_version_number = serializers.IntegerField(source="graph_version.number", read_only=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    parameters = SweepParameterSerializer(many=True, read_only=True)
    trial_count = serializers.IntegerField(read_only=True, default=0, help_text="trials started so far")
    trials_finished = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = Sweep
        fields = ["id", "project", "graph_version", "graph_name", "graph_version_number", "dataset", "dataset_name",
                  "name", "hyperparameters", "device", "parameters", "sampler", "trial_budget", "parallelism",
                  "metric", "direction", "pruner", "pruner_options", "seed", "state", "waiting_reason",
                  "created_at", "finished_at", "trial_count", "trials_finished"]
        read_only_fields = fields


class SweepDetailSerializer(SweepSerializer):
    trials = TrialSerializer(many=True, read_only=True)
    best_trial = serializers.IntegerField(allow_null=True, read_only=True,
                                          help_text="the number of the completed trial with the best value")
    importance = serializers.DictField(child=serializers.FloatField(), read_only=True,
                                       help_text="parameter name -> its share of the variation of the completed "
                                                 "trials' values (fANOVA); empty before 3 trials completed")

    class Meta(SweepSerializer.Meta):
        fields = [*SweepSerializer.Meta.fields, "trials", "best_trial", "importance"]
        read_only_fields = fields


class SweepCreateSerializer(serializers.Serializer):
    graph_version = serializers.IntegerField(help_text="id of a graph version of this project")
    dataset = serializers.IntegerField(help_text="id of one of your datasets")
    hyperparameters = serializers.JSONField(required=False, default=dict,
                                            help_text="the training options every trial starts from")
    device = serializers.ChoiceField(choices=run_services.DEVICES, default="cpu")
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    parameters = SweepParametersField(help_text="the search space: what each trial changes, and over which values")
    sampler = serializers.ChoiceField(choices=Sweep.Sampler.choices, default=Sweep.Sampler.RANDOM)
    trial_budget = serializers.IntegerField(min_value=1, help_text="trials in all (a grid: at most its size)")
    parallelism = serializers.IntegerField(min_value=1, default=1, help_text="trials training at once")
    metric = serializers.CharField(required=False, max_length=100,
                                   help_text="the metric to optimize (default: the early-stopping monitor, else "
                                             "val_loss with a validation split, else loss)")
    direction = serializers.ChoiceField(choices=Sweep.Direction.choices, required=False,
                                        help_text="default: minimize for losses and errors, else maximize")
    pruner = serializers.ChoiceField(choices=Sweep.Pruner.choices, default=Sweep.Pruner.NONE)
    pruner_options = serializers.JSONField(required=False, default=dict,
                                           help_text="median: startup_trials, warmup_epochs; successive_halving: "
                                                     "min_epochs, reduction_factor")
    seed = serializers.IntegerField(default=0, help_text="seeds the samplers (grid and random are reproducible)")


class ProjectSweepListView(generics.GenericAPIView):
    """The project's sweeps. POST starts one: it is saved and its first trials are queued as runs."""

    serializer_class = SweepSerializer

    def get(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        page = self.paginate_queryset(selectors.sweep_list(user=request.user, project_id=project.pk))
        return self.get_paginated_response(SweepSerializer(page, many=True).data)

    @extend_schema(request=SweepCreateSerializer, responses={201: SweepDetailSerializer})
    def post(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        serializer = SweepCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        graph_version, dataset = training_inputs_get(user=request.user, values=values, data=request.data)
        sweep = services.sweep_create(project=project, graph_version=graph_version, dataset=dataset,
                                      created_by=request.user, **values)
        sweep = selectors.sweep_get(user=request.user, sweep_id=sweep.pk)
        return Response(_detail(sweep), status=status.HTTP_201_CREATED)


def _detail(sweep: Sweep) -> dict:
    trials = selectors.trial_list(sweep=sweep)
    best = selectors.best_trial(sweep=sweep, trials=trials)
    data = SweepSerializer(sweep).data
    data.update(trials=TrialSerializer(trials, many=True).data, best_trial=best.number if best else None,
                importance=selectors.parameter_importance(sweep=sweep, trials=trials))
    return data


class SweepDetailView(generics.GenericAPIView):
    """One sweep with its trials (each a run), its best trial and the parameters' importance."""

    serializer_class = SweepDetailSerializer
    permission_classes = OWNER_ONLY

    def get(self, request, sweep_id: int):
        sweep = selectors.sweep_get(user=request.user, sweep_id=sweep_id)
        self.check_object_permissions(request, sweep)
        return Response(_detail(sweep))


class SweepCancelView(APIView):
    permission_classes = OWNER_ONLY

    @extend_schema(request=None, responses={200: SweepDetailSerializer},
                   description="No new trials start; queued trials are cancelled at once, running ones stop after "
                               "their current batch. A sweep no longer running is a 409.")
    def post(self, request, sweep_id: int):
        sweep = selectors.sweep_get(user=request.user, sweep_id=sweep_id)
        self.check_object_permissions(request, sweep)
        services.sweep_cancel(sweep=sweep)
        return Response(_detail(selectors.sweep_get(user=request.user, sweep_id=sweep_id)))
