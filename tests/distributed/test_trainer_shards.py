"""The engine's data-parallel hook on its own (no processes): ``Trainer(shard=..., reduce_gradients=...)``.

Workers are simulated in one process by running one trainer per rank in lock-step threads whose
reducer adds the share-weighted gradients at a barrier (the sum a collective would compute).
"""

from __future__ import annotations

import threading

import numpy
import pytest

import engine
from engine.errors import EngineError
from tests.distributed.rank_process import tiny_dataset, tiny_spec, train_config

CONFIG = {"rows": 67, "batch_size": 32, "epochs": 2, "optimizer": {"name": "momentum", "lr": 0.1}, "dtype": "float64"}


class ThreadAllReduce:
    """Sums each step's contributions of ``world_size`` threads, in rank order."""

    def __init__(self, world_size: int):
        self.world_size = world_size
        self.barrier = threading.Barrier(world_size)
        self.contributions: dict[int, tuple[dict, float]] = {}
        self.shares: list[list[int]] = []

    def reducer(self, rank: int):
        def reduce(grads, loss, rows, batch_rows):
            share = rows / batch_rows
            self.contributions[rank] = ({k: v * share for k, v in grads.items()}, loss * share, rows)
            self.barrier.wait()
            total_grads = {key: sum(self.contributions[r][0][key] for r in range(self.world_size))
                           for key in grads}
            total_loss = sum(self.contributions[r][1] for r in range(self.world_size))
            if rank == 0:
                self.shares.append([self.contributions[r][2] for r in range(self.world_size)])
            self.barrier.wait()
            return total_grads, total_loss
        return reduce


def test_sharded_trainers_with_a_summing_reducer_match_one_trainer_and_take_empty_shares():
    single = engine.Trainer(tiny_spec(), tiny_dataset(CONFIG["rows"]), config=train_config(CONFIG))
    single.run()
    world_size = 4
    collective = ThreadAllReduce(world_size)
    trainers = [engine.Trainer(tiny_spec(), tiny_dataset(CONFIG["rows"]), config=train_config(CONFIG),
                               shard=(rank, world_size), reduce_gradients=collective.reducer(rank))
                for rank in range(world_size)]
    threads = [threading.Thread(target=trainer.run) for trainer in trainers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # 67 rows at 32 a batch: 32, 32, 3 rows; the last batch leaves rank 3 an empty share
    assert collective.shares == [[8, 8, 8, 8], [8, 8, 8, 8], [1, 1, 1, 0]] * 2
    for trainer in trainers:
        assert trainer.step == single.step == 6
        for key, value in single.model.state_arrays().items():
            numpy.testing.assert_allclose(trainer.model.state_arrays()[key], value, rtol=1e-12, atol=1e-15)
        assert trainer.history[-1]["loss"] == pytest.approx(single.history[-1]["loss"], rel=1e-12)


@pytest.mark.parametrize("shard", [(2, 2), (-1, 2), (0, 0), ("0", 1)])
def test_a_shard_outside_its_world_is_an_error_naming_it(shard):
    with pytest.raises(EngineError, match="shard must be \\(rank, world_size\\)"):
        engine.Trainer(tiny_spec(), tiny_dataset(10), config=train_config(CONFIG), shard=shard)


def test_backward_hands_each_gradient_over_once_as_soon_as_it_is_finished_in_gradient_order():
    model = engine.compile(tiny_spec(), dtype="float64")
    batch = dict(zip(("x", "y"), (tiny_dataset(16).arrays[name] for name in ("x", "y")), strict=True))
    handed = []
    loss, _, grads = model.loss_and_grads(batch, on_gradient=lambda key, grad: handed.append((key, grad.copy())))
    order = model.gradient_order()
    assert order == ["logits/W", "logits/b", "fc1/W", "fc1/b"]  # the layer nearest the loss first
    assert [key for key, _ in handed] == order and sorted(order) == sorted(grads)
    for key, grad in handed:
        numpy.testing.assert_array_equal(grad, grads[key])


def test_a_dense_layer_hands_its_weight_gradients_over_before_it_computes_its_input_gradient(monkeypatch):
    """So that a data-parallel worker all-reduces them while the input gradient, a product as large,
    is computed (the hidden layer's kernel of the distributed bench's 3M-parameter MLP is 11.6 MB)."""
    from engine.ops import linalg  # noqa: PLC0415

    model = engine.compile(tiny_spec(), dtype="float64")
    batch = dict(zip(("x", "y"), (tiny_dataset(16).arrays[name] for name in ("x", "y")), strict=True))
    events = []
    product = linalg.rows_product

    def logged_product(a, b, bias=None):
        events.append(("product", a.shape, b.shape))
        return product(a, b, bias)

    monkeypatch.setattr(linalg, "rows_product", logged_product)
    model.loss_and_grads(batch, on_gradient=lambda key, grad: events.append(("handed", key)))
    hidden, classes = model.params["logits/W"].shape
    weight_gradient = events.index(("product", (hidden, 16), (16, classes)))  # h^T @ g: the first in backward
    after = events[weight_gradient + 1:]
    input_gradient = after.index(("product", (16, classes), (classes, hidden)))  # g @ W^T
    assert ("handed", "logits/W") in after[:input_gradient], events
    assert ("handed", "logits/b") in after[:input_gradient], events


class RecordingCollective:
    """A group of one worker (the sum is the buffer itself) that records what it was given to reduce."""

    def __init__(self):
        self.calls: list[tuple[int, str]] = []

    def all_reduce(self, part):
        self.calls.append((len(part), threading.current_thread().name))
        return part


def test_a_bucketed_reducer_sends_every_bucket_once_in_order_and_trains_as_one_buffer_does():
    from workers.distributed.reducer import GradientReducer  # noqa: PLC0415 - the engine's tests import no worker

    results = {}
    for name, options in (("one buffer", {"bucket_bytes": 1 << 30}), ("per parameter", {"bucket_bytes": 1})):
        trainer = engine.Trainer(tiny_spec(), tiny_dataset(CONFIG["rows"]), config=train_config(CONFIG),
                                 shard=(0, 1))
        collective = RecordingCollective()
        reducer = GradientReducer(collective, trainer.model.params, on_stop=trainer.cancel,
                                  order=trainer.model.gradient_order(), **options)
        trainer.reduce_gradients = reducer
        trainer.run()
        reducer.close()
        results[name] = (trainer.model.state_arrays(), collective.calls, reducer)
    weights, calls, reducer = results["one buffer"]
    assert not reducer.overlap and calls == [(reducer.gradient_elements + 2, "MainThread")] * 6
    bucketed_weights, bucketed_calls, bucketed = results["per parameter"]
    sizes = [stop - start for start, stop in bucketed.buckets]
    assert bucketed.overlap and len(sizes) == 4 and sizes[-1] == 8 * 1 + 2  # fc1's bias, the loss and the flag
    assert [size for size, _ in bucketed_calls] == sizes * 6
    assert all(thread.startswith("bucket") for _, thread in bucketed_calls)
    for key, value in weights.items():
        numpy.testing.assert_array_equal(bucketed_weights[key], value)
