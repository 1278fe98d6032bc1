"""The Open Inference Protocol against the real server, driven by its reference client:
tritonclient.http (JSON tensors, and the binary tensor data extension it uses by default) and
tritonclient.grpc (``inference.GRPCInferenceService``, raw tensors by default; typed contents
through its stub), over the uvicorn process that serves REST and gRPC from one runtime.

KServe's own client (the ``kserve`` package) is driven against the same server by
test_kserve_client.py, in a process of its own (see ``tests/endpoints/kserve_client.py``).
"""

from __future__ import annotations

import json
import re
import time

import grpc
import httpx
import numpy
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from engine.inference import Predictor
from tests.endpoints.test_servers import owner, publish, servers  # noqa: F401 - the real server and its owner
from tests.platform.harness import wait_until

pytestmark = pytest.mark.xdist_group("serving-servers")


def expected_of(servers, owner, name: str, rows: numpy.ndarray) -> dict:  # noqa: F811 - the imported fixtures
    endpoint_id = owner["api"].get(f"/api/v1/endpoints/{name}").json()["id"]
    return Predictor.load(servers.home / "artifacts" / "endpoints" / str(endpoint_id) / "v1").predict(rows)


def check_like_the_engine(result, expected: dict) -> None:
    numpy.testing.assert_array_equal(result.as_numpy("classes"), expected["classes"])
    numpy.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], atol=1e-6)
    numpy.testing.assert_allclose(result.as_numpy("prediction"), expected["outputs"]["prediction"], atol=1e-5)


def http_inputs(rows: numpy.ndarray, *, binary: bool) -> list:
    tensor = triton_http.InferInput("x", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return [tensor]


def test_tritonclient_http_with_binary_data_on_and_off(servers, owner, digits_rows):  # noqa: F811
    key = publish(owner, "oip-http")
    rows = digits_rows[:5].astype(numpy.float32)
    expected = expected_of(servers, owner, "oip-http", rows)
    headers = {"Authorization": f"Bearer {key}"}

    def auth() -> dict:  # a new dict each call: tritonclient.http writes Inference-Header-Content-Length into it
        return dict(headers)

    client = triton_http.InferenceServerClient(url=servers.base_url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        metadata = client.get_model_metadata("oip-http", headers=auth())
        assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}]
        declared = {output["name"]: output for output in metadata["outputs"]}
        assert declared["probabilities"] == {"name": "probabilities", "datatype": "FP64", "shape": [-1, 10]}
        assert declared["classes"] == {"name": "classes", "datatype": "INT64", "shape": [-1]}
        label_names = json.loads(metadata["properties"]["label_names"])  # index i names class i
        assert len(label_names) == 10 and [label_names[c] for c in expected["classes"]] == expected["labels"]

        # tritonclient's default: binary inputs, and binary outputs (binary_data_output)
        binary = client.infer("oip-http", http_inputs(rows, binary=True), headers=auth(), request_id="b1")
        check_like_the_engine(binary, expected)
        assert binary.get_response()["id"] == "b1"
        assert all("data" not in output and output["parameters"]["binary_data_size"] > 0
                   for output in binary.get_response()["outputs"])
        # every output infer returns is declared, with the dtype and shape it has
        returned = binary.get_response()["outputs"]
        assert {output["name"]: (output["datatype"], output["shape"][1:]) for output in returned} \
            == {name: (output["datatype"], output["shape"][1:]) for name, output in declared.items()}

        # JSON both ways
        plain = client.infer("oip-http", http_inputs(rows, binary=False), headers=auth(),
                             outputs=[triton_http.InferRequestedOutput(name, binary_data=False)
                                      for name in ("probabilities", "classes", "prediction")])
        check_like_the_engine(plain, expected)
        assert all("data" in output for output in plain.get_response()["outputs"])
        # mixed: a binary input, one output of each kind
        mixed = client.infer("oip-http", http_inputs(rows, binary=True), headers=auth(),
                             outputs=[triton_http.InferRequestedOutput("classes", binary_data=False),
                                      triton_http.InferRequestedOutput("probabilities", binary_data=True)])
        numpy.testing.assert_array_equal(mixed.as_numpy("classes"), expected["classes"])
        numpy.testing.assert_allclose(mixed.as_numpy("probabilities"), expected["probabilities"], atol=1e-6)
        assert mixed.as_numpy("prediction") is None

        def refusal(call) -> InferenceServerException:
            with pytest.raises(InferenceServerException) as caught:
                call()
            return caught.value

        unknown = refusal(lambda: client.infer("nope", http_inputs(rows, binary=True), headers=auth()))
        assert unknown.status() == "404" and "no endpoint named 'nope'" in unknown.message()
        bad_shape = refusal(lambda: client.infer("oip-http", http_inputs(rows[:, :63], binary=True), headers=auth()))
        assert bad_shape.status() == "400" and "inputs[0].shape" in bad_shape.message()
        assert refusal(lambda: client.infer("oip-http", http_inputs(rows, binary=False))).status() == "401"
        # a route this server does not have: the protocol's {"error": "<string>"}, which the client reads
        missing = refusal(lambda: client.get_system_shared_memory_status(headers=auth()))
        assert missing.status() == "404" and "no Open Inference Protocol route" in missing.message()
        posted = refusal(lambda: client.load_model("oip-http", headers=auth()))  # a POST: the same, no CSRF page
        assert posted.status() == "404" and "no Open Inference Protocol route" in posted.message()
    finally:
        client.close()

    # the binary extension without the client: a JSON header of the declared length, then the bytes
    header = json.dumps({"inputs": [{"name": "x", "shape": [2, 64], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 2 * 64 * 4}}],
                         "outputs": [{"name": "classes", "parameters": {"binary_data": True}}]}).encode()
    response = httpx.post(f"{servers.base_url}/v2/models/oip-http/infer", timeout=30,
                          content=header + rows[:2].tobytes(),
                          headers={**headers, "Inference-Header-Content-Length": str(len(header)),
                                   "Content-Type": "application/octet-stream"})
    assert response.status_code == 200, response.text
    length = int(response.headers["Inference-Header-Content-Length"])
    assert json.loads(response.content[:length])["outputs"] == [
        {"name": "classes", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}}]
    numpy.testing.assert_array_equal(numpy.frombuffer(response.content[length:], "<i8"), expected["classes"][:2])
    short = httpx.post(f"{servers.base_url}/v2/models/oip-http/infer", timeout=30, content=header + b"\0" * 12,
                       headers={**headers, "Inference-Header-Content-Length": str(len(header))})
    assert short.status_code == 400 and "binary_data_size" in short.json()["error"]
    assert httpx.get(f"{servers.base_url}/v2/no/such/route", timeout=30).json() == {
        "error": "no Open Inference Protocol route '/v2/no/such/route' (this server implements: health, server "
                 "and model metadata, model ready, infer, and Triton's model config and stats)"}


def test_tritonclient_grpc_live_ready_metadata_infer_and_errors(servers, owner, digits_rows):  # noqa: F811
    key = publish(owner, "oip-grpc")
    rows = digits_rows[:5].astype(numpy.float32)
    expected = expected_of(servers, owner, "oip-grpc", rows)
    headers = {"authorization": f"Bearer {key}"}
    client = triton_grpc.InferenceServerClient(url=servers.grpc_target)
    try:
        assert client.is_server_live() and client.is_server_ready()
        wait_until(lambda: client.is_model_ready("oip-grpc"), timeout=15, what="oip-grpc to be loaded")
        assert client.is_model_ready("oip-grpc", "1")
        server = client.get_server_metadata(as_json=True)
        assert server["name"] == "netforge" and "binary_tensor_data" in server["extensions"]
        metadata = client.get_model_metadata("oip-grpc", headers=headers, as_json=True)
        assert metadata["versions"] == ["1"] and metadata["inputs"] == [
            {"name": "x", "datatype": "FP32", "shape": ["-1", "64"]}]  # as_json writes int64 as strings
        assert {output["name"] for output in metadata["outputs"]} == {"probabilities", "classes", "prediction"}

        tensor = triton_grpc.InferInput("x", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows)  # raw_input_contents
        result = client.infer("oip-grpc", [tensor], headers=headers, request_id="g1")
        check_like_the_engine(result, expected)
        assert result.get_response().id == "g1" and result.get_response().model_version == "1"
        only = client.infer("oip-grpc", [tensor], headers=headers,
                            outputs=[triton_grpc.InferRequestedOutput("classes")])
        assert [output.name for output in only.get_response().outputs] == ["classes"]

        def refusal(call) -> InferenceServerException:
            with pytest.raises(InferenceServerException) as caught:
                call()
            return caught.value

        assert refusal(lambda: client.infer("nope", [tensor], headers=headers)).status() == "StatusCode.NOT_FOUND"
        assert refusal(lambda: client.infer("oip-grpc", [tensor], headers=headers, model_version="7")).status() \
            == "StatusCode.NOT_FOUND"
        narrow = triton_grpc.InferInput("x", [5, 63], "FP32")
        narrow.set_data_from_numpy(rows[:, :63])
        bad_shape = refusal(lambda: client.infer("oip-grpc", [narrow], headers=headers))
        assert bad_shape.status() == "StatusCode.INVALID_ARGUMENT" and "inputs[0].shape" in bad_shape.message()
        wide = triton_grpc.InferInput("x", list(rows.shape), "FP64")
        wide.set_data_from_numpy(rows.astype(numpy.float64))
        assert refusal(lambda: client.infer("oip-grpc", [wide], headers=headers)).status() \
            == "StatusCode.INVALID_ARGUMENT"
        assert refusal(lambda: client.infer("oip-grpc", [tensor])).status() == "StatusCode.UNAUTHENTICATED"
        assert refusal(lambda: client.is_model_ready("nope")).status() == "StatusCode.NOT_FOUND"
    finally:
        client.close()

    # typed contents (fp32_contents) instead of raw bytes, through the protocol's stub
    with grpc.insecure_channel(servers.grpc_target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelInferRequest(model_name="oip-grpc")
        request.inputs.add(name="x", datatype="FP32", shape=rows.shape,
                           contents=service_pb2.InferTensorContents(fp32_contents=rows.ravel().tolist()))
        answer = stub.ModelInfer(request, metadata=tuple(headers.items()), timeout=30)
    outputs = {output.name: raw for output, raw in zip(answer.outputs, answer.raw_output_contents, strict=True)}
    numpy.testing.assert_array_equal(numpy.frombuffer(outputs["classes"], "<i8"), expected["classes"])


def test_tritonclient_grpc_model_config_and_statistics(servers, owner, digits_rows):  # noqa: F811
    """Triton's ModelConfig and ModelStatistics RPCs, as tritonclient.grpc reads them: the version's
    tensors and the endpoint's batcher, and the version's counters summed in the database."""
    key = publish(owner, "oip-stats", max_batch_size=16, max_queue_delay_ms=2.5, max_queue_size=64)
    rows = digits_rows[:5].astype(numpy.float32)
    headers = {"authorization": f"Bearer {key}"}
    client = triton_grpc.InferenceServerClient(url=servers.grpc_target)
    try:
        config = client.get_model_config("oip-stats", headers=headers).config
        assert (config.name, config.platform, config.max_batch_size) == ("oip-stats", "netforge", 1024)
        assert [(tensor.name, model_config_pb2.DataType.Name(tensor.data_type), list(tensor.dims))
                for tensor in config.input] == [("x", "TYPE_FP32", [64])]  # no batch dimension
        assert {tensor.name: (model_config_pb2.DataType.Name(tensor.data_type), list(tensor.dims))
                for tensor in config.output} == {"probabilities": ("TYPE_FP64", [10]), "classes": ("TYPE_INT64", []),
                                                 "prediction": ("TYPE_FP32", [10])}
        batching = config.dynamic_batching
        assert list(batching.preferred_batch_size) == [16] and batching.max_queue_delay_microseconds == 2500
        assert batching.default_queue_policy.max_queue_size == 64
        assert client.get_model_config("oip-stats", "1", headers=headers).config.name == "oip-stats"

        def statistics(version: str = "") -> list:
            return list(client.get_inference_statistics("oip-stats", version, headers=headers).model_stats)

        assert [(entry.version, entry.inference_count, entry.inference_stats.success.count)
                for entry in statistics()] == [("1", 0, 0)]
        for count in (3, 2):
            tensor = triton_grpc.InferInput("x", [count, 64], "FP32")
            tensor.set_data_from_numpy(rows[:count])
            client.infer("oip-stats", [tensor], headers=headers)
        narrow = triton_grpc.InferInput("x", [1, 63], "FP32")
        narrow.set_data_from_numpy(rows[:1, :63])
        with pytest.raises(InferenceServerException):
            client.infer("oip-stats", [narrow], headers=headers)
        [entry] = statistics("1")
        assert (entry.name, entry.version, entry.inference_count, entry.execution_count) == ("oip-stats", "1", 5, 2)
        assert entry.inference_stats.success.count == 2 and entry.inference_stats.success.ns > 0
        assert entry.inference_stats.fail.count == 1

        def refusal(call) -> InferenceServerException:
            with pytest.raises(InferenceServerException) as caught:
                call()
            return caught.value

        assert refusal(lambda: client.get_model_config("oip-stats")).status() == "StatusCode.UNAUTHENTICATED"
        assert refusal(lambda: client.get_inference_statistics("oip-stats")).status() == "StatusCode.UNAUTHENTICATED"
        assert refusal(lambda: client.get_inference_statistics("oip-stats", "7", headers=headers)).status() \
            == "StatusCode.NOT_FOUND"
        everything = refusal(lambda: client.get_inference_statistics(headers=headers))  # Triton's "every model"
        assert everything.status() == "StatusCode.INVALID_ARGUMENT" and "name the endpoint" in everything.message()
    finally:
        client.close()


def test_rest_and_open_inference_grpc_requests_arriving_together_share_one_batch(servers, owner):  # noqa: F811
    """Like test_servers' batch-sharing test, with the OIP's ModelInfer as the gRPC side: one batcher
    per version behind every protocol. Two big requests keep a slow model busy; a REST request and
    an OIP gRPC request of one instance sent meanwhile run as one batch of 2."""
    key = publish(owner, "oip-shared", slower=True, max_batch_size=1024, max_queue_delay_ms=0)
    rng = numpy.random.default_rng(0)
    big, row = rng.random((1024, 64), dtype=numpy.float32), rng.random((1, 64), dtype=numpy.float32)
    metadata = (("authorization", f"Bearer {key}"),)

    def infer_request(array):
        request = service_pb2.ModelInferRequest(model_name="oip-shared")
        request.inputs.add(name="x", datatype="FP32", shape=array.shape)
        request.raw_input_contents.append(array.tobytes())
        return request

    with grpc.insecure_channel(servers.grpc_target) as channel, \
            httpx.Client(base_url=servers.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as rest:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ModelInfer(infer_request(row), metadata=metadata, timeout=60).model_version == "1"
        assert rest.get("/api/v1/endpoints/oip-shared/health").status_code == 200  # the connection is open
        busy = [stub.ModelInfer.future(infer_request(big), metadata=metadata, timeout=60) for _ in range(2)]
        time.sleep(0.1)  # both big ones have arrived, the first is running
        assert not busy[0].done(), "the big requests were answered before the small ones came: inconclusive"
        single = stub.ModelInfer.future(infer_request(row), metadata=metadata, timeout=60)
        answer = rest.post("/v2/models/oip-shared/infer", json={"inputs": [
            {"name": "x", "shape": [1, 64], "datatype": "FP32", "data": row.ravel().tolist()}]})
        assert answer.status_code == 200, answer.text
        assert single.result().model_version == "1" and all(f.result().model_version == "1" for f in busy)

    def counted():
        totals = owner["api"].get("/api/v1/endpoints/oip-shared/metrics").json()["versions"]
        return {row["protocol"]: row for row in totals} if sum(row["requests"] for row in totals) == 5 else None

    wait_until(counted, timeout=10, what="the metrics of the 5 requests to reach the database")
    totals = counted()
    assert totals["grpc"]["requests"] == 4 and totals["rest"]["requests"] == 1
    text = owner["api"].get("/api/v1/metrics").text
    batches = re.search(r'netforge_endpoint_batches_total\{endpoint="oip-shared",version="1"\} (\S+)', text).group(1)
    assert float(batches) == 4, f"{batches} batches: the REST and OIP gRPC requests did not share one"


def test_tritonclient_http_model_config_and_statistics(servers, owner, digits_rows):  # noqa: F811
    """Triton's HTTP model configuration and statistics routes, as tritonclient.http reads them: the
    same answers as the gRPC RPCs, in Triton's JSON (proto field names, numbers as numbers)."""
    key = publish(owner, "oip-http-stats", max_batch_size=8, max_queue_delay_ms=1.5, max_queue_size=32)
    rows = digits_rows[:4].astype(numpy.float32)
    client = triton_http.InferenceServerClient(url=servers.base_url.removeprefix("http://"))

    def auth() -> dict:
        return {"Authorization": f"Bearer {key}"}

    def refusal(call) -> InferenceServerException:
        with pytest.raises(InferenceServerException) as caught:
            call()
        return caught.value

    try:
        config = client.get_model_config("oip-http-stats", headers=auth())
        assert (config["name"], config["platform"], config["max_batch_size"]) == ("oip-http-stats", "netforge", 1024)
        assert [(tensor["name"], tensor["data_type"], tensor["dims"]) for tensor in config["input"]] == [
            ("x", "TYPE_FP32", [64])]
        assert {tensor["name"]: (tensor["data_type"], tensor["dims"]) for tensor in config["output"]} == {
            "probabilities": ("TYPE_FP64", [10]), "classes": ("TYPE_INT64", []), "prediction": ("TYPE_FP32", [10])}
        assert config["dynamic_batching"]["preferred_batch_size"] == [8]
        assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 1500
        assert client.get_model_config("oip-http-stats", "1", headers=auth())["name"] == "oip-http-stats"

        [before] = client.get_inference_statistics("oip-http-stats", headers=auth())["model_stats"]
        assert (before["version"], before["inference_count"], before["inference_stats"]["success"]["count"]) == (
            "1", 0, 0)
        for count in (3, 1):
            client.infer("oip-http-stats", http_inputs(rows[:count], binary=True), headers=auth())
        refusal(lambda: client.infer("oip-http-stats", http_inputs(rows[:1, :63], binary=True), headers=auth()))
        [entry] = client.get_inference_statistics("oip-http-stats", "1", headers=auth())["model_stats"]
        assert (entry["name"], entry["version"], entry["inference_count"], entry["execution_count"]) == (
            "oip-http-stats", "1", 4, 2)
        assert entry["inference_stats"]["success"]["count"] == 2 and entry["inference_stats"]["success"]["ns"] > 0
        assert entry["inference_stats"]["fail"]["count"] == 1
        assert entry["inference_stats"]["queue"] == {"count": 0, "ns": 0}  # not measured: zeros, as documented

        assert refusal(lambda: client.get_model_config("oip-http-stats")).status() == "401"
        assert refusal(lambda: client.get_inference_statistics("oip-http-stats")).status() == "401"
        assert refusal(lambda: client.get_inference_statistics("oip-http-stats", "7", headers=auth())).status() \
            == "404"
        everything = refusal(lambda: client.get_inference_statistics(headers=auth()))  # Triton's "every model"
        assert everything.status() == "400" and "name the endpoint" in everything.message()
    finally:
        client.close()
