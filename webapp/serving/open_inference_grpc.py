"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService`` (the protocol's
published proto, ``protos/inference/grpc_service.proto``), served by the same grpc.aio server as
``netforge.serving.v1.PredictionService`` (``webapp.serving.grpc_server``), over the same
``ServingRuntime``: one model cache and one dynamic batcher per version across REST, KServe v2 REST
and both gRPC services, so requests of all of them arriving together share a batch.

A thin adapter, as Triton answers: ServerLive, ServerReady, ModelReady (no key needed, like
``GET /v2/models/<name>/ready``), ServerMetadata, ModelMetadata and ModelInfer (with the
endpoint's API key in the ``authorization: Bearer <key>`` metadata). ModelInfer reads inputs from
``raw_input_contents`` (what tritonclient sends) or from the typed ``contents``, and answers with
``raw_output_contents`` like Triton.

The published protocol has no model configuration or statistics RPCs; Triton's ``ModelConfig``
and ``ModelStatistics`` (its messages, kept in our proto with Triton's names and field numbers)
are served where they map, with the key as for ModelMetadata:

- ModelConfig: the inputs and outputs with Triton's ``TYPE_*`` data types and their dims without
  the batch dimension; ``max_batch_size`` is the most instances a request may hold
  (``NETFORGE_SERVING_MAX_INSTANCES``, what Triton refuses beyond); the endpoint's batcher is
  ``dynamic_batching``: its ``max_batch_size`` as the one ``preferred_batch_size`` (a batch that
  reaches it runs at once), ``max_queue_delay_microseconds`` and the queue's ``max_queue_size``.
- ModelStatistics: per version (all of them when the request names none), from the counters
  summed over every process (``webapp.serving.metrics``): ``inference_count`` the instances run,
  ``execution_count`` the forward passes (batches), ``inference_stats.success.count`` and
  ``fail.count`` the requests answered and refused. The counters keep one latency sum for all
  requests, so ``success.ns`` is the time of every request, refused ones included, and
  ``fail.ns`` is 0; queue and compute times, per-batch-size statistics and ``last_inference``
  are not measured and stay 0 or empty.

Errors are status codes with a message: unknown model or version NOT_FOUND, a bad tensor
INVALID_ARGUMENT (naming the input), no or a wrong key UNAUTHENTICATED, a version not ready
UNAVAILABLE, a full queue RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import types

import grpc
import numpy
from google.protobuf import descriptor_pool, json_format, message_factory

from webapp.serving import inputs as serving_inputs
from webapp.serving.grpc_server import UndecodableRequest, _tolerant, api_key
from webapp.serving.inputs import V2_DATATYPES, InputError
from webapp.serving.open_inference import model_metadata, server_metadata, v2_datatype
from webapp.serving.runtime import BadInput, NotFound, ServingError, setting

SERVICE_NAME = "inference.GRPCInferenceService"  # the protocol's: clients call /inference.GRPCInferenceService/...
MESSAGES = ("ServerLiveRequest", "ServerLiveResponse", "ServerReadyRequest", "ServerReadyResponse",
            "ModelReadyRequest", "ModelReadyResponse", "ServerMetadataRequest", "ServerMetadataResponse",
            "ModelMetadataRequest", "ModelMetadataResponse", "ModelInferRequest", "ModelInferResponse",
            "ModelConfigRequest", "ModelConfigResponse", "ModelConfig", "ModelStatisticsRequest",
            "ModelStatisticsResponse")


def _protocol_messages():
    """The messages of ``protos/inference/grpc_service.proto`` (and ``model_config.proto``, which it
    imports) by name, read from protobuf's default pool; when the process already holds the
    protocol's ``inference.*`` messages under another file name (a client library such as
    tritonclient.grpc imported first: protobuf refuses a second definition of a symbol), those,
    which are the same messages on the wire."""
    try:
        from webapp.serving.protos.inference import grpc_service_pb2  # noqa: F401, PLC0415  (see the docstring)
    except TypeError as error:
        if "duplicate symbol" not in str(error):
            raise
    pool = descriptor_pool.Default()
    return types.SimpleNamespace(**{name: message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"inference.{name}")) for name in MESSAGES})


pb = _protocol_messages()
# the typed InferTensorContents field of each datatype
CONTENTS_FIELD = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents",
                  "INT64": "int64_contents"}


def _version(text: str) -> int | None:
    """The version a request names ("" for the default one); NotFound for one that is no number."""
    if not text:
        return None
    if not text.isdigit() or len(text) > 19:
        raise NotFound(f"no version {text[:30]!r}: versions are numbers", details={"version": None})
    return int(text)


def _decode_infer(request, specs) -> tuple[dict, int]:
    """The request's input tensors as arrays checked against the version's specs."""
    by_name = {spec.name: spec for spec in specs}
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InputError("raw_input_contents", f"holds {len(raw)} tensors for {len(request.inputs)} inputs")
    arrays = {}
    for index, tensor in enumerate(request.inputs):
        field = f"inputs[{index}]"
        spec = by_name.get(tensor.name)
        if spec is None:
            raise InputError(f"{field}.name", f"unknown input {tensor.name!r}; this model takes {sorted(by_name)}")
        dtype = V2_DATATYPES.get(tensor.datatype)
        if dtype is None:
            raise InputError(f"{field}.datatype", f"unsupported datatype {tensor.datatype!r}; this input is "
                                                  f"{v2_datatype(spec.dtype)}")
        if raw:
            content = raw[index]
        else:
            values = getattr(tensor.contents, CONTENTS_FIELD[tensor.datatype])
            content = numpy.asarray(values, dtype=numpy.dtype(dtype).newbyteorder("<")).tobytes()
        if dtype != spec.dtype:
            raise InputError(f"{field}.datatype", f"expected {v2_datatype(spec.dtype)}, got {tensor.datatype!r}")
        try:
            arrays[spec.name] = serving_inputs.from_tensor(dtype, tensor.shape, content, spec, field)
        except (ValueError, TypeError, OverflowError, MemoryError) as error:
            raise InputError(field, f"cannot be read as a tensor ({error})") from None
    for spec in specs:
        if spec.name not in arrays:
            raise InputError("inputs", f"missing input {spec.name!r} (shape {spec.shape_text()}, datatype "
                                       f"{v2_datatype(spec.dtype)})")
    return arrays, serving_inputs.batch_size_of(arrays, "inputs")


def make_servicer(runtime):
    async def abort(context, error: ServingError):
        await context.abort(getattr(grpc.StatusCode, error.grpc_status), error.message)

    async def refuse_undecodable(request, rpc: str, context) -> None:
        if isinstance(request, UndecodableRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"request: not a valid {rpc} request message ({request.reason})")

    class OpenInferenceServicer:
        async def ServerLive(self, request, context):  # the RPC's name
            return pb.ServerLiveResponse(live=True)

        async def ServerReady(self, request, context):
            try:
                await runtime.refresh_if_invalidated()
            except Exception:  # noqa: BLE001  (the database is unreachable: not ready)
                return pb.ServerReadyResponse(ready=False)
            return pb.ServerReadyResponse(ready=True)

        async def ModelReady(self, request, context):
            await refuse_undecodable(request, "ModelReady", context)
            try:
                route = await runtime.route(request.name)
                number = _version(request.version)
                wanted = number if number is not None else runtime.active.get(request.name)
                target = route.versions.get(wanted) if wanted is not None else None
                if number is not None and target is None:
                    raise NotFound(f"endpoint {request.name!r} has no version {number}")
            except ServingError as error:
                await abort(context, error)
            loaded = runtime.cache.peek(route.id, wanted, target.path) if target is not None else None
            if target is not None and target.state == "ready" and loaded is None:
                runtime.refresh_in_background()  # asking starts loading it, as on REST
            return pb.ModelReadyResponse(ready=loaded is not None)

        async def ServerMetadata(self, request, context):
            return pb.ServerMetadataResponse(**server_metadata())

        async def ModelMetadata(self, request, context):
            await refuse_undecodable(request, "ModelMetadata", context)
            try:
                route, loaded = await runtime.resolve(request.name, _version(request.version), api_key(context))
            except ServingError as error:
                await abort(context, error)
            described = model_metadata(request.name, route, loaded)
            response = pb.ModelMetadataResponse(name=described["name"], versions=described["versions"],
                                                platform=described["platform"])
            for entry in described["inputs"]:
                response.inputs.add(**entry)
            for entry in described["outputs"]:
                response.outputs.add(**entry)
            if "properties" in response.DESCRIPTOR.fields_by_name:  # not in Triton's copy of the messages
                response.properties.update(described["properties"])
            return response

        async def ModelConfig(self, request, context):
            await refuse_undecodable(request, "ModelConfig", context)
            try:
                route, loaded = await runtime.resolve(request.name, _version(request.version), api_key(context))
            except ServingError as error:
                await abort(context, error)
            return pb.ModelConfigResponse(config=model_config(request.name, route, loaded))

        async def ModelStatistics(self, request, context):
            await refuse_undecodable(request, "ModelStatistics", context)
            if not request.name:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, STATISTICS_NEED_A_NAME)
            try:
                return await model_statistics(runtime, request.name, _version(request.version), api_key(context))
            except ServingError as error:
                await abort(context, error)

        async def ModelInfer(self, request, context):
            await refuse_undecodable(request, "ModelInfer", context)
            try:
                loaded, result = await runtime.serve(
                    name=request.model_name, version=_version(request.model_version), api_key=api_key(context),
                    decode=lambda specs: _decode_infer(request, specs), protocol="grpc")
                outputs = serving_inputs.output_arrays(result)
                wanted = [output.name for output in request.outputs]
                unknown = [name for name in wanted if name not in outputs]
                if unknown:
                    raise BadInput(f"outputs: unknown output {unknown[0]!r}; this model returns {sorted(outputs)}")
            except ServingError as error:
                await abort(context, error)
            return _infer_response(request, loaded, outputs, wanted)

    return OpenInferenceServicer()


def _infer_response(request, loaded, outputs: dict, wanted: list[str]):
    chosen = {name: outputs[name] for name in wanted} if wanted else outputs
    response = pb.ModelInferResponse(model_name=request.model_name, model_version=str(loaded.number), id=request.id)
    for name, array in chosen.items():
        array = numpy.ascontiguousarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        response.outputs.add(name=name, datatype=v2_datatype(array.dtype.name), shape=array.shape)
        response.raw_output_contents.append(array.tobytes())
    return response


def model_config(name: str, route, loaded):
    """Triton's ModelConfig of a loaded version (see the module's docstring)."""
    described = model_metadata(name, route, loaded)
    config = pb.ModelConfig(name=name, platform=described["platform"],
                            max_batch_size=setting("SERVING_MAX_INSTANCES", 1024))
    for side, tensors in (("input", described["inputs"]), ("output", described["outputs"])):
        for tensor in tensors:
            getattr(config, side).add(name=tensor["name"], data_type=f"TYPE_{tensor['datatype']}",
                                      dims=tensor["shape"][1:])  # the first is the batch dimension
    config.dynamic_batching.preferred_batch_size.append(route.max_batch_size)
    config.dynamic_batching.max_queue_delay_microseconds = round(route.max_queue_delay * 1_000_000)
    config.dynamic_batching.default_queue_policy.max_queue_size = route.max_queue_size
    return config


STATISTICS_NEED_A_NAME = "name: statistics are kept per endpoint, behind its API key; name the endpoint"


async def model_statistics(runtime, name: str, number: int | None, key: str | None):
    """Triton's ModelStatisticsResponse of an endpoint's versions (all of them for ``number`` None);
    ServingError for an unknown endpoint or version or a wrong key."""
    route = await runtime.authorized_route(name, key)
    if number is not None and number not in route.versions:
        raise NotFound(f"endpoint {name!r} has no version {number}; its versions are {sorted(route.versions)}",
                       details={"version": number})
    counts = await runtime.version_counts(route)
    response = pb.ModelStatisticsResponse()
    for version in [number] if number is not None else sorted(route.versions):
        _add_statistics(response, name, version, counts.get(version))
    return response


# Fields that protobuf's JSON mapping writes as strings (64-bit integers), and Triton's HTTP
# server as numbers, which its clients read.
_JSON_NUMBERS = frozenset({"dims", "max_queue_delay_microseconds", "last_inference", "inference_count",
                           "execution_count", "count", "ns", "batch_size"})


def as_json(message) -> dict:
    """A ModelConfig or ModelStatisticsResponse as Triton's HTTP server writes it: proto field names,
    every field (zeros included), 64-bit integers as numbers."""

    def numbers(value, key=None):
        if isinstance(value, dict):
            return {name: numbers(item, name) for name, item in value.items()}
        if isinstance(value, list):
            return [numbers(item, key) for item in value]
        if key in _JSON_NUMBERS and isinstance(value, str):
            return int(value)
        return value

    return numbers(json_format.MessageToDict(message, preserving_proto_field_name=True,
                                             always_print_fields_with_no_presence=True))


# The durations of our copy of Triton's InferStatistics (its own copy adds cache hits and misses,
# which a server without a response cache leaves out).
INFER_DURATIONS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")


def _add_statistics(response, name: str, version: int, counts) -> None:
    """One version's ModelStatistics from its counters (``None``: nothing counted yet)."""
    entry = response.model_stats.add(name=name, version=str(version))
    for field in INFER_DURATIONS:  # each present, zeros included, as Triton gives them
        getattr(entry.inference_stats, field).SetInParent()
    if counts is None:
        return
    entry.inference_count = counts.batched_instances
    entry.execution_count = counts.batches
    entry.inference_stats.success.count = counts.requests - counts.errors
    entry.inference_stats.success.ns = round(counts.latency_sum * 1e9)
    entry.inference_stats.fail.count = counts.errors


def add_servicer(servicer, server) -> None:
    """Register the service with request deserializers that do not raise (a corrupt message is
    INVALID_ARGUMENT, as in ``webapp.serving.grpc_server.add_servicer``)."""
    rpcs = {"ServerLive": pb.ServerLiveRequest, "ServerReady": pb.ServerReadyRequest,
            "ModelReady": pb.ModelReadyRequest, "ServerMetadata": pb.ServerMetadataRequest,
            "ModelMetadata": pb.ModelMetadataRequest, "ModelInfer": pb.ModelInferRequest,
            "ModelConfig": pb.ModelConfigRequest, "ModelStatistics": pb.ModelStatisticsRequest}
    responses = {"ServerLive": pb.ServerLiveResponse, "ServerReady": pb.ServerReadyResponse,
                 "ModelReady": pb.ModelReadyResponse, "ServerMetadata": pb.ServerMetadataResponse,
                 "ModelMetadata": pb.ModelMetadataResponse, "ModelInfer": pb.ModelInferResponse,
                 "ModelConfig": pb.ModelConfigResponse, "ModelStatistics": pb.ModelStatisticsResponse}
    handlers = {
        rpc: grpc.unary_unary_rpc_method_handler(getattr(servicer, rpc),
                                                 request_deserializer=_tolerant(message.FromString),
                                                 response_serializer=responses[rpc].SerializeToString)
        for rpc, message in rpcs.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
