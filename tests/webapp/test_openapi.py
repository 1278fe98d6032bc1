"""The OpenAPI document is generated from the code, valid, and without warnings."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS

pytestmark = pytest.mark.django_db

# The document as the browser app's generated types were made from (frontend/src/api/schema.d.ts).
COMMITTED_DOCUMENT = Path(__file__).resolve().parents[2] / "frontend" / "src" / "api" / "openapi.json"


def test_the_schema_generates_valid_and_without_warnings(tmp_path):
    GENERATOR_STATS.reset()  # only this generation's warnings count
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target), stderr=io.StringIO())
    schema = yaml.safe_load(target.read_text())
    paths = schema["paths"]
    for path, method in [("/api/projects", "post"), ("/api/projects/{project_id}/versions", "post"),
                         ("/api/projects/{project_id}/runs", "post"), ("/api/runs/{run_id}/metrics", "get"),
                         ("/api/datasets/upload", "post"), ("/api/graphs/validate", "post"), ("/api/ops", "get"),
                         ("/api/auth/login/", "post"), ("/api/auth/token/", "post")]:
        assert method in paths[path], (path, method)
    assert not any(path.endswith("/") and path[:-1] in paths for path in paths), "one spelling per path"
    versions = paths["/api/projects/{project_id}/versions/{version_id}"]
    assert set(versions) - {"parameters"} == {"get"}, "graph versions cannot be changed"


def test_the_schema_and_docs_are_served(anonymous_client):
    response = anonymous_client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/projects/{project_id}/runs" in response.content
    docs = anonymous_client.get("/api/docs/")
    assert docs.status_code == 200 and b"/api/runs/{run_id}/metrics" in docs.content
    assert b"<script" not in docs.content, "served without JavaScript (no CDN needed)"


def test_the_frontend_types_are_made_from_the_current_document(tmp_path):
    """The committed document is the one the code generates now, so the frontend's API types (generated
    from it; `npm run check:api-types` checks that half) describe the server as it is."""
    target = tmp_path / "openapi.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(target), stderr=io.StringIO())
    generated = json.loads(target.read_text())
    committed = json.loads(COMMITTED_DOCUMENT.read_text())
    assert generated == committed, (
        "frontend/src/api/openapi.json is stale: the server's OpenAPI document has changed. "
        "Run `make api-types` and commit frontend/src/api/openapi.json and schema.d.ts")
