"""Serving a published MLP (784-256-128-10) on loopback: single-instance requests at concurrency 1
and 32, over REST (uvicorn) and gRPC (the gRPC server process), with dynamic batching (max 32
instances, 1 ms) and without (max 1), next to the engine's bare forward pass for the same batch.

The servers run as in ``tests/endpoints/test_servers.py``; the load comes from a separate process
(``python -m tests.bench.serving_bench --client ...``) with an efficient client: grpc's asyncio
API on one channel, and for REST a minimal HTTP/1.1 keep-alive client on asyncio streams (one
connection per concurrent caller). Both share the machine's cores with the servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy

WARM_UP_SECONDS = 1.0
MEASURE_SECONDS = 3.0
CONCURRENCIES = (1, 32)
TARGETS = {"grpc": 2000, "rest": 1000}  # requests/s at concurrency 32, p99 <= 50 ms


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# -- the load generator (its own process) ---------------------------------------------------------------

async def _grpc_load(target: str, endpoint: str, key: str, concurrency: int, warm_up: float, seconds: float):
    import grpc  # noqa: PLC0415

    from workers.serving.protos.netforge.serving.v1 import predict_pb2, predict_pb2_grpc  # noqa: PLC0415

    row = numpy.random.default_rng(0).random((1, 784), dtype=numpy.float32)
    request = predict_pb2.PredictRequest(endpoint=endpoint, inputs={
        "x": predict_pb2.Tensor(dtype="float32", shape=row.shape, content=row.tobytes())})
    metadata = (("authorization", f"Bearer {key}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = predict_pb2_grpc.PredictionServiceStub(channel)
        return await _drive(lambda: stub.Predict(request, metadata=metadata), concurrency, warm_up, seconds)


async def _rest_load(host: str, port: int, endpoint: str, key: str, concurrency: int, warm_up: float, seconds: float):
    row = numpy.random.default_rng(0).random((1, 784), dtype=numpy.float32)
    body = json.dumps({"instances": row.tolist()}).encode()
    head = (f"POST /api/v1/endpoints/{endpoint}/predict HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    message = head.encode() + body
    connections = [await asyncio.open_connection(host, port) for _ in range(concurrency)]
    free = asyncio.Queue()
    for connection in connections:
        free.put_nowait(connection)

    async def call():
        reader, writer = await free.get()
        try:
            writer.write(message)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            if b" 200 " not in status_line:
                raise RuntimeError(status_line.decode().strip())
        finally:
            free.put_nowait((reader, writer))

    try:
        return await _drive(call, concurrency, warm_up, seconds)
    finally:
        for _, writer in connections:
            writer.close()


async def _drive(call, concurrency: int, warm_up: float, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    start = time.perf_counter()
    measure_from, stop_at = start + warm_up, start + warm_up + seconds

    async def caller():
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                return
            try:
                await call()
            except Exception:  # noqa: BLE001  (counted, the run goes on)
                errors[0] += 1
                continue
            ended = time.perf_counter()
            if began >= measure_from:
                latencies.append(ended - began)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return {"requests": len(latencies), "seconds": seconds, "errors": errors[0],
            "p50_ms": 1000 * percentile(latencies, 0.5) if latencies else None,
            "p99_ms": 1000 * percentile(latencies, 0.99) if latencies else None}


def client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=("grpc", "rest"), required=True)
    parser.add_argument("--target", required=True)  # host:port
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=MEASURE_SECONDS)
    args = parser.parse_args(argv)
    if args.client == "grpc":
        result = asyncio.run(_grpc_load(args.target, args.endpoint, args.key, args.concurrency, WARM_UP_SECONDS,
                                        args.seconds))
    else:
        host, port = args.target.rsplit(":", 1)
        result = asyncio.run(_rest_load(host, int(port), args.endpoint, args.key, args.concurrency, WARM_UP_SECONDS,
                                        args.seconds))
    print(json.dumps(result))
    return 0


# -- the bench -----------------------------------------------------------------------------------------

def write_mlp(folder: Path) -> None:
    """An MLP 784-256-128-10 saved as a checkpoint would be (weights as initialized: the speed is the same)."""
    import engine  # noqa: PLC0415
    from engine import serialization  # noqa: PLC0415
    from engine.model import Model  # noqa: PLC0415

    graph = engine.GraphBuilder()
    x = graph.input("x", [None, 784])
    y = graph.input("y", [None], dtype="int64")
    hidden = graph.relu(graph.dense(x, units=256, id="fc1"), id="act1")
    hidden = graph.relu(graph.dense(hidden, units=128, id="fc2"), id="act2")
    logits = graph.dense(hidden, units=10, id="logits")
    graph.loss(graph.softmax_cross_entropy(logits, y, id="loss"))
    graph.output("prediction", logits)
    spec = graph.to_spec()
    schema = {"inputs": {"x": {"shape": [None, 784], "dtype": "float32", "source": "x", "standardization": None},
                         "y": {"shape": [None], "dtype": "int64", "source": "y", "standardization": None}},
              "label_input": "y", "prediction": "logits", "link": "softmax", "task": "classification",
              "num_classes": 10, "label_names": [str(digit) for digit in range(10)], "feature_names": None,
              "dataset": "bench"}
    serialization.write_artifact(folder, spec=spec, weights=Model(spec).state_arrays(), input_schema=schema)


def bare_forward(folder: Path, batch: int) -> float:
    """Median seconds of ``Predictor.predict`` on ``batch`` rows (one BLAS thread)."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    from engine.inference import Predictor  # noqa: PLC0415

    predictor = Predictor.load(folder)
    rows = numpy.random.default_rng(0).random((batch, 784), dtype=numpy.float32)
    times = []
    with threadpool_limits(1):
        for _ in range(50):
            predictor.predict(rows)
        for _ in range(500):
            started = time.perf_counter()
            predictor.predict(rows)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def setup(system) -> dict[str, str]:
    """Two endpoints with the MLP (batched, unbatched) and a key for each."""
    import httpx  # noqa: PLC0415

    with system.database_connection():
        from django.contrib.auth import get_user_model  # noqa: PLC0415
        from rest_framework.authtoken.models import Token  # noqa: PLC0415

        from tests.platform.harness import mlp_spec  # noqa: PLC0415
        from webapp.datasets.services import dataset_create_builtin  # noqa: PLC0415
        from webapp.projects.models import GraphVersion  # noqa: PLC0415
        from webapp.projects.services import project_create  # noqa: PLC0415
        from webapp.runs.models import Checkpoint, Run  # noqa: PLC0415

        user = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:6]}", password="x" * 12)
        token = Token.objects.create(user=user).key
        project = project_create(owner=user, name="serving bench")
        graph = GraphVersion.objects.create(project=project, number=1, editor_document={}, spec=mlp_spec(64, 10),
                                            created_by=user)
        dataset = dataset_create_builtin(owner=user, builtin="digits")
        run = Run.objects.create(project=project, graph_version=graph, dataset=dataset, created_by=user,
                                 state="succeeded")
        folder = system.home / "bench-mlp"
        write_mlp(folder)
        Checkpoint.objects.create(run=run, epoch=1, step=1, path=str(folder))
    keys = {}
    with httpx.Client(base_url=system.base_url, headers={"Authorization": f"Token {token}"}, timeout=60) as api:
        for name, batch in (("mlp-batched", 32), ("mlp-unbatched", 1)):
            api.post("/api/v1/endpoints", json={"name": name, "max_batch_size": batch, "max_queue_delay_ms": 1.0,
                                                "max_queue_size": 1024}).raise_for_status()
            api.post(f"/api/v1/endpoints/{name}/versions", json={"run": run.pk}).raise_for_status()
            keys[name] = api.post(f"/api/v1/endpoints/{name}/keys", json={}).json()["key"]
    return {"keys": keys, "folder": str(folder)}


def load(client: str, target: str, endpoint: str, key: str, concurrency: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.serving_bench", "--client", client, "--target", target,
         "--endpoint", endpoint, "--key", key, "--concurrency", str(concurrency)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode:
        raise RuntimeError(f"the load generator failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    from tests.platform.harness import Platform, Service  # noqa: PLC0415

    print("serving bench: uvicorn and the gRPC server started as in tests/endpoints, a separate load process\n")
    home = Path(tempfile.mkdtemp(prefix="netforge-serving-bench-"))
    system = Platform(home)
    try:
        system.migrate()
        system.start_web()
        system.start_grpc()
        os.environ.update({key: system.env[key] for key in ("DJANGO_SETTINGS_MODULE", "NETFORGE_HOME", "DATABASE_URL")})
        import django  # noqa: PLC0415

        django.setup()
        logging.getLogger("httpx").setLevel(logging.WARNING)
        prepared = setup(system)
        forward = {1: bare_forward(Path(prepared["folder"]), 1), 32: bare_forward(Path(prepared["folder"]), 32)}
        print(f"engine bare forward (Predictor.predict, one thread): batch 1 {1000 * forward[1]:.3f} ms, "
              f"batch 32 {1000 * forward[32]:.3f} ms\n")
        print(f"{'protocol':8} {'batching':10} {'concurrency':>11} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>7}  notes")
        status = 0
        targets = {"grpc": system.grpc_target, "rest": f"127.0.0.1:{system.http_port}"}
        for protocol in ("grpc", "rest"):
            for endpoint, label in (("mlp-batched", "max 32"), ("mlp-unbatched", "off")):
                for concurrency in CONCURRENCIES:
                    result = load(protocol, targets[protocol], endpoint, prepared["keys"][endpoint], concurrency)
                    rate = result["requests"] / result["seconds"]
                    notes = ""
                    if concurrency == 1 and result["p50_ms"] is not None:
                        notes = f"overhead over bare forward: {result['p50_ms'] - 1000 * forward[1]:.2f} ms p50"
                    elif concurrency == 32:
                        met = rate >= TARGETS[protocol] and (result["p99_ms"] or 1e9) <= 50
                        notes = f"target {TARGETS[protocol]} req/s, p99 <= 50 ms: {'met' if met else 'not met'}"
                    print(f"{protocol:8} {label:10} {concurrency:>11} {rate:>11.0f} {result['p50_ms'] or 0:>8.2f} "
                          f"{result['p99_ms'] or 0:>8.2f} {result['errors']:>7}  {notes}", flush=True)
                    if result["errors"]:
                        status = 1
        return status
    finally:
        for service in (system.grpc, system.web):
            if service is not None:
                service.stop()
        Service._all[:] = [service for service in Service._all if service not in (system.grpc, system.web)]


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(client_main(sys.argv[1:]))
    sys.exit(main())
