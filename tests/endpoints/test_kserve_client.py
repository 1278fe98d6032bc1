"""KServe's own client (the ``kserve`` package) against the real server: InferenceRESTClient with
the binary tensor data extension on and off, InferenceGRPCClient with raw and typed tensors, and
kserve's generated stub for server and model metadata. The client runs in a process of its own
(``tests/endpoints/kserve_client.py`` says why); this checks what it saw against the engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest

from tests.endpoints.test_open_inference import expected_of
from tests.endpoints.test_servers import owner, publish, servers  # noqa: F401 - the real server and its owner

pytestmark = pytest.mark.xdist_group("serving-servers")


def check_like_the_engine(seen: dict, expected: dict, *, names: tuple = ("probabilities", "classes", "prediction")):
    outputs = seen["outputs"]
    assert sorted(outputs) == sorted(names)
    if "classes" in names:
        assert outputs["classes"]["datatype"] == "INT64"
        assert outputs["classes"]["values"] == expected["classes"].tolist()
    if "probabilities" in names:
        assert outputs["probabilities"]["shape"] == list(expected["probabilities"].shape)
        numpy.testing.assert_allclose(outputs["probabilities"]["values"], expected["probabilities"].ravel(), atol=1e-6)
    if "prediction" in names:
        numpy.testing.assert_allclose(outputs["prediction"]["values"], expected["outputs"]["prediction"].ravel(),
                                      atol=1e-5)


def test_kserve_rest_and_grpc_clients(servers, owner, digits_rows, tmp_path):  # noqa: F811
    key = publish(owner, "kserve")
    rows = digits_rows[:5].astype(numpy.float32)
    expected = expected_of(servers, owner, "kserve", rows)
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"base_url": servers.base_url, "grpc_target": servers.grpc_target,
                                   "model": "kserve", "key": key, "rows": rows.tolist()}))
    answer = tmp_path / "answer.json"
    finished = subprocess.run([sys.executable, "-m", "tests.endpoints.kserve_client", str(request), str(answer)],
                              cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-4000:]
    seen = json.loads(answer.read_text())

    rest = seen["rest"]
    assert rest["live"] is True and rest["ready"] is True and rest["model_ready"] is True
    assert rest["unknown_model_ready"] is False
    # binary_data=True: the inputs after the JSON header, and the outputs back the same way
    assert rest["binary"]["binary_body"] and rest["binary"]["id"] == "rTrue"
    check_like_the_engine(rest["binary"], expected)
    assert not rest["json"]["binary_body"]
    check_like_the_engine(rest["json"], expected)
    assert rest["unknown_model"]["status"] == 404 and "no endpoint named 'no-such-model'" in rest["unknown_model"][
        "message"]
    assert rest["no_key"]["status"] == 401

    over_grpc = seen["grpc"]
    assert over_grpc["live"] is True and over_grpc["ready"] is True and over_grpc["model_ready"] is True
    check_like_the_engine(over_grpc["raw"], expected)
    assert over_grpc["raw"]["id"] == "g1" and over_grpc["raw"]["model_version"] == "1"
    check_like_the_engine(over_grpc["typed"], expected, names=("classes",))  # fp32_contents in, one output asked
    assert over_grpc["unknown_model"]["status"] == "NOT_FOUND"
    assert over_grpc["bad_shape"]["status"] == "INVALID_ARGUMENT" and "inputs[0].shape" in over_grpc["bad_shape"][
        "message"]
    assert over_grpc["no_key"]["status"] == "UNAUTHENTICATED"
    assert over_grpc["server_metadata"]["name"] == "netforge"
    assert "binary_tensor_data" in over_grpc["server_metadata"]["extensions"]
    metadata = over_grpc["model_metadata"]
    assert metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}]
    assert {output["name"] for output in metadata["outputs"]} == {"probabilities", "classes", "prediction"}
