"""The Open Inference gRPC servicer's Triton messages (ModelConfig, ModelStatistics) are the same on
the wire whichever copy of the protocol's proto a process holds: its own (``protos/inference``), or
tritonclient's when tritonclient.grpc was imported first (protobuf refuses a second definition of
the ``inference.*`` symbols, so the servicer then builds tritonclient's messages). Each case runs in
a fresh interpreter, since the order of imports is what differs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BUILD = """
import os, sys, types
os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.settings.test"
if sys.argv[1] == "tritonclient-first":
    import tritonclient.grpc  # noqa: F401
import django
django.setup()
from webapp.serving import open_inference_grpc as oip
from webapp.serving.inputs import InputSpec
from webapp.serving.metrics import _Counts

route = types.SimpleNamespace(max_batch_size=16, max_queue_delay=0.0025, max_queue_size=64,
                              versions={1: types.SimpleNamespace(state="ready")})
loaded = types.SimpleNamespace(specs=[InputSpec(name="x", shape=(None, 64), dtype="float32")],
                               outputs={"probabilities": ("float64", (10,)), "classes": ("int64", ())},
                               schema={"task": "classification"})
counts = _Counts()
counts.requests, counts.errors, counts.latency_sum, counts.batches, counts.batched_instances = 3, 1, 0.5, 2, 5
statistics = oip.pb.ModelStatisticsResponse()
oip._add_statistics(statistics, "digits", 1, counts)
print(oip.pb.ModelConfig.DESCRIPTOR.file.name)
print(oip.pb.ModelConfigResponse(config=oip.model_config("digits", route, loaded)).SerializeToString().hex())
print(statistics.SerializeToString().hex())
"""


READ_AS_TRITON = """
import json, sys
from tritonclient.grpc import model_config_pb2, service_pb2
config = service_pb2.ModelConfigResponse.FromString(bytes.fromhex(sys.argv[1])).config
[entry] = service_pb2.ModelStatisticsResponse.FromString(bytes.fromhex(sys.argv[2])).model_stats
tensors = lambda side: [[t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)] for t in side]
batching = config.dynamic_batching
print(json.dumps({
    "config": [config.name, config.platform, config.max_batch_size, tensors(config.input), tensors(config.output),
               list(batching.preferred_batch_size), batching.max_queue_delay_microseconds,
               batching.default_queue_policy.max_queue_size],
    "statistics": [entry.name, entry.version, entry.inference_count, entry.execution_count,
                   entry.inference_stats.success.count, entry.inference_stats.success.ns,
                   entry.inference_stats.fail.count]}))
"""


def run(script: str, *arguments: str) -> str:
    """``script`` in a fresh interpreter (the order of its imports is the point)."""
    finished = subprocess.run([sys.executable, "-c", script, *arguments], cwd=Path(__file__).parents[2],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


def test_model_config_and_statistics_are_the_same_bytes_with_either_copy_of_the_proto():
    own_file, own_config, own_statistics = run(BUILD, "own").split()
    triton_file, triton_config, triton_statistics = run(BUILD, "tritonclient-first").split()
    assert own_file == "webapp/serving/protos/inference/model_config.proto"
    assert triton_file != own_file  # tritonclient's copy was the one used
    assert (own_config, own_statistics) == (triton_config, triton_statistics)

    # and tritonclient reads them as Triton's messages
    read = json.loads(run(READ_AS_TRITON, own_config, own_statistics))
    assert read["config"] == ["digits", "netforge", 1024, [["x", "TYPE_FP32", [64]]],
                              [["probabilities", "TYPE_FP64", [10]], ["classes", "TYPE_INT64", []]], [16], 2500, 64]
    # 5 instances in 2 forward passes; 2 requests answered in 0.5 s (with the refused one), 1 refused
    assert read["statistics"] == ["digits", "1", 5, 2, 2, 500_000_000, 1]
