"""Distributed training on this machine: the collectives and a data-parallel run against one worker.

1. Ring all-reduce of a float32 buffer of 1, 10 and 100 MB across 2 and 4 local worker processes
   (real processes, real gRPC channels on loopback, a real Redis for the rendezvous): the bytes each
   worker sent against the optimum 2 (N - 1) / N x the buffer (target: within 1 %), and the time of
   one all-reduce (each round starts after a one-element all-reduce, so all workers start it
   together; the slowest worker's time counts). The parameter server's traffic is given beside it:
   each worker sends the buffer once, and the server sends it N times.
2. Step throughput of the same MLP on the same data, one worker (``engine.Trainer``) against two
   workers of a distributed run (ring all-reduce, and parameter server), in interleaved trials:
   samples of the global batch per second of training (the slowest worker's training loop). On 2
   cores, two workers each compute half a batch; what they gain there, the exchange costs.

``python -m tests.bench.distributed_bench``; one member process of it is
``python -m tests.bench.distributed_bench --member JSON``.
"""

from __future__ import annotations

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

SIZES_MB = (1, 10, 100)
WORLD_SIZES = (2, 4)
ROUNDS = {1: 10, 10: 5, 100: 3}
THROUGHPUT_TRIALS = int(os.environ.get("NETFORGE_DISTRIBUTED_BENCH_TRIALS", "3"))
THROUGHPUT_EPOCHS = 6
# (hidden units, batch size): a small model whose step is mostly the exchange's latency, and a wider
# one with larger batches whose step is mostly arithmetic.
WORKLOADS = ((512, 128), (4096, 512))
BYTES_TARGET = 0.01


# -- a member process ------------------------------------------------------------------------------------

def _member(config: dict) -> int:
    from workers.distributed.worker import DataParallelWorker, serve_parameters  # noqa: PLC0415

    out = Path(config["out"])
    if config["role"] == "server":
        serve_parameters(config["redis_url"], config["group"], world_size=config["world_size"], dtype="float32",
                         timeout=300)
        return 0
    worker = DataParallelWorker(config["redis_url"], config["group"], rank=config["rank"],
                                world_size=config["world_size"], strategy=config["strategy"], dtype="float32",
                                timeout=300)
    worker.join()
    if config["role"] == "allreduce":
        results = []
        barrier = numpy.zeros(1, dtype=numpy.float32)
        for size_mb in config["sizes_mb"]:
            elements = size_mb * 1_000_000 // 4
            buffer = numpy.random.default_rng(config["rank"]).standard_normal(elements, dtype=numpy.float32)
            worker.collective.all_reduce(buffer.copy())  # warm-up: connections, allocations
            for _ in range(ROUNDS[size_mb]):
                worker.collective.all_reduce(barrier)
                work = buffer.copy()
                before = worker.bytes_sent
                began = time.perf_counter()
                worker.collective.all_reduce(work)
                results.append({"size_mb": size_mb, "seconds": time.perf_counter() - began,
                                "bytes_sent": worker.bytes_sent - before, "gradient_bytes": work.nbytes})
        (out / f"allreduce-{config['world_size']}-{config['rank']}.json").write_text(json.dumps(results))
    else:
        trainer = _trainer(config["workload"], shard=(config["rank"], config["world_size"]))
        trainer.reduce_gradients = worker.make_reducer(trainer.model.params, on_stop=trainer.cancel)
        began = time.perf_counter()
        trainer.run()
        seconds = time.perf_counter() - began
        (out / f"train-{config['strategy']}-{config['rank']}.json").write_text(json.dumps(
            {"seconds": seconds, "rows": len(trainer.train_data) * THROUGHPUT_EPOCHS}))
    worker.finish()
    return 0


def _trainer(workload, shard=None):
    import engine  # noqa: PLC0415
    from engine.data import load  # noqa: PLC0415
    from tests.platform.harness import mlp_spec  # noqa: PLC0415

    hidden, batch_size = workload
    config = {"epochs": THROUGHPUT_EPOCHS, "batch_size": batch_size, "optimizer": {"name": "adam", "lr": 1e-3},
              "validation_fraction": 0.0, "train_metrics": False}
    return engine.Trainer(mlp_spec(64, 10, hidden=hidden), load("digits"), config=config, shard=shard)


# -- the driver ----------------------------------------------------------------------------------------------

def _start(config: dict, log_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    name = config.get("rank", "server")
    log = open(log_dir / f"{config['role']}-{config['group']}-{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "tests.bench.distributed_bench", "--member", json.dumps(config)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _run_group(configs: list[dict], log_dir: Path, *, timeout: float = 900) -> None:
    processes = [_start(config, log_dir) for config in configs]
    try:
        for process in processes:
            if process.wait(timeout=timeout):
                raise RuntimeError(f"a member failed; see {log_dir}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def _single_worker_throughput(workload) -> float:
    trainer = _trainer(workload)
    began = time.perf_counter()
    trainer.run()
    return len(trainer.train_data) * THROUGHPUT_EPOCHS / (time.perf_counter() - began)


def _distributed_throughput(redis_url: str, strategy: str, out: Path, workload) -> float:
    group = f"bench-{uuid.uuid4().hex[:10]}"
    base = {"redis_url": redis_url, "group": group, "world_size": 2, "strategy": strategy, "out": str(out),
            "role": "train", "workload": list(workload)}
    configs = [{**base, "rank": rank} for rank in range(2)]
    if strategy == "ps":
        configs.append({**base, "role": "server"})
    _run_group(configs, out)
    reports = [json.loads((out / f"train-{strategy}-{rank}.json").read_text()) for rank in range(2)]
    return reports[0]["rows"] / max(report["seconds"] for report in reports)


def main() -> int:
    from tests.platform.harness import Platform  # noqa: PLC0415

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    home = Path(tempfile.mkdtemp(prefix="netforge-distributed-bench-"))
    system = Platform(home)
    system.start_redis()
    status = 0
    try:
        print("distributed bench: ring all-reduce over gRPC on loopback, float32, local processes\n")
        print(f"{'workers':>7} {'MB':>5} {'sent/worker MB':>15} {'optimum MB':>11} {'ratio':>7} "
              f"{'all-reduce s (median, range)':>30} {'GB/s algo':>10}")
        for world_size in WORLD_SIZES:
            group = f"bench-{uuid.uuid4().hex[:10]}"
            base = {"redis_url": system.redis_url, "group": group, "world_size": world_size, "strategy": "allreduce",
                    "out": str(home), "role": "allreduce", "sizes_mb": list(SIZES_MB)}
            _run_group([{**base, "rank": rank} for rank in range(world_size)], home.joinpath("logs"))
            per_rank = [json.loads((home / f"allreduce-{world_size}-{rank}.json").read_text())
                        for rank in range(world_size)]
            for size_mb in SIZES_MB:
                rounds = [[r for r in results if r["size_mb"] == size_mb] for results in per_rank]
                seconds = [max(rank_rounds[i]["seconds"] for rank_rounds in rounds) for i in range(len(rounds[0]))]
                gradient_bytes = rounds[0][0]["gradient_bytes"]
                optimum = 2 * (world_size - 1) / world_size * gradient_bytes
                sent = [rank_rounds[0]["bytes_sent"] for rank_rounds in rounds]
                ratio = max(sent) / optimum
                if abs(ratio - 1) > BYTES_TARGET:
                    status = 1
                median = statistics.median(seconds)
                print(f"{world_size:>7} {size_mb:>5} {max(sent) / 1e6:>15.3f} {optimum / 1e6:>11.3f} {ratio:>7.4f} "
                      f"{median:>12.4f} ({min(seconds):.4f}-{max(seconds):.4f}) {gradient_bytes / median / 1e9:>10.3f}")
        print(f"\nbytes target: every worker within {BYTES_TARGET:.0%} of 2 (N - 1) / N x the buffer: "
              f"{'met' if status == 0 else 'MISSED'}")
        print("parameter server, for comparison: each worker sends 1 x the buffer, the server N x\n")

        print(f"step throughput on digits (1797 rows), {THROUGHPUT_EPOCHS} epochs, Adam, one BLAS thread a process, "
              f"{THROUGHPUT_TRIALS} interleaved trials; samples/s of the global batch")
        for workload in WORKLOADS:
            hidden, batch_size = workload
            parameters = _trainer(workload).model.parameter_count()
            print(f"\nMLP 64-{hidden}-10 ({parameters / 1e3:.0f}k parameters, {parameters * 4 / 1e6:.2f} MB gradient), "
                  f"batch {batch_size}")
            rates = {"1 worker": [], "2 workers, all-reduce": [], "2 workers, parameter server": []}
            for _ in range(THROUGHPUT_TRIALS):
                rates["1 worker"].append(_single_worker_throughput(workload))
                for name, strategy in (("2 workers, all-reduce", "allreduce"), ("2 workers, parameter server", "ps")):
                    rates[name].append(_distributed_throughput(system.redis_url, strategy, home, workload))
            print(f"{'':32} {'samples/s (median)':>19} {'range':>20} {'vs 1 worker (trial ratios)':>28}")
            for name, values in rates.items():
                ratios = [value / single for value, single in zip(values, rates["1 worker"])]
                print(f"{name:32} {statistics.median(values):>19.0f} {min(values):>9.0f}-{max(values):<10.0f} "
                      f"{statistics.median(ratios):>10.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
    finally:
        system.redis.stop()
    return status


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--member":
        logging.basicConfig(level=logging.WARNING)
        sys.exit(_member(json.loads(sys.argv[2])))
    sys.exit(main())
