"""The prediction routes in the OpenAPI document (``/api/schema/``).

They are async Django views (and an ASGI fast path, ``webapp.endpoints.asgi``), not DRF views, so
drf-spectacular cannot see them; this postprocessing hook (``SPECTACULAR_SETTINGS``'s
``POSTPROCESSING_HOOKS``) adds them, with their request and response formats, their API-key
security and every error they answer with. The formats are the ones ``webapp.endpoints.serving``
and ``webapp.serving.inputs`` read and write; ``tests/endpoints/test_endpoints_api.py`` checks the
document against real answers.
"""

from __future__ import annotations

NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "the endpoint's name"}
NUMBER = {"name": "number", "in": "path", "required": True, "schema": {"type": "integer"},
          "description": "a version number (without it: the endpoint's default version)"}
VERSION = {**NUMBER, "name": "version"}
KEYED = [{"endpointKey": []}, {"endpointKeyHeader": []}]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(error: str, *statuses: int) -> dict:
    reasons = {400: "a bad input: the message and details name the field and the expected shape and dtype",
               401: "no API key, or one that is unknown or revoked for this endpoint",
               404: "no such endpoint or version", 405: "another method than the route's",
               413: "the body or the number of instances is over the limit",
               429: "the endpoint's queue is full: retry after the Retry-After seconds",
               503: "the endpoint has no ready version, or it could not be loaded"}
    return {str(status): _json(_ref(error), reasons[status]) for status in statuses}


COMPONENTS = {
    "EndpointError": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message", "details"], "properties": {
            "code": {"type": "string", "example": "invalid_input"},
            "message": {"type": "string",
                        "example": "instances: expected shape [N, 64] (a batch of [64]), got [1, 63]"},
            "details": {"type": "object", "additionalProperties": True,
                        "example": {"field": "instances", "input": "x", "shape": [None, 64], "dtype": "float32"}}}}}},
    "PredictRequest": {
        "type": "object",
        "description": "Either instances (rows, or objects of inputs by name) or inputs (batches by input name).",
        "properties": {
            "instances": {"type": "array", "minItems": 1, "items": {},
                          "example": [[0.0, 0.5, 1.0]]},
            "inputs": {"type": "object", "additionalProperties": {"type": "array", "items": {}}}}},
    "Prediction": {
        "type": "object",
        "description": "A classifier's class, label and probabilities; a regressor's value; else the graph's outputs.",
        "properties": {"class": {"type": "integer"}, "label": {"type": "string", "nullable": True},
                       "probabilities": {"type": "array", "items": {"type": "number"}},
                       "value": {}},
        "additionalProperties": True},
    "PredictResponse": {
        "type": "object", "required": ["endpoint", "version", "predictions"],
        "properties": {"endpoint": {"type": "string"}, "version": {"type": "integer"},
                       "predictions": {"type": "array", "items": _ref("Prediction")}}},
    "TensorSpec": {
        "type": "object",
        "properties": {"name": {"type": "string"},
                       "shape": {"type": "array", "items": {"type": "integer", "nullable": True}},
                       "dtype": {"type": "string"}, "standardized": {"type": "boolean"},
                       "feature_names": {"type": "array", "items": {"type": "string"}, "nullable": True}}},
    "VersionMetadata": {
        "type": "object",
        "properties": {"endpoint": {"type": "string"}, "version": {"type": "integer"},
                       "task": {"type": "string", "nullable": True},
                       "inputs": {"type": "array", "items": _ref("TensorSpec")},
                       "outputs": {"type": "array", "items": _ref("TensorSpec")},
                       "label_names": {"type": "array", "items": {"type": "string"}, "nullable": True},
                       "source": {"type": "object", "additionalProperties": True,
                                  "description": "the run it came from and that run's final metrics"},
                       "engine_version": {"type": "string", "nullable": True}}},
    "EndpointHealth": {
        "type": "object",
        "properties": {"endpoint": {"type": "string"}, "status": {"type": "string", "enum": ["ok", "no_ready_version"]},
                       "default_version": {"type": "integer", "nullable": True}}},
    "EndpointReadiness": {
        "type": "object",
        "properties": {"endpoint": {"type": "string"}, "name": {"type": "string"},
                       "version": {"type": "integer", "nullable": True}, "ready": {"type": "boolean"}}},
    "V2Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "V2Tensor": {
        "type": "object", "required": ["name", "shape", "datatype", "data"],
        "properties": {"name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
                       "datatype": {"type": "string", "enum": ["FP32", "FP64", "INT32", "INT64", "BOOL"]},
                       "data": {"type": "array", "items": {}}}},
    "V2InferRequest": {
        "type": "object", "required": ["inputs"],
        "properties": {"id": {"type": "string"}, "inputs": {"type": "array", "items": _ref("V2Tensor")},
                       "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                              "properties": {"name": {"type": "string"}}}}}},
    "V2InferResponse": {
        "type": "object", "required": ["model_name", "model_version", "outputs"],
        "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"},
                       "id": {"type": "string"}, "outputs": {"type": "array", "items": _ref("V2Tensor")}}},
    "V2TensorMetadata": {
        "type": "object", "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                                         "shape": {"type": "array", "items": {"type": "integer"}}}},
    "V2ModelMetadata": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
                       "platform": {"type": "string"}, "inputs": {"type": "array", "items": _ref("V2TensorMetadata")},
                       "outputs": {"type": "array", "items": _ref("V2TensorMetadata")}}},
    "V2ModelConfig": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "platform": {"type": "string"},
                       "max_batch_size": {"type": "integer"},
                       "input": {"type": "array", "items": _ref("V2ConfigTensor")},
                       "output": {"type": "array", "items": _ref("V2ConfigTensor")},
                       "dynamic_batching": {"type": "object", "additionalProperties": True}},
        "additionalProperties": True},
    "V2ConfigTensor": {
        "type": "object", "properties": {"name": {"type": "string"}, "data_type": {"type": "string"},
                                         "dims": {"type": "array", "items": {"type": "integer"}}},
        "additionalProperties": True},
    "V2ModelStatistics": {
        "type": "object",
        "properties": {"model_stats": {"type": "array", "items": {
            "type": "object", "additionalProperties": True,
            "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                           "inference_count": {"type": "integer"}, "execution_count": {"type": "integer"},
                           "inference_stats": {"type": "object", "additionalProperties": True}}}}}},
}

SECURITY_SCHEMES = {
    "endpointKey": {"type": "http", "scheme": "bearer",
                    "description": "the endpoint's API key: 'Authorization: Bearer <key>'"},
    "endpointKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                          "description": "the endpoint's API key, as an X-API-Key header"},
}


def _operation(operation_id: str, summary: str, *, tag: str, parameters: list, responses: dict,
               request: str | None = None, keyed: bool = True) -> dict:
    operation = {"operationId": operation_id, "summary": summary, "tags": [tag], "parameters": parameters,
                 "responses": responses, "security": KEYED if keyed else [{}]}
    if request is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(request)}}}
    return operation


def _paths() -> dict:
    predict = "Predict: a JSON batch of instances in, one prediction per instance out (dynamically batched)."
    paths = {}
    for suffix, parameters, version in (("", [NAME], ""), ("/versions/{number}", [NAME, NUMBER], "_version")):
        base = f"/api/v1/endpoints/{{name}}{suffix}"
        paths[f"{base}/predict"] = {"post": _operation(
            f"endpoint{version}_predict", predict, tag="predictions", parameters=parameters, request="PredictRequest",
            responses={"200": _json(_ref("PredictResponse"), "the predictions"),
                       **_errors("EndpointError", 400, 401, 404, 405, 413, 429, 503)})}
        paths[f"{base}/metadata"] = {"get": _operation(
            f"endpoint{version}_metadata", "The version's input and output schema and the run it came from.",
            tag="predictions", parameters=parameters,
            responses={"200": _json(_ref("VersionMetadata"), "the metadata"),
                       **_errors("EndpointError", 401, 404, 405, 503)})}
    paths["/api/v1/endpoints/{name}/health"] = {"get": _operation(
        "endpoint_health", "Whether the endpoint has a ready default version (no key needed).", tag="predictions",
        parameters=[NAME], keyed=False,
        responses={"200": _json(_ref("EndpointHealth"), "a ready default version exists"),
                   "503": _json(_ref("EndpointHealth"), "no ready version"), **_errors("EndpointError", 404)})}
    paths["/api/v1/endpoints/{name}/ready"] = {"get": _operation(
        "endpoint_ready", "Whether the default version is loaded and warmed up in this server (no key needed).",
        tag="predictions", parameters=[NAME], keyed=False,
        responses={"200": _json(_ref("EndpointReadiness"), "loaded and warmed up"),
                   "503": _json(_ref("EndpointReadiness"), "not loaded yet (asking starts loading it)"),
                   **_errors("EndpointError", 404)})}
    tag = "open inference protocol (KServe v2)"
    live = {"type": "object", "properties": {"live": {"type": "boolean"}}}
    ready = {"type": "object", "properties": {"ready": {"type": "boolean"}}}
    paths["/v2/health/live"] = {"get": _operation("v2_live", "The server is up.", tag=tag, parameters=[], keyed=False,
                                                  responses={"200": _json(live, "live")})}
    paths["/v2/health/ready"] = {"get": _operation(
        "v2_ready", "The server can answer (its database is reachable).", tag=tag, parameters=[], keyed=False,
        responses={"200": _json(ready, "ready"), "503": _json(ready, "not ready")})}
    for suffix, parameters, version in (("", [NAME], ""), ("/versions/{version}", [NAME, VERSION], "_version")):
        base = f"/v2/models/{{name}}{suffix}"
        paths[base] = {"get": _operation(
            f"v2_model{version}", "The model's metadata (Open Inference Protocol).", tag=tag, parameters=parameters,
            responses={"200": _json(_ref("V2ModelMetadata"), "the model metadata"),
                       **_errors("V2Error", 401, 404, 405, 503)})}
        ready_parameters = parameters if not version else [NAME, NUMBER]
        paths[f"{base}/ready".replace("{version}", "{number}")] = {"get": _operation(
            f"v2_model{version}_ready", "Whether the model version is loaded and warmed up (no key needed).", tag=tag,
            parameters=ready_parameters, keyed=False,
            responses={"200": _json(_ref("EndpointReadiness"), "ready"),
                       "503": _json(_ref("EndpointReadiness"), "not loaded yet"), **_errors("V2Error", 404)})}
        paths[f"{base}/config"] = {"get": _operation(
            f"v2_model{version}_config", "Triton's model configuration: the tensors (TYPE_* data types, dims without "
            "the batch dimension), max_batch_size and the endpoint's dynamic batching.", tag=tag,
            parameters=parameters, responses={"200": _json(_ref("V2ModelConfig"), "the model configuration"),
                                              **_errors("V2Error", 401, 404, 405, 503)})}
        paths[f"{base}/stats"] = {"get": _operation(
            f"v2_model{version}_stats", "Triton's inference statistics of the version (or of every version): "
            "instances and forward passes run, requests answered and refused; queue and compute times are not "
            "measured and stay 0.", tag=tag, parameters=parameters,
            responses={"200": _json(_ref("V2ModelStatistics"), "the statistics"),
                       **_errors("V2Error", 401, 404, 405)})}
        paths[f"{base}/infer"] = {"post": _operation(
            f"v2_model{version}_infer", "Inference with tensors as flat data, shape and datatype (Open Inference "
            "Protocol).", tag=tag, parameters=parameters, request="V2InferRequest",
            responses={"200": _json(_ref("V2InferResponse"), "the output tensors"),
                       **_errors("V2Error", 400, 401, 404, 405, 413, 429, 503)})}
    return paths


def add_prediction_routes(result: dict, generator=None, request=None, public=None) -> dict:
    """drf-spectacular postprocessing hook: the prediction routes, their formats and their keys."""
    result.setdefault("paths", {}).update(_paths())
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(COMPONENTS)
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    return result
