"""Data-parallel training equals single-worker training of the same global batch.

Real processes (one per rank, and the parameter server), all-reduce through shared memory (the
workers being on one machine) and over real gRPC channels on loopback (forced, as between
machines), a real Redis for the rendezvous. After every one of 6 steps each worker's weights equal those of one
``engine.Trainer`` on the whole global batch (rtol 1e-6 in float64, 1e-5 in float32), and all
workers' weights are identical, bit for bit. In float32 the comparison is element-wise with rtol
1e-5 plus an absolute slack of 1e-5 times the tensor's largest magnitude: a bias that an update
moved back across zero holds a few ulps of its updates' size, which no summation order can keep
within 1e-5 of itself (float64 needs no slack). 67 rows at batch size 32 make the last batch of
each epoch 3 rows: with 4 workers, one of them has an empty share of it, and the others one row.
"""

from __future__ import annotations

import json

import numpy
import pytest

import engine
from tests.distributed.conftest import logs_of, new_group, start_process, wait_all
from tests.distributed.rank_process import save_after_every_step, tiny_dataset, tiny_spec, train_config

pytestmark = pytest.mark.xdist_group("distributed")

ROWS, BATCH, EPOCHS = 67, 32, 2  # 3 steps an epoch: 32, 32 and 3 rows
STEPS = EPOCHS * 3
TOLERANCE = {"float64": 1e-6, "float32": 1e-5}
OPTIMIZER = {"name": "adam", "lr": 0.05}


def single_worker_weights(config: dict, out) -> list[dict]:
    trainer = engine.Trainer(tiny_spec(), tiny_dataset(ROWS), config=train_config(config))
    save_after_every_step(trainer, out, "single")
    trainer.run()
    return [dict(numpy.load(out / f"single-step{step}.npz")) for step in range(1, STEPS + 1)]


@pytest.mark.parametrize(("strategy", "transport", "bucket_bytes"), [
    ("allreduce", "auto", None), ("allreduce", "auto", 1), ("allreduce", "grpc", 1), ("ps", "grpc", None)])
@pytest.mark.parametrize("world_size", [2, 4])
def test_distributed_weights_equal_single_worker_weights_after_every_step(redis_url, tmp_path, strategy, transport,
                                                                          bucket_bytes, world_size):
    """``bucket_bytes`` 1: every parameter is a bucket of its own, all-reduced while backward goes on."""
    for dtype in ("float64", "float32"):
        out = tmp_path / dtype
        out.mkdir()
        group = new_group()
        base = {"redis_url": redis_url, "group": group, "world_size": world_size, "strategy": strategy,
                "dtype": dtype, "rows": ROWS, "batch_size": BATCH, "epochs": EPOCHS, "optimizer": OPTIMIZER,
                "out": str(out), "timeout": 30, "transport": transport,
                **({"bucket_bytes": bucket_bytes} if bucket_bytes else {})}
        processes = [start_process({**base, "role": "train", "rank": rank}, log_dir=out) for rank in range(world_size)]
        if strategy == "ps":
            processes.append(start_process({**base, "role": "server"}, log_dir=out))
        codes = wait_all(processes, timeout=120, log_dir=out)
        assert codes == [0] * len(processes), logs_of(out)

        expected = single_worker_weights(base, out)
        for rank in range(world_size):
            assert json.loads((out / f"rank{rank}.json").read_text()) == {"status": "succeeded", "steps": STEPS}
        for step in range(1, STEPS + 1):
            workers = [dict(numpy.load(out / f"rank{rank}-step{step}.npz")) for rank in range(world_size)]
            for name, single in expected[step - 1].items():
                for rank, weights in enumerate(workers):
                    assert name == "loss" or weights[name].dtype == numpy.dtype(dtype)
                    slack = 0.0 if dtype == "float64" else TOLERANCE[dtype] * float(numpy.abs(single).max())
                    numpy.testing.assert_allclose(weights[name], single, rtol=TOLERANCE[dtype], atol=slack,
                                                  err_msg=f"{name} of rank {rank} after step {step} ({dtype})")
                    # identical on every worker, to the bit
                    assert weights[name].tobytes() == workers[0][name].tobytes(), (name, rank, step, dtype)
        # the reported loss is the global batch's, on every worker
        numpy.testing.assert_allclose(workers[1]["loss"], expected[-1]["loss"], rtol=TOLERANCE[dtype])
        if strategy == "ps":
            gradient_bytes = sum(v.size for k, v in expected[0].items() if k != "loss") * numpy.dtype(dtype).itemsize
            sent = json.loads((out / "server.json").read_text())["bytes_sent"]
            assert sent == STEPS * world_size * (gradient_bytes + 2 * numpy.dtype(dtype).itemsize)
