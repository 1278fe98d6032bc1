"""Validation in a synchronous data-parallel group, between real processes: only rank 0 evaluates
the validation set (the others hold the same weights and would repeat it), and under early
stopping every worker stops after the epoch that rank 0 decides, told by a one-element all-reduce
(ring or parameter server) at the end of each epoch."""

from __future__ import annotations

import json

import pytest

import engine
from tests.distributed.conftest import logs_of, new_group, start_process, wait_all
from tests.distributed.rank_process import tiny_dataset, tiny_spec, train_config

pytestmark = pytest.mark.xdist_group("distributed")

ROWS, BATCH, WORLD_SIZE = 67, 16, 2
# Validation loss must improve by 1.0 to count: the first epoch stays the best, and the run stops
# after the third of its ten (patience 2), far from any tie that rounding could tip.
CONFIG = {"rows": ROWS, "batch_size": BATCH, "epochs": 10, "optimizer": {"name": "adam", "lr": 0.05},
          "dtype": "float64", "validation_fraction": 0.25,
          "early_stopping": {"monitor": "val_loss", "patience": 2, "min_delta": 1.0}}


@pytest.mark.parametrize("strategy", ["allreduce", "ps"])
def test_only_rank_zero_validates_and_every_worker_stops_after_the_epoch_it_decides(redis_url, tmp_path, strategy):
    expected = engine.Trainer(tiny_spec(), tiny_dataset(ROWS), config=train_config(CONFIG)).run()
    assert (expected.status, expected.epochs_completed) == ("stopped_early", 3)

    base = {**CONFIG, "redis_url": redis_url, "group": new_group(), "world_size": WORLD_SIZE, "strategy": strategy,
            "out": str(tmp_path), "timeout": 30}
    processes = [start_process({**base, "role": "train", "rank": rank}, log_dir=tmp_path) for rank in range(WORLD_SIZE)]
    if strategy == "ps":
        processes.append(start_process({**base, "role": "server"}, log_dir=tmp_path))
    assert wait_all(processes, timeout=120, log_dir=tmp_path) == [0] * len(processes), logs_of(tmp_path)

    for rank in range(WORLD_SIZE):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result == {"status": "stopped_early", "steps": expected.steps}, (rank, result)
        history = json.loads((tmp_path / f"rank{rank}-history.json").read_text())
        assert [record["epoch"] for record in history] == [1, 2, 3]
        assert all(("val_loss" in record) == (rank == 0) for record in history), (rank, history)
    history = json.loads((tmp_path / "rank0-history.json").read_text())
    for record, single in zip(history, expected.history, strict=True):
        assert record["val_loss"] == pytest.approx(single["val_loss"], rel=1e-6)
