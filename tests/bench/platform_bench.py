"""The platform against the bare engine: a run through REST, Redis, a Celery worker and the
WebSocket next to ``engine.Trainer`` on the same model and data; the latency of a loss point from
the worker to a WebSocket client; and how many points a second one run's live stream carries
without losing any.

Real processes, as in ``tests/platform``: a Redis server, a Celery worker, the ASGI server.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.platform.harness import Platform, Service

EPOCHS = 100  # about a second of training a run: shorter trials measure the machine's noise
TRIALS = 7  # the machine is shared: a median of fewer trials moved by 0.1x between runs
BATCH_SIZE = 32
STREAM_RATES = (1_000, 10_000, 50_000, 100_000, 200_000)  # points per second offered
STREAM_SECONDS = 2.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def start_platform() -> Platform:
    home = Path(tempfile.mkdtemp(prefix="netforge-bench-"))
    system = Platform(home)  # its worker uses one BLAS thread, and so does the engine run beside it
    system.start_redis()
    system.migrate()
    system.start_web()
    system.start_worker()
    os.environ.update({key: system.env[key] for key in ("DJANGO_SETTINGS_MODULE", "NETFORGE_HOME", "DATABASE_URL",
                                                         "REDIS_URL", "CELERY_BROKER_URL")})
    import django  # noqa: PLC0415

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the table
    return system


def engine_baseline(workload: dict) -> tuple[float, float, int]:
    """(training samples per second over the epochs, seconds for the whole fit, training rows)."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    from engine import data  # noqa: PLC0415
    from engine.trainer import Trainer  # noqa: PLC0415

    with threadpool_limits(1):
        start = time.perf_counter()
        dataset = data.load_builtin(workload["builtin"], **workload["options"])
        trainer = Trainer(workload["spec"](), dataset, config=workload["hyperparameters"])
        result = trainer.run()
        seconds = time.perf_counter() - start
    training = sum(record["seconds"] for record in result.history)
    rows = len(trainer.train_data)
    return workload["hyperparameters"]["epochs"] * rows / training, seconds, rows


def bench_user(system: Platform):
    from django.contrib.auth import get_user_model  # noqa: PLC0415

    from tests.platform.harness import User  # noqa: PLC0415
    from webapp.core.services import api_token_create  # noqa: PLC0415

    model = get_user_model().objects.create_user(username="bench", password="x" * 12)
    return User(system, model, api_token_create(user=model, name="tests")[1])


def platform_run(space, hyperparameters: dict, rows: int) -> dict:
    """Start a run over REST, follow it over the WebSocket; throughput and point latencies."""
    from websockets.sync.client import connect  # noqa: PLC0415

    from webapp.runs.models import MetricPoint, Run  # noqa: PLC0415

    run = space.start_run(**hyperparameters)
    latencies = []
    with connect(space.user.socket_url(run["id"]), open_timeout=10) as socket:
        while True:
            message = json.loads(socket.recv(timeout=120))
            arrived = time.time()
            if message["type"] == "run.points":
                latencies.extend(arrived - p["wall_time"] for p in message["points"] if p["name"] == "loss")
            elif message["type"] == "run.state" and message["state"] in ("succeeded", "failed", "cancelled"):
                break
    record = Run.objects.get(pk=run["id"])
    if record.state != "succeeded":
        raise RuntimeError(f"the platform run ended {record.state}: {record.error}")
    per_epoch = list(MetricPoint.objects.filter(run=record, name="samples_per_second").values_list("value", flat=True))
    training_seconds = sum(rows / value for value in per_epoch)
    return {
        "samples_per_second": len(per_epoch) * rows / training_seconds,
        "seconds": (record.finished_at - record.started_at).total_seconds(),
        "latencies": latencies,
        "run": record,
    }


def stream_capacity(system: Platform, run, user) -> list[tuple[int, float, int, int]]:
    """Offer points to one run's live stream at rising rates; (rate, achieved, sent, received)."""
    from websockets.sync.client import connect  # noqa: PLC0415

    from webapp.runs.live import RunPublisher  # noqa: PLC0415

    results = []
    sequence = run.last_sequence
    for rate in STREAM_RATES:
        received: set[int] = set()
        done = threading.Event()
        first = sequence + 1

        with connect(user.socket_url(run.pk, after=sequence), open_timeout=10, max_size=None) as socket:
            json.loads(socket.recv(timeout=10))  # the history (empty after `after`)

            def listen(done=done, received=received):  # this rate's
                while not done.is_set():
                    try:
                        message = json.loads(socket.recv(timeout=0.5))
                    except TimeoutError:
                        continue
                    except Exception:  # noqa: BLE001 - the socket closed
                        return
                    if message["type"] == "run.points":
                        received.update(p["seq"] for p in message["points"])

            listener = threading.Thread(target=listen, daemon=True)
            listener.start()
            publisher = RunPublisher(run.pk)
            start = time.perf_counter()
            sent = 0
            while (elapsed := time.perf_counter() - start) < STREAM_SECONDS:
                due = int(rate * elapsed) - sent
                if due > 0:
                    now = time.time()
                    publisher.add([{"seq": sequence + 1 + i, "name": "loss", "step": sequence + 1 + i, "epoch": 0.0,
                                    "value": 0.5, "wall_time": now} for i in range(due)])
                    sequence += due
                    sent += due
                publisher.publish_due()
                time.sleep(0.002)
            publisher.flush()
            deadline = time.perf_counter() + 10
            while len(received) < sent and time.perf_counter() < deadline:
                time.sleep(0.05)
            drained = time.perf_counter() - start
            done.set()
            listener.join(timeout=2)
        got = len(received & set(range(first, first + sent)))
        results.append((rate, got / drained, sent, got))
    return results


def main() -> int:
    from tests.platform.harness import mlp_spec  # noqa: PLC0415

    print("platform bench: Redis, a Celery worker and uvicorn started as in tests/platform\n")
    system = start_platform()
    try:
        from engine import zoo  # noqa: PLC0415
        from tests.platform.harness import Workspace  # noqa: PLC0415

        user = bench_user(system)
        workloads = [
            {"title": f"digits MLP 64-128-10, batch 32, {EPOCHS} epochs", "builtin": "digits", "options": {},
             "spec": lambda: mlp_spec(64, 10, hidden=128),
             "hyperparameters": {"epochs": EPOCHS, "batch_size": BATCH_SIZE,
                                 "optimizer": {"name": "adam", "lr": 1e-3}}},
            {"title": "DeepFM on synthetic_ctr, batch 128, 15 epochs", "builtin": "synthetic_ctr", "options": {},
             "spec": lambda: zoo.load("deepfm"),
             "hyperparameters": {"epochs": 15, "batch_size": 128, "optimizer": {"name": "adam", "lr": 5e-3}}},
        ]
        print(f"median of {TRIALS} interleaved trials, one BLAS thread each; samples/s counts the training loop "
              "(the trainer's own per-epoch figure), whole run adds set-up, validation and a checkpoint per epoch\n")
        print(f"{'':50} {'samples/s':>12} {'whole run':>10}")
        outcome = None
        for workload in workloads:
            space = Workspace(user, workload)
            # One untimed run a side first: a fresh worker process's first trainings run slower
            # (its heap and caches still growing), and the bench process's too.
            platform_run(space, workload["hyperparameters"], engine_baseline(workload)[2])
            engine_runs, platform_runs = [], []
            for _ in range(TRIALS):  # interleaved, medians reported
                engine_runs.append(engine_baseline(workload))
                platform_runs.append(platform_run(space, workload["hyperparameters"], engine_runs[-1][2]))
            engine_rate = statistics.median(run[0] for run in engine_runs)
            engine_seconds = statistics.median(run[1] for run in engine_runs)
            platform_rate = statistics.median(r["samples_per_second"] for r in platform_runs)
            platform_seconds = statistics.median(r["seconds"] for r in platform_runs)
            ratio = platform_rate / engine_rate
            print(workload["title"])
            print(f"{'  engine.Trainer in this process':50} {engine_rate:12,.0f} {engine_seconds:9.2f}s")
            print(f"{'  through the platform (REST, Celery, WS)':50} {platform_rate:12,.0f} {platform_seconds:9.2f}s")
            pairs = sorted(p["samples_per_second"] / e[0] for e, p in zip(engine_runs, platform_runs))
            print(f"  platform / engine training throughput: {ratio:.2f}x "
                  f"(target >= 0.90x: {'met' if ratio >= 0.9 else 'MISSED'}; "
                  f"trial pairs {pairs[0]:.2f}-{pairs[-1]:.2f}x)")
            if outcome is None:
                outcome = {"latencies": [value for r in platform_runs for value in r["latencies"]],
                           "run": platform_runs[-1]["run"], "user": user}
        latencies = [1000 * value for value in outcome["latencies"]]
        print(f"\nloss point, produced on the worker -> received by a WebSocket client ({len(latencies)} points): "
              f"p50 {percentile(latencies, 0.5):.0f} ms, p95 {percentile(latencies, 0.95):.0f} ms, "
              f"mean {statistics.fmean(latencies):.0f} ms")
        print("\nlive stream of one run (publisher -> Redis -> consumer -> client), points offered for "
              f"{STREAM_SECONDS:.0f} s:")
        print(f"{'offered/s':>12} {'received/s':>12} {'sent':>10} {'received':>10}  lost")
        best = 0
        for rate, achieved, sent, got in stream_capacity(system, outcome["run"], outcome["user"]):
            print(f"{rate:12,} {achieved:12,.0f} {sent:10,} {got:10,}  {sent - got}")
            if got == sent:
                best = max(best, rate)
        print(f"  highest offered rate delivered without loss: {best:,} points/s")
        outcome["user"].api.close()
    finally:
        Service.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
