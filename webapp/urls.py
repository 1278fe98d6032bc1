"""URLs: the REST API under /api/, its OpenAPI document and reference page, the admin, and the
browser app at every other path.

Resource paths have no trailing slash (``/api/projects/3/runs``); the auth, schema and docs paths
end with one (``/api/auth/login/``). Each path also answers in the other spelling, so a client
that adds or drops the slash is not redirected (a redirect would lose a POST body)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from webapp.catalog import api as catalog_api
from webapp.core import api as core_api
from webapp.core import frontend
from webapp.datasets import api as datasets_api
from webapp.endpoints import api as endpoints_api
from webapp.endpoints import serving as endpoints_serving
from webapp.projects import api as projects_api
from webapp.runs import api as runs_api
from webapp.runs import queues_api
from webapp.sweeps import api as sweeps_api


def route(pattern: str, view, name: str):
    """``pattern`` (a path() pattern) with or without a trailing slash; only the spelling given
    appears in the OpenAPI document."""
    canonical = path(pattern, view, name=name)
    if not pattern:
        return [canonical]
    other = pattern[:-1] if pattern.endswith("/") else pattern + "/"
    view_class = getattr(view, "cls", None)
    if view_class is not None:  # a DRF view: the alternate spelling stays out of the schema
        alias = view_class.as_view(schema=None, **getattr(view, "initkwargs", {}))
    else:
        alias = view
    return [canonical, path(other, alias)]


api = [
    *route("", core_api.ApiRootView.as_view(), "api-root"),
    *route("auth/login/", core_api.LoginView.as_view(), "auth-login"),
    *route("auth/register/", core_api.RegisterView.as_view(), "auth-register"),
    *route("auth/csrf/", core_api.CsrfView.as_view(), "auth-csrf"),
    *route("auth/logout/", core_api.LogoutView.as_view(), "auth-logout"),
    *route("auth/token/", core_api.TokenView.as_view(), "auth-token"),
    *route("auth/tokens", core_api.ApiTokenListView.as_view(), "auth-token-list"),
    *route("auth/tokens/<int:token_id>", core_api.ApiTokenDetailView.as_view(), "auth-token-detail"),
    *route("auth/me/", core_api.MeView.as_view(), "auth-me"),
    *route("schema/", SpectacularAPIView.as_view(), "schema"),
    *route("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), "docs"),  # interactive, no CDN
    path("auth/browser/", include("rest_framework.urls")),  # login form of the browsable API
    # catalog
    *route("ops", catalog_api.OpsView.as_view(), "ops"),
    *route("training-options", catalog_api.TrainingOptionsView.as_view(), "training-options"),
    *route("graphs/validate", catalog_api.ValidateGraphView.as_view(), "graph-validate"),
    # projects and graph versions
    *route("projects", projects_api.ProjectListView.as_view(), "project-list"),
    *route("projects/<int:project_id>", projects_api.ProjectDetailView.as_view(), "project-detail"),
    *route("projects/<int:project_id>/versions", projects_api.GraphVersionListView.as_view(), "graph-version-list"),
    *route("projects/<int:project_id>/versions/<int:version_id>", projects_api.GraphVersionDetailView.as_view(),
           "graph-version-detail"),
    *route("projects/<int:project_id>/versions/<int:version_id>/script", projects_api.GraphVersionScriptView.as_view(),
           "graph-version-script"),
    *route("projects/<int:project_id>/versions/<int:version_id>/promote",
           projects_api.GraphVersionPromoteView.as_view(), "graph-version-promote"),
    *route("projects/<int:project_id>/import", projects_api.GraphImportView.as_view(), "graph-import"),
    *route("projects/<int:project_id>/runs", runs_api.ProjectRunListView.as_view(), "project-run-list"),
    *route("projects/<int:project_id>/sweeps", sweeps_api.ProjectSweepListView.as_view(), "project-sweep-list"),
    # datasets
    *route("datasets", datasets_api.DatasetListView.as_view(), "dataset-list"),
    *route("datasets/builtin", datasets_api.BuiltinDatasetListView.as_view(), "dataset-builtin-list"),
    *route("datasets/upload", datasets_api.DatasetUploadView.as_view(), "dataset-upload"),
    *route("datasets/<int:dataset_id>", datasets_api.DatasetDetailView.as_view(), "dataset-detail"),
    *route("datasets/<int:dataset_id>/samples", datasets_api.DatasetSamplesView.as_view(), "dataset-samples"),
    *route("datasets/<int:dataset_id>/file", datasets_api.DatasetFileView.as_view(), "dataset-file"),
    # runs
    *route("runs", runs_api.RunListView.as_view(), "run-list"),
    *route("runs/<int:run_id>", runs_api.RunDetailView.as_view(), "run-detail"),
    *route("runs/<int:run_id>/script", runs_api.RunScriptView.as_view(), "run-script"),
    *route("runs/<int:run_id>/cancel", runs_api.RunCancelView.as_view(), "run-cancel"),
    *route("runs/<int:run_id>/resume", runs_api.RunResumeView.as_view(), "run-resume"),
    *route("runs/<int:run_id>/metrics", runs_api.RunMetricsView.as_view(), "run-metrics"),
    *route("runs/<int:run_id>/checkpoints", runs_api.RunCheckpointListView.as_view(), "run-checkpoints"),
    *route("runs/<int:run_id>/layer-stats", runs_api.RunLayerStatsView.as_view(), "run-layer-stats"),
    *route("runs/<int:run_id>/evaluation", runs_api.RunEvaluationView.as_view(), "run-evaluation"),
    *route("runs/<int:run_id>/publish", endpoints_api.RunPublishView.as_view(), "run-publish"),
    # sweeps (their trials are runs)
    *route("sweeps/<int:sweep_id>", sweeps_api.SweepDetailView.as_view(), "sweep-detail"),
    *route("sweeps/<int:sweep_id>/cancel", sweeps_api.SweepCancelView.as_view(), "sweep-cancel"),
    *route("workers", queues_api.WorkersView.as_view(), "workers"),  # which queues have a live worker
    # endpoints: management (owner) and predictions (API keys; async views, see webapp.endpoints.serving)
    *route("v1/endpoints", endpoints_api.EndpointListView.as_view(), "endpoint-list"),
    *route("v1/endpoints/<slug:name>", endpoints_api.EndpointDetailView.as_view(), "endpoint-detail"),
    *route("v1/endpoints/<slug:name>/versions", endpoints_api.VersionListView.as_view(), "endpoint-version-list"),
    *route("v1/endpoints/<slug:name>/versions/<int:number>", endpoints_api.VersionDetailView.as_view(),
           "endpoint-version-detail"),
    *route("v1/endpoints/<slug:name>/versions/<int:number>/pin", endpoints_api.VersionPinView.as_view(),
           "endpoint-version-pin"),
    *route("v1/endpoints/<slug:name>/versions/<int:number>/onnx", endpoints_api.VersionOnnxView.as_view(),
           "endpoint-version-onnx"),
    *route("v1/endpoints/<slug:name>/unpin", endpoints_api.EndpointUnpinView.as_view(), "endpoint-unpin"),
    *route("v1/endpoints/<slug:name>/rollback", endpoints_api.EndpointRollbackView.as_view(), "endpoint-rollback"),
    *route("v1/endpoints/<slug:name>/keys", endpoints_api.ApiKeyListView.as_view(), "endpoint-key-list"),
    *route("v1/endpoints/<slug:name>/keys/<int:key_id>", endpoints_api.ApiKeyDetailView.as_view(),
           "endpoint-key-detail"),
    *route("v1/endpoints/<slug:name>/metrics", endpoints_api.EndpointMetricsView.as_view(), "endpoint-metrics"),
    *route("v1/metrics", endpoints_api.PrometheusMetricsView.as_view(), "endpoint-prometheus"),
    *route("v1/endpoints/<slug:name>/predict", endpoints_serving.predict, "endpoint-predict"),
    *route("v1/endpoints/<slug:name>/versions/<int:number>/predict", endpoints_serving.predict,
           "endpoint-version-predict"),
    *route("v1/endpoints/<slug:name>/metadata", endpoints_serving.metadata, "endpoint-metadata"),
    *route("v1/endpoints/<slug:name>/versions/<int:number>/metadata", endpoints_serving.metadata,
           "endpoint-version-metadata"),
    *route("v1/endpoints/<slug:name>/health", endpoints_serving.health, "endpoint-health"),
    *route("v1/endpoints/<slug:name>/ready", endpoints_serving.ready, "endpoint-ready"),
]

# KServe v2 / Open Inference Protocol (async views, API keys)
open_inference = [
    path("", endpoints_serving.v2_server, name="v2-server-slash"),
    path("health/live", endpoints_serving.v2_live, name="v2-live"),
    path("health/ready", endpoints_serving.v2_ready, name="v2-ready"),
    path("models/stats", endpoints_serving.v2_model_statistics, name="v2-all-stats"),
    path("models/<slug:name>", endpoints_serving.v2_model, name="v2-model"),
    path("models/<slug:name>/config", endpoints_serving.v2_model_config, name="v2-model-config"),
    path("models/<slug:name>/stats", endpoints_serving.v2_model_statistics, name="v2-model-stats"),
    path("models/<slug:name>/versions/<int:version>/config", endpoints_serving.v2_model_config,
         name="v2-version-config"),
    path("models/<slug:name>/versions/<int:version>/stats", endpoints_serving.v2_model_statistics,
         name="v2-version-stats"),
    path("models/<slug:name>/ready", endpoints_serving.ready, name="v2-model-ready"),
    path("models/<slug:name>/infer", endpoints_serving.v2_infer, name="v2-infer"),
    path("models/<slug:name>/versions/<int:version>", endpoints_serving.v2_model, name="v2-model-version"),
    path("models/<slug:name>/versions/<int:number>/ready", endpoints_serving.ready, name="v2-model-version-ready"),
    path("models/<slug:name>/versions/<int:version>/infer", endpoints_serving.v2_infer, name="v2-version-infer"),
    re_path(r"^(?P<path>.*)$", endpoints_serving.v2_not_found, name="v2-not-found"),  # the protocol's error shape
]

urlpatterns = [
    path("api/", include(api)),
    path("v2", endpoints_serving.v2_server, name="v2-server"),
    path("v2/", include(open_inference)),
    path("admin/", admin.site.urls),
    # everything else is a page of the browser app (its own router decides what to show)
    re_path(r"^(?!api/|admin/|static/|ws/|v2/)(?P<path>.*)$", frontend.index, name="frontend"),
]

handler400 = "webapp.core.exceptions.bad_request"
handler403 = "webapp.core.exceptions.permission_denied"
handler404 = "webapp.core.exceptions.not_found"
handler500 = "webapp.core.exceptions.server_error"
