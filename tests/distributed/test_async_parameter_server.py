"""The asynchronous parameter server (strategy "ps" with a staleness bound), between real
processes over real gRPC: the server holds the weights and the optimizer.

- one worker: every step's weights equal a single-worker run's (the server's optimizer on the flat
  buffer does what the trainer's does per tensor);
- two workers, one of them slowed down: the fast one is held back at the bound (the server never
  let a step through more than ``staleness`` steps ahead of the slowest), every gradient of both
  is applied once, and whoever took the last update holds the server's final weights.
"""

from __future__ import annotations

import json

import numpy
import pytest

import engine
from tests.distributed.conftest import logs_of, new_group, start_process, wait_all
from tests.distributed.rank_process import save_after_every_step, tiny_dataset, tiny_spec, train_config

pytestmark = pytest.mark.xdist_group("distributed")

ROWS, BATCH, EPOCHS = 67, 32, 2
STEPS = EPOCHS * 3
OPTIMIZER = {"name": "adam", "lr": 0.05}


def flat_weights(arrays: dict) -> numpy.ndarray:
    """The model's parameters in the reducer's order (sorted keys), flattened."""
    return numpy.concatenate([arrays[key].reshape(-1) for key in sorted(arrays) if key != "loss"])


def test_one_worker_with_the_asynchronous_server_trains_exactly_as_alone(redis_url, tmp_path):
    base = {"redis_url": redis_url, "group": new_group(), "world_size": 1, "strategy": "ps", "staleness": 0,
            "dtype": "float64", "rows": ROWS, "batch_size": BATCH, "epochs": EPOCHS, "optimizer": OPTIMIZER,
            "out": str(tmp_path), "timeout": 30}
    processes = [start_process({**base, "role": "train", "rank": 0}, log_dir=tmp_path),
                 start_process({**base, "role": "server"}, log_dir=tmp_path)]
    assert wait_all(processes, timeout=120, log_dir=tmp_path) == [0, 0], logs_of(tmp_path)

    trainer = engine.Trainer(tiny_spec(), tiny_dataset(ROWS), config=train_config(base))
    save_after_every_step(trainer, tmp_path, "single")
    trainer.run()
    for step in range(1, STEPS + 1):
        single = dict(numpy.load(tmp_path / f"single-step{step}.npz"))
        worker = dict(numpy.load(tmp_path / f"rank0-step{step}.npz"))
        for name, value in single.items():
            numpy.testing.assert_allclose(worker[name], value, rtol=1e-10, atol=1e-14, err_msg=f"{name}, step {step}")
    server = json.loads((tmp_path / "server.json").read_text())
    assert server["updates"] == STEPS and server["max_lead"] == 0


@pytest.mark.parametrize("staleness", [0, 2])
def test_two_workers_stay_within_the_staleness_bound(redis_url, tmp_path, staleness):
    epochs = 4
    base = {"redis_url": redis_url, "group": new_group(), "world_size": 2, "strategy": "ps", "staleness": staleness,
            "dtype": "float64", "rows": ROWS, "batch_size": BATCH, "epochs": epochs, "optimizer": OPTIMIZER,
            "out": str(tmp_path), "timeout": 30}
    processes = [start_process({**base, "role": "train", "rank": 0, "seconds_per_step": 0.05}, log_dir=tmp_path),
                 start_process({**base, "role": "train", "rank": 1}, log_dir=tmp_path),
                 start_process({**base, "role": "server"}, log_dir=tmp_path)]
    assert wait_all(processes, timeout=120, log_dir=tmp_path) == [0, 0, 0], logs_of(tmp_path)

    steps = epochs * 3
    server = json.loads((tmp_path / "server.json").read_text())
    assert server["max_lead"] <= staleness
    # rank 1's share of the 3-row last batches has 1 row and rank 0's 2: every step has data
    assert server["updates"] == 2 * steps
    final = numpy.load(tmp_path / "server-weights.npy")
    last = [flat_weights(dict(numpy.load(tmp_path / f"rank{rank}-step{steps}.npz"))) for rank in (0, 1)]
    assert any(numpy.array_equal(weights, final) for weights in last)
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == {"status": "succeeded", "steps": steps}
