"""The gRPC prediction server, served by the web process beside REST (``webapp.endpoints.asgi``
starts it on the ASGI server's event loop when ``NETFORGE_GRPC_PORT`` is not 0).

Serves ``netforge.serving.v1.PredictionService`` (``protos/netforge/serving/v1/predict.proto``)
with grpc's asyncio server. The servicer is a thin adapter over the process's one
``ServingRuntime``, the same one the REST routes use: one model cache, one dynamic batcher per
loaded version (a REST request and a gRPC request arriving together share a batch), one set of
keys and metrics.

Beside it, the Open Inference Protocol's ``inference.GRPCInferenceService``
(``webapp.serving.open_inference_grpc``, what tritonclient.grpc and KServe's clients call), over
the same runtime; and the standard services: ``grpc.health.v1.Health`` (SERVING for "" and for the
prediction service while the server runs, NOT_SERVING once it begins to stop, so balancers and
Kubernetes probes drain it first) and server reflection (``grpcurl host:port list`` and calls
without the proto file).

Tensors travel as raw little-endian bytes with a shape and a dtype. The API key comes in the
``authorization`` metadata (``Bearer <key>``). Errors map to status codes: a bad input is
INVALID_ARGUMENT with the field and the expected shape in the message, a missing or wrong key
UNAUTHENTICATED, an unknown endpoint or version NOT_FOUND, a full queue RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import json
import logging

import grpc

log = logging.getLogger(__name__)


class GrpcBindError(RuntimeError):
    """The gRPC server could not listen where it was told to."""


class GrpcServer:
    """A started gRPC server with its health service; ``await stop(grace)`` reports NOT_SERVING,
    then stops taking calls and waits up to ``grace`` seconds for those in flight."""

    def __init__(self, server: grpc.aio.Server, health):
        self.server, self.health = server, health

    async def stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


class UndecodableRequest:
    """What a request that is not a valid protobuf message of its RPC reaches the servicer as
    (grpc itself would answer UNKNOWN for it: see ``add_servicer``)."""

    def __init__(self, reason: str):
        self.reason = reason


def api_key(context) -> str | None:
    """The caller's API key from the call's metadata: ``authorization: Bearer <key>`` or ``x-api-key``."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and value[:7].lower() == "bearer ":
            return value[7:].strip()
        if key == "x-api-key":
            return value
    return None

def _tolerant(parse):
    def deserialize(data: bytes):
        from google.protobuf.message import DecodeError  # noqa: PLC0415  (protobuf loads with the servicer)

        try:
            return parse(data)
        except DecodeError as error:
            return UndecodableRequest(str(error))

    return deserialize


def add_servicer(servicer, server) -> None:
    """The generated ``add_PredictionServiceServicer_to_server``, with request deserializers that do
    not raise, so that a corrupt message is INVALID_ARGUMENT like any other bad input."""
    from webapp.serving.protos.netforge.serving.v1 import predict_pb2  # noqa: PLC0415  (as make_servicer's)

    service = predict_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name
    handlers = {
        "Predict": grpc.unary_unary_rpc_method_handler(
            servicer.Predict, request_deserializer=_tolerant(predict_pb2.PredictRequest.FromString),
            response_serializer=predict_pb2.PredictResponse.SerializeToString),
        "GetMetadata": grpc.unary_unary_rpc_method_handler(
            servicer.GetMetadata, request_deserializer=_tolerant(predict_pb2.GetMetadataRequest.FromString),
            response_serializer=predict_pb2.GetMetadataResponse.SerializeToString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)


def make_servicer(runtime):
    """The servicer (built after Django is set up: the runtime reads settings and the database)."""
    import numpy  # noqa: PLC0415

    from webapp.serving import inputs as serving_inputs  # noqa: PLC0415
    from webapp.serving.inputs import InputError  # noqa: PLC0415
    from webapp.serving.protos.netforge.serving.v1 import predict_pb2, predict_pb2_grpc  # noqa: PLC0415
    from webapp.serving.runtime import ServingError, version_metadata  # noqa: PLC0415

    dtype_names = {numpy.dtype(name): name for name in serving_inputs.DTYPES}

    def tensor(array) -> predict_pb2.Tensor:
        array = numpy.asarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        name = dtype_names.get(array.dtype) or array.dtype.name
        return predict_pb2.Tensor(dtype=name, shape=array.shape, content=array.tobytes())  # tobytes: C order

    async def abort(context, error: ServingError):
        await context.abort(getattr(grpc.StatusCode, error.grpc_status), error.message)

    async def refuse_undecodable(request, rpc: str, context) -> None:
        if isinstance(request, UndecodableRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"request: not a valid {rpc} request message ({request.reason})")

    class PredictionServicer(predict_pb2_grpc.PredictionServiceServicer):
        async def Predict(self, request, context):  # the RPC's name
            await refuse_undecodable(request, "Predict", context)

            def decode(specs):
                arrays = {}
                for spec in specs:
                    if spec.name not in request.inputs:
                        raise InputError(f"inputs.{spec.name}", f"missing; expected a tensor of shape "
                                         f"{spec.shape_text()} and dtype {spec.dtype}", expected=spec.describe())
                    given = request.inputs[spec.name]
                    try:
                        arrays[spec.name] = serving_inputs.from_tensor(given.dtype, given.shape, given.content, spec,
                                                                       f"inputs.{spec.name}")
                    except (ValueError, TypeError, OverflowError, MemoryError) as error:
                        # whatever NumPy refuses is still the caller's tensor: INVALID_ARGUMENT, not UNKNOWN
                        raise InputError(f"inputs.{spec.name}", f"cannot be read as a tensor ({error})",
                                         expected=spec.describe()) from None
                unknown = sorted(set(request.inputs) - {spec.name for spec in specs})
                if unknown:
                    raise InputError(f"inputs.{unknown[0]}", f"unknown input; this model takes "
                                                             f"{[spec.name for spec in specs]}")
                return arrays, serving_inputs.batch_size_of(arrays, "inputs")

            try:
                loaded, result = await runtime.serve(name=request.endpoint, version=request.version or None,
                                                     api_key=api_key(context), decode=decode, protocol="grpc")
            except ServingError as error:
                await abort(context, error)
            return predict_pb2.PredictResponse(
                endpoint=request.endpoint, version=loaded.number,
                outputs={name: tensor(array) for name, array in serving_inputs.output_arrays(result).items()},
                labels=result.get("labels") or [],
            )

        async def GetMetadata(self, request, context):
            await refuse_undecodable(request, "GetMetadata", context)
            try:
                _route, loaded = await runtime.resolve(request.endpoint, request.version or None, api_key(context))
            except ServingError as error:
                await abort(context, error)
            return predict_pb2.GetMetadataResponse(endpoint=request.endpoint, version=loaded.number,
                                                   metadata_json=json.dumps(version_metadata(request.endpoint, loaded)))

    return PredictionServicer(), predict_pb2_grpc.add_PredictionServiceServicer_to_server


async def start_server(runtime, host: str, port: int, *, reuse_port: bool = False) -> GrpcServer:
    """Start serving ``runtime`` over gRPC on ``host:port`` on the running event loop, with the
    health and reflection services; returns the started server (``await server.stop(grace)``).
    ``reuse_port`` lets several processes listen on the port (``uvicorn --workers N``: the kernel
    spreads the connections); without it a port in use is an error, not a silent share."""
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: PLC0415
    from grpc_reflection.v1alpha import reflection  # noqa: PLC0415

    from webapp.serving import open_inference_grpc  # noqa: PLC0415
    from webapp.serving.protos.netforge.serving.v1 import predict_pb2  # noqa: PLC0415
    from webapp.serving.runtime import setting  # noqa: PLC0415

    service_name = predict_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name
    servicer, _generated_add = make_servicer(runtime)
    limit = setting("SERVING_MAX_REQUEST_BYTES", 4 * 1024 * 1024)
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit),
                                      ("grpc.max_send_message_length", 64 * 1024 * 1024),
                                      ("grpc.so_reuseport", int(reuse_port))])
    add_servicer(servicer, server)
    open_inference_grpc.add_servicer(open_inference_grpc.make_servicer(runtime), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((service_name, open_inference_grpc.SERVICE_NAME, health.SERVICE_NAME,
                                         reflection.SERVICE_NAME), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        raise GrpcBindError(f"the gRPC server could not listen on {host}:{port} (is the port taken?); set "
                            "NETFORGE_GRPC_PORT to a free port, or to 0 to serve no gRPC (several processes of "
                            "one server, as with uvicorn --workers, share it with NETFORGE_GRPC_REUSE_PORT=1)")
    await server.start()
    await health_servicer.set(service_name, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(open_inference_grpc.SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC server listening on %s:%s", host, bound)
    return GrpcServer(server, health_servicer)
