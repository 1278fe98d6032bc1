"""The prediction routes: async views that hand requests to the dynamic batcher and await the
result without blocking the event loop (``webapp.serving.runtime``).

NetForge routes (house error shape ``{"error": {"code", "message", "details"}}``):

- ``POST /api/v1/endpoints/<name>/predict`` and ``/versions/<n>/predict``: ``{"instances": [...]}``
  (rows, or objects by input name) or ``{"inputs": {name: batch}}`` -> ``{"predictions": [...]}``;
- ``GET /api/v1/endpoints/<name>/metadata`` and ``/versions/<n>/metadata``;
- ``GET /api/v1/endpoints/<name>/health`` (a ready default version exists; with a key) and
  ``/ready`` (it is loaded and warmed up in this server; without a key, for probes).

KServe v2 / Open Inference Protocol routes (its error shape ``{"error": "message"}``):
``GET /v2/health/live``, ``/v2/health/ready``, ``/v2/models/<name>[/versions/<v>]``,
``.../ready``, and ``POST /v2/models/<name>[/versions/<v>]/infer``, with the binary tensor data
extension as Triton implements it: a body of ``Inference-Header-Content-Length`` bytes of JSON,
then the raw little-endian bytes of the inputs whose ``parameters.binary_data_size`` says how many;
outputs asked for in binary (``parameters.binary_data_output`` for all, or an output's own
``parameters.binary_data``) come back the same way, after a JSON header of the length that header
gives. Model metadata declares every output infer returns, and the class labels
(``webapp.serving.open_inference``).

Callers authenticate with the endpoint's API key: ``Authorization: Bearer <key>`` (or
``X-API-Key: <key>``). These are plain Django views rather than DRF ones (DRF views are
synchronous); their request and response formats are documented here and in the README.
"""

from __future__ import annotations

import json

import numpy
import orjson
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from webapp.core.exceptions import error_body
from webapp.core.json_input import INT64_MAX, UnsafeJsonValue, check_json
from webapp.serving import inputs as serving_inputs
from webapp.serving.inputs import DTYPE_TO_V2, V2_DATATYPES, InputError
from webapp.serving.open_inference import V2_DATATYPE_OF, model_metadata, server_metadata
from webapp.serving.runtime import BadInput, NotFound, ServingError, TooLarge, get_runtime, setting, version_metadata

BINARY_HEADER = "Inference-Header-Content-Length"

MAX_VERSION_NUMBER = INT64_MAX


def _api_key(headers) -> str | None:
    header = headers.get("authorization") or headers.get("Authorization") or ""
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return headers.get("x-api-key") or headers.get("X-Api-Key")


def error_answer(error: ServingError, *, v2: bool = False) -> tuple[int, dict, dict]:
    """A refusal as (HTTP status, JSON body, extra headers): the house error shape, or the Open
    Inference Protocol's ``{"error": message}`` with ``v2``; 401 asks for a bearer key, 429 says
    when to retry."""
    body = {"error": error.message} if v2 else error_body(error.code, error.message, error.details)
    extra = {}
    if error.status == 401:
        extra["WWW-Authenticate"] = 'Bearer realm="netforge-endpoint"'
    elif error.status == 429:
        extra["Retry-After"] = "1"
    return error.status, body, extra


def _answer_error(error: ServingError, *, v2: bool = False) -> JsonResponse:
    status, body, extra = error_answer(error, v2=v2)
    response = JsonResponse(body, status=status)
    for name, value in extra.items():
        response[name] = value
    return response


def _method_not_allowed(request, allowed: str, *, v2: bool = False) -> JsonResponse:
    message = f"method {request.method} is not allowed here; use {allowed}"
    response = JsonResponse({"error": message} if v2 else error_body("method_not_allowed", message), status=405)
    response["Allow"] = allowed
    return response


def max_request_bytes() -> int:
    """The largest request body the prediction routes take (``SERVING_MAX_REQUEST_BYTES``)."""
    return setting("SERVING_MAX_REQUEST_BYTES", 4 * 1024 * 1024)


def check_request_size(size: int | None) -> None:
    """Raise ``TooLarge`` when a body of ``size`` bytes (``None``: not known yet) is over
    ``SERVING_MAX_REQUEST_BYTES``."""
    limit = max_request_bytes()
    if size is not None and size > limit:
        raise TooLarge(f"the request body has {size} bytes; at most {limit}", details={"limit": limit})


def _payload(body: bytes) -> dict:
    """The JSON body as an object; ``InputError`` otherwise (naming the JSON path of a value that
    cannot be sent back or computed with: see ``webapp.core.json_input``)."""
    check_request_size(len(body))
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson keeps to strict JSON; Python's json module also reads NaN and Infinity (which
        # json.dumps writes), so such a body still gets the error that names the model input. It
        # also reads what orjson refuses for good reason (lone surrogates, integers of thousands of
        # digits), which check_json then refuses by their path.
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise InputError("body", f"not valid JSON ({error})") from None
        try:
            check_json(payload, allow_non_finite=True)
        except UnsafeJsonValue as error:
            raise InputError(error.path, error.problem) from None
    if not isinstance(payload, dict):
        raise InputError("body", "expected a JSON object")
    if "id" in payload and not isinstance(payload["id"], str):
        raise InputError("id", f"the request id must be a string, got {type(payload['id']).__name__}")
    return payload


def check_version_number(number) -> None:
    """``NotFound`` for a version number no database integer holds (from a URL of any length)."""
    if number is not None and not 0 <= int(number) <= MAX_VERSION_NUMBER:
        raise NotFound(f"no version {str(number)[:30]}: version numbers are at most {MAX_VERSION_NUMBER}",
                       details={"version": None})


def declared_request_size(headers) -> int | None:
    """The body size a request declares in ``Content-Length``, if it declares a valid one."""
    declared = headers.get("content-length") or headers.get("Content-Length")
    return int(declared) if declared and declared.isdigit() else None


def _header(headers, name: str) -> str | None:
    return headers.get(name.lower()) or headers.get(name)


def _split_binary_body(headers, body: bytes) -> tuple[bytes, bytes]:
    """(JSON header, binary tensor data) of a v2 request body (binary tensor data extension)."""
    declared = _header(headers, BINARY_HEADER)
    if declared is None:
        return body, b""
    if not declared.strip().isdigit() or int(declared) > len(body):
        raise InputError(BINARY_HEADER, f"must be the length of the JSON header in bytes, at most the body's "
                                        f"{len(body)}; got {declared[:30]!r}")
    return body[:int(declared)], body[int(declared):]


def _read_binary_inputs(inputs, binary: bytes) -> None:
    """Replace the ``data`` of each input that carries ``parameters.binary_data_size`` by its array,
    read in order from ``binary`` (little-endian, C order)."""
    if not isinstance(inputs, list):
        return  # from_v2 says what is wrong with it
    offset = 0
    for index, tensor in enumerate(inputs):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or "binary_data_size" not in parameters:
            continue
        field = f"inputs[{index}].parameters.binary_data_size"
        size = parameters["binary_data_size"]
        dtype = V2_DATATYPES.get(tensor.get("datatype"))
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InputError(field, f"must be a number of bytes, got {size!r}")
        if dtype is None:
            raise InputError(f"inputs[{index}].datatype", f"expected one of {sorted(V2_DATATYPES)}, got "
                                                          f"{tensor.get('datatype')!r}")
        if offset + size > len(binary):
            raise InputError(field, f"{size} bytes from byte {offset} of the binary data, which holds {len(binary)}")
        itemsize = numpy.dtype(dtype).itemsize
        if size % itemsize:
            raise InputError(field, f"{size} bytes is not a whole number of {tensor['datatype']} values "
                                    f"({itemsize} bytes each)")
        tensor["data"] = numpy.frombuffer(binary[offset:offset + size], dtype=numpy.dtype(dtype).newbyteorder("<"))
        offset += size
    if offset != len(binary):
        raise InputError(BINARY_HEADER, f"the body holds {len(binary)} bytes after the JSON header; the inputs' "
                                        f"binary_data_size add up to {offset}")


def _v2_outputs(payload: dict, outputs: dict) -> list[tuple[str, numpy.ndarray, bool]]:
    """The outputs a v2 request asks for, each with whether it goes back as binary data: an
    output's ``parameters.binary_data`` decides, else the request's ``binary_data_output``."""
    parameters = payload.get("parameters")
    default = bool(parameters.get("binary_data_output", False)) if isinstance(parameters, dict) else False
    wanted = payload.get("outputs")
    if wanted is None:
        return [(name, array, default) for name, array in outputs.items()]
    if not isinstance(wanted, list) or not all(isinstance(item, dict) and item.get("name") in outputs
                                               for item in wanted):
        raise BadInput(f"outputs: each requested output must be {{\"name\": ...}} with a name among "
                       f"{sorted(outputs)}")
    chosen = []
    for item in wanted:
        own = item.get("parameters")
        binary = own.get("binary_data", default) if isinstance(own, dict) else default
        chosen.append((item["name"], outputs[item["name"]], bool(binary)))
    return chosen


async def answer_predict(name: str, number: int | None, headers, body: bytes, *,
                         v2: bool) -> tuple[int, dict | bytes, dict]:
    """A prediction request, whatever carried it: (HTTP status, JSON body, extra headers); with
    binary outputs (v2) the body is bytes already (JSON header, then the tensors) and the extra
    headers hold ``Inference-Header-Content-Length``. Used by the Django views below and by the
    ASGI fast path (``webapp.endpoints.asgi``)."""
    state = {}

    def decode(specs):
        if v2:
            header, binary = _split_binary_body(headers, body)
            payload = state["payload"] = _payload(header)
            if "inputs" not in payload:
                raise InputError("inputs", 'missing: send {"inputs": [{"name", "shape", "datatype", "data"}]}',
                                 expected={"inputs": [{**spec.describe(), "datatype": DTYPE_TO_V2[spec.dtype]}
                                                      for spec in specs]})
            _read_binary_inputs(payload["inputs"], binary)
            return serving_inputs.from_v2(payload["inputs"], specs)
        payload = state["payload"] = _payload(body)
        if "instances" in payload:
            return serving_inputs.from_instances(payload["instances"], specs)
        if "inputs" in payload:
            return serving_inputs.from_columns(payload["inputs"], specs)
        raise InputError("instances", "missing: send {\"instances\": [...]} (rows, or objects by input name) "
                                      "or {\"inputs\": {name: batch}}",
                         expected={"inputs": [spec.describe() for spec in specs]})

    try:
        check_request_size(declared_request_size(headers))
        check_version_number(number)
        loaded, result = await get_runtime().serve(name=name, version=number, api_key=_api_key(headers),
                                                   decode=decode, protocol="rest")
        if not v2:
            return 200, {"endpoint": name, "version": loaded.number,
                         "predictions": serving_inputs.to_instances(result)}, {}
        chosen = _v2_outputs(state["payload"], serving_inputs.output_arrays(result))
    except ServingError as error:
        return error_answer(error, v2=v2)
    described, binary = [], []
    for key, array, as_binary in chosen:
        array = numpy.asarray(array)
        entry = {"name": key, "shape": list(array.shape), "datatype": V2_DATATYPE_OF.get(str(array.dtype), "FP64")}
        if as_binary:
            content = numpy.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(content)}
            binary.append(content)
        else:
            entry["data"] = array.ravel().tolist()
        described.append(entry)
    answer = {"model_name": name, "model_version": str(loaded.number), "outputs": described}
    if "id" in state["payload"]:
        answer["id"] = state["payload"]["id"]
    if not binary:
        return 200, answer, {}
    header = orjson.dumps(answer)
    return 200, header + b"".join(binary), {BINARY_HEADER: str(len(header))}


def _json_response(status: int, body: dict | bytes, extra: dict) -> HttpResponse:
    if isinstance(body, bytes):  # binary tensor data after a JSON header (see answer_predict)
        response = HttpResponse(body, status=status, content_type="application/octet-stream")
    else:
        response = JsonResponse(body, status=status)
    for header, value in extra.items():
        response[header] = value
    return response


# -- NetForge routes ------------------------------------------------------------------------------------

@csrf_exempt
async def predict(request, name: str, number: int | None = None):
    if request.method != "POST":
        return _method_not_allowed(request, "POST")
    try:
        check_request_size(declared_request_size(request.headers))
    except ServingError as error:
        return _answer_error(error)
    return _json_response(*await answer_predict(name, number, request.headers, request.body, v2=False))


async def metadata(request, name: str, number: int | None = None):
    if request.method != "GET":
        return _method_not_allowed(request, "GET")
    runtime = get_runtime()
    try:
        check_version_number(number)
        _route, loaded = await runtime.resolve(name, number, _api_key(request.headers))
    except ServingError as error:
        return _answer_error(error)
    return JsonResponse(version_metadata(name, loaded))


async def health(request, name: str):
    """Whether the endpoint has a ready default version, for a caller with one of its keys: without
    one the answer is the same 401 whether or not the endpoint exists, so it reveals nothing."""
    try:
        route = await get_runtime().authorized_route(name, _api_key(request.headers))
    except ServingError as error:
        return _answer_error(error)
    ok = route.default is not None and route.versions[route.default].state == "ready"
    return JsonResponse({"endpoint": name, "status": "ok" if ok else "no_ready_version",
                         "default_version": route.default}, status=200 if ok else 503)


async def ready(request, name: str, number: int | None = None):
    """Whether the version (the default one without ``number``) is loaded and warmed up in this
    server; asking starts loading it (no key needed)."""
    runtime = get_runtime()
    try:
        route = await runtime.route(name)
    except ServingError as error:
        return _answer_error(error, v2=request.path.startswith("/v2/"))
    wanted = number if number is not None else runtime.active.get(name)
    target = route.versions.get(wanted) if wanted is not None else None
    if number is not None and target is None:  # not "not ready yet": there is no such version
        return _answer_error(NotFound(f"endpoint {name!r} has no version {str(number)[:30]}",
                                      details={"version": None}), v2=request.path.startswith("/v2/"))
    loaded = runtime.cache.peek(route.id, wanted, target.path) if target is not None else None
    if target is not None and target.state == "ready" and loaded is None:
        runtime.refresh_in_background()
    is_ready = loaded is not None
    return JsonResponse({"endpoint": name, "name": name, "version": wanted, "ready": is_ready},
                        status=200 if is_ready else 503)


# -- KServe v2 / Open Inference Protocol --------------------------------------------------------------------

async def v2_server(request):
    """Server metadata of the Open Inference Protocol (``GET /v2``), with the extensions it implements."""
    return JsonResponse(server_metadata())


@csrf_exempt  # a client's POST to a route this server lacks (repository load) gets the protocol's 404 too
async def v2_not_found(request, path: str = ""):
    """Any other ``/v2/...`` path: the protocol's error shape (a string), which its clients read."""
    return JsonResponse({"error": f"no Open Inference Protocol route {request.path[:200]!r} "
                                  f"(this server implements: health, server and model metadata, model "
                                  f"ready, infer, and Triton's model config and stats)"}, status=404)


async def v2_live(request):
    return JsonResponse({"live": True})


async def v2_ready(request):
    runtime = get_runtime()
    try:
        await runtime.refresh_if_invalidated()
    except Exception:  # noqa: BLE001  (the database is unreachable: not ready)
        return JsonResponse({"ready": False}, status=503)
    return JsonResponse({"ready": True})


async def v2_model(request, name: str, version: int | None = None):
    if request.method != "GET":
        return _method_not_allowed(request, "GET", v2=True)
    runtime = get_runtime()
    try:
        check_version_number(version)
        route, loaded = await runtime.resolve(name, version, _api_key(request.headers))
    except ServingError as error:
        return _answer_error(error, v2=True)
    return JsonResponse(model_metadata(name, route, loaded))


async def v2_model_config(request, name: str, version: int | None = None):
    """Triton's model configuration (``GET /v2/models/<name>[/versions/<v>]/config``, the same as
    its ModelConfig RPC, see ``webapp.serving.open_inference_grpc``), with the endpoint's key."""
    from webapp.serving import open_inference_grpc  # noqa: PLC0415 - the protocol's messages load with the gRPC side

    if request.method != "GET":
        return _method_not_allowed(request, "GET", v2=True)
    try:
        check_version_number(version)
        route, loaded = await get_runtime().resolve(name, version, _api_key(request.headers))
    except ServingError as error:
        return _answer_error(error, v2=True)
    return JsonResponse(open_inference_grpc.as_json(open_inference_grpc.model_config(name, route, loaded)))


async def v2_model_statistics(request, name: str | None = None, version: int | None = None):
    """Triton's inference statistics (``GET /v2/models/<name>[/versions/<v>]/stats``, the same as its
    ModelStatistics RPC); ``/v2/models/stats`` (every model) is refused: statistics are per endpoint,
    behind its key."""
    from webapp.serving import open_inference_grpc  # noqa: PLC0415 - the protocol's messages load with the gRPC side

    if request.method != "GET":
        return _method_not_allowed(request, "GET", v2=True)
    if name is None:
        return JsonResponse({"error": open_inference_grpc.STATISTICS_NEED_A_NAME}, status=400)
    try:
        check_version_number(version)
        response = await open_inference_grpc.model_statistics(get_runtime(), name, version,
                                                               _api_key(request.headers))
    except ServingError as error:
        return _answer_error(error, v2=True)
    return JsonResponse(open_inference_grpc.as_json(response))


@csrf_exempt
async def v2_infer(request, name: str, version: int | None = None):
    if request.method != "POST":
        return _method_not_allowed(request, "POST", v2=True)
    try:
        check_request_size(declared_request_size(request.headers))
    except ServingError as error:
        return _answer_error(error, v2=True)
    return _json_response(*await answer_predict(name, version, request.headers, request.body, v2=True))
