"""Serving a published MLP (784-256-128-10) on loopback: single-instance requests at concurrency 1
and 32, over REST and gRPC (both served by the uvicorn process), with dynamic batching (max 32
instances, 1 ms) and without (max 1), next to the engine's bare forward pass for the same batch.

The server runs as in ``tests/endpoints/test_servers.py``; the load comes from a separate process
that shares the machine's two cores with it, so it is kept lean: real sockets on loopback, real
HTTP/1.1 and gRPC, every request's latency measured from just before it is sent to its last byte,
and any answer other than a success counted as an error. At concurrency 1 it is a plain blocking
loop (``python -m tests.bench.serving_bench --client ...``: a blocking gRPC stub; for REST a
keep-alive socket). At 32, for REST, one keep-alive connection per caller driven by an
``asyncio.Protocol`` (0.03-0.06 ms of CPU a request); for gRPC, h2load (nghttp2's HTTP/2 load
generator, in C, from Debian's nghttp2-client: ``make bench`` installs it) sending the same
Predict message as gRPC framing on one HTTP/2 connection with 32 streams in flight. grpc's own
Python client costs 0.2 ms of CPU a request, a third of what the server spends, on the same two
cores; its row is kept as a reference. h2load checks HTTP statuses only, and gRPC puts its status
in the trailers, so for those rows the server's own counts decide: every request h2load
completed must be counted by the server's metrics as answered without error.

Each cell is measured ``ROUNDS`` times, the cells taking turns, because the machine is shared:
the table gives the median round and the range of requests/s, and the CPU time that the server
and the load generator spent per request (less sensitive to neighbours than rates are).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy

WARM_UP_SECONDS = 1.0
MEASURE_SECONDS = 3.0
ROUNDS = int(os.environ.get("NETFORGE_SERVING_BENCH_ROUNDS", "3"))
CONCURRENCIES = (1, 32)
TARGETS = {"grpc": 2000, "rest": 1000}  # requests/s at concurrency 32, p99 <= 50 ms
TARGET_P99_MS = 50.0
TARGET_OVERHEAD_MS = 1.0  # p50 at concurrency 1 above the bare forward
H2LOAD = shutil.which("h2load")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# -- the load generator (its own process) ---------------------------------------------------------------

def _row() -> numpy.ndarray:
    return numpy.random.default_rng(0).random((1, 784), dtype=numpy.float32)


def _rest_message(host: str, port: int, endpoint: str, key: str) -> bytes:
    body = json.dumps({"instances": _row().tolist()}).encode()
    head = (f"POST /api/v1/endpoints/{endpoint}/predict HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _response_end(buffer) -> tuple[int, bytes] | None:
    """(length of the first complete HTTP response in ``buffer``, its status code) or None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower() + b"\r\n"
    length = 0
    field = head.find(b"\r\ncontent-length:")
    if field >= 0:
        value_from = field + len(b"\r\ncontent-length:")
        length = int(head[value_from:head.index(b"\r\n", value_from)])
    total = end + 4 + length
    return (total, head[9:12]) if len(buffer) >= total else None


class _Measure:
    """Latencies of the calls that started inside the measured window; every call counted."""

    def __init__(self, warm_up: float, seconds: float):
        self.start = time.perf_counter()
        self.measure_from, self.stop_at = self.start + warm_up, self.start + warm_up + seconds
        self.seconds = seconds
        self.latencies: list[float] = []
        self.errors = 0
        self.calls = 0
        self.cpu_started = time.process_time()

    def add(self, began: float, ended: float) -> None:
        self.calls += 1
        if began >= self.measure_from:
            self.latencies.append(ended - began)

    def result(self) -> dict:
        latencies = self.latencies
        return {"requests": len(latencies), "seconds": self.seconds, "errors": self.errors, "calls": self.calls,
                "client_cpu_seconds": time.process_time() - self.cpu_started,
                "p50_ms": 1000 * percentile(latencies, 0.5) if latencies else None,
                "p99_ms": 1000 * percentile(latencies, 0.99) if latencies else None}


def _grpc_blocking(target: str, endpoint: str, key: str, warm_up: float, seconds: float) -> dict:
    import grpc  # noqa: PLC0415

    from webapp.serving.protos.netforge.serving.v1 import predict_pb2, predict_pb2_grpc  # noqa: PLC0415

    row = _row()
    request = predict_pb2.PredictRequest(endpoint=endpoint, inputs={
        "x": predict_pb2.Tensor(dtype="float32", shape=row.shape, content=row.tobytes())})
    metadata = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(target) as channel:
        predict = predict_pb2_grpc.PredictionServiceStub(channel).Predict
        measure = _Measure(warm_up, seconds)
        while True:
            began = time.perf_counter()
            if began >= measure.stop_at:
                return measure.result()
            try:
                predict(request, metadata=metadata, timeout=30)
            except grpc.RpcError:
                measure.errors += 1
                continue
            measure.add(began, time.perf_counter())


def _rest_blocking(host: str, port: int, endpoint: str, key: str, warm_up: float, seconds: float) -> dict:
    message = _rest_message(host, port, endpoint, key)
    with socket.create_connection((host, port)) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        measure = _Measure(warm_up, seconds)
        while True:
            began = time.perf_counter()
            if began >= measure.stop_at:
                return measure.result()
            connection.sendall(message)
            while (done := _response_end(buffer)) is None:
                chunk = connection.recv(65536)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                buffer += chunk
            ended = time.perf_counter()
            del buffer[:done[0]]
            if done[1] == b"200":
                measure.add(began, ended)
            else:
                measure.errors += 1


async def _grpc_load(target: str, endpoint: str, key: str, concurrency: int, warm_up: float, seconds: float):
    import grpc  # noqa: PLC0415

    from webapp.serving.protos.netforge.serving.v1 import predict_pb2, predict_pb2_grpc  # noqa: PLC0415

    row = _row()
    request = predict_pb2.PredictRequest(endpoint=endpoint, inputs={
        "x": predict_pb2.Tensor(dtype="float32", shape=row.shape, content=row.tobytes())})
    metadata = (("authorization", f"Bearer {key}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = predict_pb2_grpc.PredictionServiceStub(channel)
        return await _drive(lambda _caller: stub.Predict(request, metadata=metadata, timeout=30), concurrency,
                            warm_up, seconds)


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection answering one request at a time."""

    def __init__(self):
        self.buffer = bytearray()
        self.transport = None
        self.waiter: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        done = _response_end(self.buffer)
        if done is not None and self.waiter is not None and not self.waiter.done():
            del self.buffer[:done[0]]
            self.waiter.set_result(done[1])

    def connection_lost(self, error) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"the server closed the connection ({error})"))

    async def request(self, message: bytes) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(message)
        status = await self.waiter
        if status != b"200":
            raise RuntimeError(f"HTTP {status.decode()}")


async def _rest_load(host: str, port: int, endpoint: str, key: str, concurrency: int, warm_up: float, seconds: float):
    message = _rest_message(host, port, endpoint, key)
    loop = asyncio.get_running_loop()
    connections = [(await loop.create_connection(_HttpConnection, host, port))[1] for _ in range(concurrency)]
    try:
        return await _drive(lambda caller: connections[caller].request(message), concurrency, warm_up, seconds)
    finally:
        for connection in connections:
            connection.transport.close()


async def _drive(call, concurrency: int, warm_up: float, seconds: float) -> dict:
    measure = _Measure(warm_up, seconds)

    async def caller(index: int):
        while True:
            began = time.perf_counter()
            if began >= measure.stop_at:
                return
            try:
                await call(index)
            except Exception:  # noqa: BLE001  (counted, the run goes on)
                measure.errors += 1
                continue
            measure.add(began, time.perf_counter())

    await asyncio.gather(*(caller(index) for index in range(concurrency)))
    return measure.result()


def check_answer(protocol: str, target: str, endpoint: str, key: str) -> None:
    """One request whose answer is read in full, before the load: the load counts answers by their
    status, so this makes sure that a success really carries one prediction of the ten classes."""
    host, port = target.rsplit(":", 1)
    if protocol == "rest":
        import http.client  # noqa: PLC0415

        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("POST", f"/api/v1/endpoints/{endpoint}/predict",
                           body=json.dumps({"instances": _row().tolist()}),
                           headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
        predictions = body.get("predictions") if response.status == 200 else None
        if not predictions or len(predictions) != 1 or len(predictions[0]["probabilities"]) != 10:
            raise RuntimeError(f"not a prediction: HTTP {response.status} {body}")
        return
    import grpc  # noqa: PLC0415

    from webapp.serving.protos.netforge.serving.v1 import predict_pb2, predict_pb2_grpc  # noqa: PLC0415

    row = _row()
    with grpc.insecure_channel(target) as channel:
        answer = predict_pb2_grpc.PredictionServiceStub(channel).Predict(
            predict_pb2.PredictRequest(endpoint=endpoint, inputs={
                "x": predict_pb2.Tensor(dtype="float32", shape=row.shape, content=row.tobytes())}),
            metadata=(("authorization", f"Bearer {key}"),), timeout=30)
    probabilities = answer.outputs["probabilities"]
    if list(probabilities.shape) != [1, 10] or len(answer.labels) != 1:
        raise RuntimeError(f"not a prediction: {answer}")


def client_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=("grpc", "rest"), required=True)
    parser.add_argument("--target", required=True)  # host:port
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=MEASURE_SECONDS)
    args = parser.parse_args(argv)
    check_answer(args.client, args.target, args.endpoint, args.key)
    host, port = args.target.rsplit(":", 1)
    timing = (WARM_UP_SECONDS, args.seconds)
    if args.client == "grpc" and args.concurrency == 1:
        result = _grpc_blocking(args.target, args.endpoint, args.key, *timing)
    elif args.client == "grpc":
        result = asyncio.run(_grpc_load(args.target, args.endpoint, args.key, args.concurrency, *timing))
    elif args.concurrency == 1:
        result = _rest_blocking(host, int(port), args.endpoint, args.key, *timing)
    else:
        result = asyncio.run(_rest_load(host, int(port), args.endpoint, args.key, args.concurrency, *timing))
    print(json.dumps(result))
    return 0


def _h2load_grpc(target: str, endpoint: str, key: str, concurrency: int, workdir: Path) -> dict:
    """One measurement by h2load: the Predict message of the other clients, gRPC-framed (a zero
    byte, its length, the message), posted on one HTTP/2 connection with ``concurrency`` streams;
    latencies of the measured window from h2load's per-request log."""
    from webapp.serving.protos.netforge.serving.v1 import predict_pb2  # noqa: PLC0415

    row = _row()
    message = predict_pb2.PredictRequest(endpoint=endpoint, inputs={
        "x": predict_pb2.Tensor(dtype="float32", shape=row.shape, content=row.tobytes())}).SerializeToString()
    body, log = workdir / f"{endpoint}.grpc", workdir / f"{endpoint}.h2load.log"
    body.write_bytes(b"\0" + struct.pack(">I", len(message)) + message)
    log.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [H2LOAD, "--clients=1", f"--max-concurrent-streams={concurrency}", f"--duration={MEASURE_SECONDS:g}",
         f"--warm-up-time={WARM_UP_SECONDS:g}", f"--data={body}", f"--log-file={log}",
         "--header=content-type: application/grpc", "--header=te: trailers",
         f"--header=authorization: Bearer {key}",
         f"http://{target}/netforge.serving.v1.PredictionService/Predict"],
        capture_output=True, text=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                     r"(\d+) errored", result.stdout)
    if result.returncode or done is None:
        raise RuntimeError(f"h2load failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    # the log holds the requests of the measured window: (start in µs since the epoch, status, µs to the end)
    entries = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    latencies = [int(duration) / 1e6 for start, status, duration in entries if status == "200"]
    succeeded, failed = int(done[4]), int(done[5]) + int(done[6])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"requests": succeeded, "seconds": MEASURE_SECONDS, "errors": failed + sum(e[1] != "200" for e in entries),
            "calls": len(entries), "client_cpu_seconds": cpu,
            "p50_ms": 1000 * percentile(latencies, 0.5) if latencies else None,
            "p99_ms": 1000 * percentile(latencies, 0.99) if latencies else None}


def server_counts(endpoint: str, protocol: str) -> tuple[int, int]:
    """(requests, errors) that the serving metrics have stored for ``endpoint`` over ``protocol``."""
    from django.db.models import Sum  # noqa: PLC0415

    from webapp.endpoints.models import MetricBucket  # noqa: PLC0415

    totals = MetricBucket.objects.filter(endpoint__name=endpoint, protocol=protocol).aggregate(
        requests=Sum("requests"), errors=Sum("errors"))
    return totals["requests"] or 0, totals["errors"] or 0


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

        from tests.platform.harness import mlp_spec  # noqa: PLC0415
        from webapp.core.services import api_token_create  # noqa: PLC0415
        from webapp.datasets.services import dataset_create_builtin  # noqa: PLC0415
        from webapp.projects.models import GraphVersion  # noqa: PLC0415
        from webapp.projects.services import project_create  # noqa: PLC0415
        from webapp.runs.models import Checkpoint, Run  # noqa: PLC0415

        user = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:6]}", password="x" * 12)
        token = api_token_create(user=user, name="tests")[1]
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


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(client: str, target: str, endpoint: str, key: str, concurrency: int, server_pid: int, workdir: Path) -> dict:
    """One measurement (``client``: "rest", "grpc" for grpc's Python client, "h2load" for gRPC by
    h2load) by a fresh load process; adds the server's CPU time per request."""
    if client == "h2load":
        check_answer("grpc", target, endpoint, key)
        counted = server_counts(endpoint, "grpc")
        server_cpu = process_cpu_seconds(server_pid)
        answer = _h2load_grpc(target, endpoint, key, concurrency, workdir)
        server_seconds = process_cpu_seconds(server_pid) - server_cpu
        # gRPC errors travel in trailers, which h2load does not read: the server's counts must show
        # every request it completed, none of them an error (they reach the database every second)
        deadline = time.monotonic() + 15
        time.sleep(1.5)  # the last requests' counts reach the database
        while ((now := server_counts(endpoint, "grpc"))[0] - counted[0] < answer["calls"]
               and time.monotonic() < deadline):
            time.sleep(0.2)
        answered, errors = now[0] - counted[0], now[1] - counted[1]
        if answered < answer["calls"]:
            raise RuntimeError(f"h2load completed {answer['calls']} requests, the server counted {answered}")
        answer["errors"] += errors
        answer["calls"] = answered  # the warm-up's too, as the server's CPU time covers them
    else:
        server_cpu = process_cpu_seconds(server_pid)
        result = subprocess.run(
            [sys.executable, "-m", "tests.bench.serving_bench", "--client", client, "--target", target,
             "--endpoint", endpoint, "--key", key, "--concurrency", str(concurrency)],
            capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
        server_seconds = process_cpu_seconds(server_pid) - server_cpu
        if result.returncode:
            raise RuntimeError(f"the load generator failed:\n{result.stderr[-3000:]}")
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    # the server's CPU over the whole run (warm-up included) over every call answered in it
    answer["server_cpu_ms"] = 1000 * server_seconds / max(answer["calls"], 1)
    answer["client_cpu_ms"] = 1000 * answer["client_cpu_seconds"] / max(answer["calls"], 1)
    answer["rate"] = answer["requests"] / answer["seconds"]
    return answer


def verdict(protocol: str, concurrency: int, rate: float, p50_ms: float | None, p99_ms: float | None,
            forward_ms: float) -> tuple[str, bool]:
    if p50_ms is None or p99_ms is None:
        return "no answers", False
    if concurrency == 1:
        overhead = p50_ms - forward_ms
        met = overhead <= TARGET_OVERHEAD_MS
        return f"overhead {overhead:.2f} ms p50 (target <= {TARGET_OVERHEAD_MS:g}): {'met' if met else 'NOT met'}", met
    met = rate >= TARGETS[protocol] and p99_ms <= TARGET_P99_MS
    return (f"target >= {TARGETS[protocol]} req/s, p99 <= {TARGET_P99_MS:g} ms: {'met' if met else 'NOT met'}", met)


def main() -> int:
    from tests.platform.harness import Platform, Service  # noqa: PLC0415

    print("serving bench: uvicorn serving REST and gRPC, started as in tests/endpoints; load from separate "
          f"processes (h2load for gRPC at 32) on the same cores; {ROUNDS} rounds of {MEASURE_SECONDS:g} s a cell "
          f"(after {WARM_UP_SECONDS:g} s of warm-up), the cells taking turns\n")
    home = Path(tempfile.mkdtemp(prefix="netforge-serving-bench-"))
    system = Platform(home)
    try:
        system.migrate()
        system.start_web(grpc=True)
        os.environ.update({key: system.env[key] for key in ("DJANGO_SETTINGS_MODULE", "NETFORGE_HOME", "DATABASE_URL")})
        import django  # noqa: PLC0415

        django.setup()
        logging.getLogger("httpx").setLevel(logging.WARNING)
        prepared = setup(system)
        forward = {1: bare_forward(Path(prepared["folder"]), 1), 32: bare_forward(Path(prepared["folder"]), 32)}
        print(f"engine bare forward (Predictor.predict, one thread): batch 1 {1000 * forward[1]:.3f} ms, "
              f"batch 32 {1000 * forward[32]:.3f} ms\n")
        targets = {"grpc": (system.grpc_target, system.web.process.pid),
                   "rest": (f"127.0.0.1:{system.http_port}", system.web.process.pid)}
        # (protocol, client, endpoint, batching, concurrency, held to the targets)
        cells = []
        for protocol in ("grpc", "rest"):
            for endpoint, label in (("mlp-batched", "max 32"), ("mlp-unbatched", "off")):
                for concurrency in CONCURRENCIES:
                    if protocol == "rest":
                        cells.append((protocol, "asyncio", "rest", endpoint, label, concurrency, True))
                    elif concurrency == 1:
                        cells.append((protocol, "grpc", "grpc", endpoint, label, concurrency, True))
                    else:
                        if H2LOAD:
                            cells.append((protocol, "h2load", "h2load", endpoint, label, concurrency, True))
                        cells.append((protocol, "grpc.aio", "grpc", endpoint, label, concurrency, not H2LOAD))
        if not H2LOAD:
            print("h2load not found (Debian's nghttp2-client; make bench installs it): gRPC at concurrency 32 is "
                  "measured with grpc's Python client alone\n")
        rounds: dict[tuple, list[dict]] = {cell: [] for cell in cells}
        for _round in range(ROUNDS):
            for cell in cells:
                protocol, _name, client, endpoint, _label, concurrency, _held = cell
                target, pid = targets[protocol]
                rounds[cell].append(load(client, target, endpoint, prepared["keys"][endpoint], concurrency, pid, home))
        print(f"{'protocol':8} {'client':8} {'batching':8} {'conc.':>5} {'req/s':>7} {'(range)':>13} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'server':>9} {'client':>9} {'errors':>6}  verdict (median round)")
        print(f"{'':40} {'':>13} {'':>7} {'':>7} {'CPU ms/req':>19}")
        status = 0
        for cell in cells:
            protocol, name, _client, endpoint, label, concurrency, held = cell
            results = rounds[cell]
            rates = [result["rate"] for result in results]
            median = sorted(results, key=lambda result: result["rate"])[len(results) // 2]
            p50, p99 = median["p50_ms"], median["p99_ms"]
            note, met = verdict(protocol, concurrency, median["rate"], p50, p99, 1000 * forward[1])
            if not held:
                note = f"reference (its client costs the server's cores): {note.rsplit(':', 1)[1].strip()}"
            errors = sum(result["errors"] for result in results)
            print(f"{protocol:8} {name:8} {label:8} {concurrency:>5} {median['rate']:>7.0f} "
                  f"{f'({min(rates):.0f}-{max(rates):.0f})':>13} {p50 or 0:>7.2f} {p99 or 0:>7.2f} "
                  f"{statistics.median(r['server_cpu_ms'] for r in results):>9.3f} "
                  f"{statistics.median(r['client_cpu_ms'] for r in results):>9.3f} {errors:>6}  {note}", flush=True)
            if errors or (held and not met):  # make bench's status counts a missed target, as the others' do
                status = 1
        return status
    finally:
        if system.web is not None:
            system.web.stop()
        Service._all[:] = [service for service in Service._all if service is not system.web]


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(client_main(sys.argv[1:]))
    sys.exit(main())
