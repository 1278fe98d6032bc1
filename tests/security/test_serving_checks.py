"""The prediction routes over REST, Open Inference v2 and gRPC: what a caller sends that cannot be
decoded, stored or computed with is a 400 (INVALID_ARGUMENT) naming the field, never a 500 (UNKNOWN)
or an answer of nulls; an endpoint's health says nothing to a caller without one of its keys."""

from __future__ import annotations

import asyncio
import json

import grpc
import numpy
import pytest
from asgiref.sync import async_to_sync

from tests.endpoints.test_endpoints_api import predict, published  # noqa: F401 - a published digits endpoint
from tests.platform.harness import free_port
from tests.webapp.helpers import error_of
from webapp.endpoints.asgi import ServingFastPath
from webapp.serving import runtime as serving
from webapp.serving.protos.netforge.serving.v1 import predict_pb2, predict_pb2_grpc

pytestmark = pytest.mark.django_db

V2 = "/v2/models/digits/infer"


def v2_body(**extra) -> dict:
    return {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}], **extra}


@pytest.mark.parametrize(("raw_id", "says"), [
    ('"\\ud800"', "lone surrogate"),
    ("1" + "0" * 3999, "beyond 64 bits"),
    ("12", "must be a string"),
])
def test_a_v2_request_id_that_cannot_be_sent_back_is_a_400(client, published, raw_id, says):  # noqa: F811
    _, _, key = published
    body = json.dumps(v2_body())[:-1] + f', "id": {raw_id}}}'
    response = client.post(V2, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400, response.content
    message = response.json()["error"]
    assert message.startswith("id: ") and says in message, message


def test_a_v2_request_id_that_is_text_comes_back(client, published):  # noqa: F811
    _, _, key = published
    response = predict(client, key, v2_body(id="request-7 ü"), V2)
    assert response.status_code == 200 and response.json()["id"] == "request-7 ü"


@pytest.mark.parametrize("number", [2**63, 2**64, 10**30])
def test_version_numbers_beyond_64_bits_are_not_found(client, published, digits_rows, number):  # noqa: F811
    _, _, key = published
    body = {"instances": digits_rows[:1].tolist()}
    for path in (f"/api/v1/endpoints/digits/versions/{number}/predict", f"/v2/models/digits/versions/{number}/infer",
                 f"/api/v1/endpoints/digits/versions/{number}/metadata"):
        response = (client.get(path, HTTP_AUTHORIZATION=f"Bearer {key}") if path.endswith("metadata")
                    else predict(client, key, body if "/api/" in path else v2_body(), path))
        assert response.status_code == 404, (path, response.content[:300])


def test_the_asgi_fast_path_refuses_a_version_of_thousands_of_digits():
    """The fast path reads the number from the path itself (Python's int() refuses > 4,300 digits)."""
    answers = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        answers.append(message)

    async def django_application(scope, receive, send):
        raise AssertionError("a prediction route must not reach Django")

    scope = {"type": "http", "method": "POST", "path": f"/api/v1/endpoints/digits/versions/{'9' * 5000}/predict",
             "headers": [(b"content-type", b"application/json")], "query_string": b""}
    asyncio.run(ServingFastPath(django_application)(scope, receive, send))
    assert answers[0]["status"] == 404 and b"version numbers are at most" in answers[1]["body"]


@pytest.mark.parametrize("value", [1e308, -1e300, 3.5e38])
def test_a_predict_input_that_overflows_is_a_400_naming_the_input(client, published, value):  # noqa: F811
    _, _, key = published
    row = [0.0] * 64
    row[5] = value
    response = predict(client, key, {"instances": [row]})
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["details"]["field"] == "instances" and "overflow" in error["message"], error
    v2 = predict(client, key, {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": row}]}, V2)
    assert v2.status_code == 400 and "overflow" in v2.json()["error"]


def test_inputs_that_make_the_model_overflow_are_a_400_not_nulls(client, published):  # noqa: F811
    """Within float32, yet large enough that the network's arithmetic overflows to infinity."""
    _, _, key = published
    response = predict(client, key, {"instances": [[3e38] * 64]})
    assert response.status_code == 400, response.content
    assert "overflow" in error_of(response)["message"]


def test_health_reveals_nothing_without_a_key(client, anonymous, published):  # noqa: F811
    _, _, key = published
    assert client.get("/api/v1/endpoints/digits/health", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    answers = [anonymous.get(path, **headers) for path, headers in (
        ("/api/v1/endpoints/digits/health", {}),
        ("/api/v1/endpoints/digits/health", {"HTTP_AUTHORIZATION": "Bearer nfk_wrong"}),
        ("/api/v1/endpoints/no-such-endpoint/health", {}),
    )]
    assert {answer.status_code for answer in answers} == {401}
    for answer in answers:
        body = error_of(answer)
        assert "default_version" not in json.dumps(body) and "ready" not in body["message"], body


# -- gRPC -----------------------------------------------------------------------------------------------

def grpc_predict_status(key: str, tensor: predict_pb2.Tensor) -> tuple[grpc.StatusCode, str]:
    """Predict over a real gRPC server on this process's serving runtime; (status code, details)."""

    async def call():
        from webapp.serving.grpc_server import start_server  # noqa: PLC0415

        port = free_port()
        server = await start_server(serving.get_runtime(), "127.0.0.1", port)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = predict_pb2_grpc.PredictionServiceStub(channel)
                try:
                    await stub.Predict(predict_pb2.PredictRequest(endpoint="digits", inputs={"x": tensor}),
                                       metadata=(("authorization", f"Bearer {key}"),), timeout=30)
                except grpc.aio.AioRpcError as error:
                    return error.code(), error.details()
                return grpc.StatusCode.OK, ""
        finally:
            await server.stop(grace=0)

    return async_to_sync(call)()


@pytest.mark.parametrize(("shape", "content"), [
    ([2**63 - 1, 0], b""),
    ([0, 2**63 - 1], b""),
    ([1] * 1001, b"\0\0\0\0"),
    ([1, 64, 2**40], b""),
    ([-1, 64], b""),
])
def test_grpc_tensors_that_cannot_be_decoded_are_invalid_argument(published, shape, content):  # noqa: F811
    _, _, key = published
    code, details = grpc_predict_status(key, predict_pb2.Tensor(dtype="float32", shape=shape, content=content))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert details.startswith("inputs.x"), details


def test_grpc_still_predicts(published, digits_rows):  # noqa: F811
    _, _, key = published
    rows = digits_rows[:2].astype(numpy.float32)
    code, details = grpc_predict_status(key, predict_pb2.Tensor(dtype="float32", shape=rows.shape,
                                                                content=rows.tobytes()))
    assert code == grpc.StatusCode.OK, details


def test_the_readiness_of_a_version_that_does_not_exist_is_a_404(client, published):  # noqa: F811
    for path in ("/v2/models/digits/versions/729345/ready", "/api/v1/endpoints/digits/ready"):
        response = client.get(path)
        assert response.status_code == (404 if "729345" in path else 200), (path, response.content)


@pytest.mark.parametrize("raw", [b"\x0a\x03\xff\xfe\x00", b"\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f"])
def test_a_grpc_message_that_is_not_protobuf_is_invalid_argument(published, raw):  # noqa: F811
    """Bad UTF-8 in a string field, a corrupt wire format: grpc itself would answer UNKNOWN."""

    async def call():
        from webapp.serving.grpc_server import start_server  # noqa: PLC0415

        port = free_port()
        server = await start_server(serving.get_runtime(), "127.0.0.1", port)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                for rpc in ("Predict", "GetMetadata"):
                    method = channel.unary_unary(f"/netforge.serving.v1.PredictionService/{rpc}")
                    with pytest.raises(grpc.aio.AioRpcError) as refused:
                        await method(raw, timeout=30)
                    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
                    assert refused.value.details().startswith(f"request: not a valid {rpc} request message")
        finally:
            await server.stop(grace=0)

    async_to_sync(call)()
