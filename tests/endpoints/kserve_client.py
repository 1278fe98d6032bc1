"""KServe's own client against a running NetForge server, as a KServe user calls it: the ``kserve``
package's ``InferenceRESTClient`` (v2 protocol, JSON tensors and the binary tensor data extension)
and ``InferenceGRPCClient``, plus kserve's generated ``GRPCInferenceServiceStub`` for the metadata
RPCs, which its clients do not wrap.

It runs in a process of its own (``python -m tests.endpoints.kserve_client REQUEST ANSWER``): kserve
and tritonclient.grpc each register the protocol's messages (``inference.ModelInferRequest``, ...)
in protobuf's default pool from their own copy of the proto, and protobuf refuses the second copy
in one process, which would be every pytest worker that collects test_open_inference.py.
REQUEST is a JSON file with ``base_url``, ``grpc_target``, ``model``, ``key`` and ``rows`` (FP32
instances); this writes what the server answered to the JSON file ANSWER, and
test_kserve_client.py checks it against the engine.
"""

from __future__ import annotations

import asyncio
import json
import sys

import grpc
import httpx
import numpy
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from kserve.protocol.infer_type import RequestedOutput


def infer_request(model: str, rows: numpy.ndarray, *, binary: bool, request_id: str,
                  outputs: list[str] | None = None) -> InferRequest:
    tensor = InferInput(name="x", shape=list(rows.shape), datatype="FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return InferRequest(model_name=model, infer_inputs=[tensor], request_id=request_id,
                        parameters={"binary_data_output": True} if binary else None,
                        request_outputs=[RequestedOutput(name) for name in outputs] if outputs else None)


def described(response) -> dict:
    """An InferResponse as JSON: its id, version and each output's datatype, shape and values."""
    return {"id": response.id, "model_version": getattr(response, "model_version", None),
            "outputs": {output.name: {"datatype": output.datatype, "shape": list(output.shape),
                                      "values": output.as_numpy().ravel().tolist()}
                        for output in response.outputs}}


async def over_rest(request: dict, rows: numpy.ndarray) -> dict:
    base_url, model = request["base_url"], request["model"]
    headers = {"Authorization": f"Bearer {request['key']}"}
    seen: dict = {}
    async with InferenceRESTClient(RESTConfig(protocol="v2", timeout=60)) as client:
        seen["live"] = await client.is_server_live(base_url)
        seen["ready"] = await client.is_server_ready(base_url)
        seen["model_ready"] = await client.is_model_ready(base_url, model)
        seen["unknown_model_ready"] = await client.is_model_ready(base_url, "no-such-model")
        for binary in (True, False):
            answer_headers: dict = {}
            response = await client.infer(base_url, infer_request(model, rows, binary=binary, request_id=f"r{binary}"),
                                          model_name=model, headers=dict(headers), response_headers=answer_headers)
            seen["binary" if binary else "json"] = {
                **described(response), "binary_body": "inference-header-content-length" in answer_headers}
        refusals = {"unknown_model": ("no-such-model", headers), "no_key": (model, {})}
        for what, (name, sent) in refusals.items():
            try:
                await client.infer(base_url, infer_request(name, rows, binary=True, request_id="x"), model_name=name,
                                   headers=dict(sent))
            except httpx.HTTPStatusError as error:
                seen[what] = {"status": error.response.status_code, "message": str(error)}
    return seen


async def over_grpc(request: dict, rows: numpy.ndarray) -> dict:
    target, model = request["grpc_target"], request["model"]
    metadata = (("authorization", f"Bearer {request['key']}"),)
    seen: dict = {}
    async with InferenceGRPCClient(target, timeout=60) as client:
        seen["live"] = await client.is_server_live()
        seen["ready"] = await client.is_server_ready()
        seen["model_ready"] = await client.is_model_ready(model)
        seen["raw"] = described(await client.infer(infer_request(model, rows, binary=True, request_id="g1"),
                                                   headers=metadata))
        seen["typed"] = described(await client.infer(
            infer_request(model, rows, binary=False, request_id="g2", outputs=["classes"]), headers=metadata))
        refusals = {"unknown_model": (infer_request("no-such-model", rows, binary=True, request_id="x"), metadata),
                    "bad_shape": (infer_request(model, rows[:, :63], binary=True, request_id="x"), metadata),
                    "no_key": (infer_request(model, rows, binary=True, request_id="x"), ())}
        for what, (sent, sent_metadata) in refusals.items():
            try:
                await client.infer(sent, headers=sent_metadata)
            except grpc.aio.AioRpcError as error:
                seen[what] = {"status": error.code().name, "message": error.details()}
    async with grpc.aio.insecure_channel(target) as channel:
        stub = GRPCInferenceServiceStub(channel)
        server = await stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=60)
        seen["server_metadata"] = {"name": server.name, "extensions": list(server.extensions)}
        described_model = await stub.ModelMetadata(pb.ModelMetadataRequest(name=model), metadata=metadata, timeout=60)
        tensors = {side: [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                          for t in getattr(described_model, side)] for side in ("inputs", "outputs")}
        seen["model_metadata"] = {"versions": list(described_model.versions), **tensors}
    return seen


def main(request_path: str, answer_path: str) -> None:
    with open(request_path) as file:
        request = json.load(file)
    rows = numpy.asarray(request["rows"], dtype=numpy.float32)
    answer = {"rest": asyncio.run(over_rest(request, rows)), "grpc": asyncio.run(over_grpc(request, rows))}
    with open(answer_path, "w") as file:
        json.dump(answer, file)


if __name__ == "__main__":
    main(*sys.argv[1:])
