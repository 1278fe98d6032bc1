"""The OpenAPI document as client generators read it (drf-spectacular's extension points).

- ``AutoSchema`` lists one request body type per operation: JSON where JSON is the API, multipart
  where a file is uploaded. The server still parses form bodies too (``DEFAULT_PARSER_CLASSES``), but a
  body offered as JSON, form and multipart at once makes generators such as openapi-python-client
  emit clients that do not import.
- ``add_served_routes`` (a postprocessing hook, after ``webapp.endpoints.schema``'s) describes the
  plain async views the document would otherwise lack: ``GET /v2``, the Open Inference Protocol's
  server metadata (``webapp.endpoints.serving.v2_server``). It only adds what is missing, so a
  fuller description elsewhere wins.
"""

from __future__ import annotations

from drf_spectacular import openapi

JSON = "application/json"
MULTIPART = "multipart/form-data"


class AutoSchema(openapi.AutoSchema):
    def map_parsers(self):
        media_types = super().map_parsers()
        for only in (JSON, MULTIPART):
            if only in media_types:
                return [only]
        return media_types


SERVER_METADATA = {
    "type": "object", "required": ["name", "version", "extensions"],
    "properties": {"name": {"type": "string", "example": "netforge"},
                   "version": {"type": "string"},
                   "extensions": {"type": "array", "items": {"type": "string"},
                                  "description": "the protocol extensions this server implements"}},
}


def _server_metadata_operation() -> dict:
    return {
        "operationId": "v2_server_metadata",
        "summary": "The server's name, version and protocol extensions (Open Inference Protocol).",
        "tags": ["open inference protocol (KServe v2)"], "security": [{}],
        "responses": {"200": {"description": "the server metadata",
                              "content": {JSON: {"schema": {"$ref": "#/components/schemas/V2ServerMetadata"}}}}},
    }


def add_served_routes(result: dict, generator=None, request=None, public=None) -> dict:
    """drf-spectacular postprocessing hook: the served routes no DRF view declares."""
    result.setdefault("paths", {}).setdefault("/v2", {}).setdefault("get", _server_metadata_operation())
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("V2ServerMetadata", SERVER_METADATA)
    return result
