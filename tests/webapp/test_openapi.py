"""The OpenAPI document is generated from the code, valid, and without warnings."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.urls import URLResolver, get_resolver
from drf_spectacular.drainage import GENERATOR_STATS
from openapi_spec_validator import OpenAPIV30SpecValidator

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


def test_the_document_is_valid_openapi_with_one_body_type_per_operation(tmp_path):
    target = tmp_path / "openapi.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(target), stderr=io.StringIO())
    document = json.loads(target.read_text())
    errors = [error.message for error in OpenAPIV30SpecValidator(document).iter_errors()]
    assert errors == []
    operations = {(path, method): operation for path, methods in document["paths"].items()
                  for method, operation in methods.items() if method in ("get", "post", "put", "patch", "delete")}
    several = {key: sorted(op["requestBody"]["content"]) for key, op in operations.items()
               if len(op.get("requestBody", {}).get("content", {})) > 1}
    assert several == {}, "generators choke on a body offered as JSON, form and multipart at once"
    upload = operations[("/api/datasets/upload", "post")]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]
    upload_schema = document["components"]["schemas"][upload["multipart/form-data"]["schema"]["$ref"].split("/")[-1]]
    assert upload_schema["properties"]["file"] == {**upload_schema["properties"]["file"], "format": "binary"}
    server = operations[("/v2", "get")]["responses"]["200"]["content"]["application/json"]["schema"]
    assert server == {"$ref": "#/components/schemas/V2ServerMetadata"}


# Served routes that are not API operations: the document itself and its reference page, the browsable
# API's login form, the alternate spellings (unnamed), the catch-alls (the browser app's pages and /v2's
# not-found answer), Triton's every-model statistics (only ever a 400 naming what to ask instead) and
# the admin.
NOT_OPERATIONS = {"schema", "docs", "login", "logout", "frontend", "v2-not-found", "v2-server-slash",
                  "v2-all-stats"}


def test_every_served_route_is_in_the_document(tmp_path):
    target = tmp_path / "openapi.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(target), stderr=io.StringIO())
    paths = json.loads(target.read_text())["paths"]

    def routes(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if getattr(pattern, "app_name", None) != "admin":
                    yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
            elif pattern.name and pattern.name not in NOT_OPERATIONS:
                yield pattern.name, "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + str(pattern.pattern))

    served = dict(routes(get_resolver().url_patterns))
    assert len(served) >= 50 and "/v2" in served.values()
    missing = {name: path for name, path in served.items() if path not in paths}
    assert missing == {}
    for name, path in served.items():
        for method, operation in paths[path].items():
            if method == "parameters":
                continue
            assert any(response.get("content") or code == "204" for code, response in operation["responses"].items()
                       if code.startswith("2")), (name, method, "a success answer without a schema")


def test_the_schema_and_an_interactive_reference_are_served_without_a_cdn(anonymous_client):
    response = anonymous_client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/projects/{project_id}/runs" in response.content
    docs = anonymous_client.get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "swagger-ui" in page and "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "//cdn" not in page and "https://" not in page.split("<body")[0], "every file from this server"
    assert "<script>" not in page, "no inline script: the production Content-Security-Policy allows none"
    script = re.search(r'<script src="([^"]*\?script=[^"]*)"', page)
    assert script, page
    initializer = anonymous_client.get(script.group(1).replace("&amp;", "&"))
    assert initializer.status_code == 200 and b"/api/schema/" in initializer.content
    bundle = anonymous_client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert bundle.status_code == 200


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
