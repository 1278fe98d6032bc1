"""The engine's threads (engine/parallel.py): the setting and where it comes from, how work is split
and combined, the ops' split paths checked numerically with the work forced into many pieces and
runs, and training that is bit-identical run to run with the same seed and thread count."""

from __future__ import annotations

import os
import sys

import numpy
import pytest
import threadpoolctl

import engine
from engine import parallel, testing, zoo
from engine.data import Dataset
from engine.ops import _windows, attention, conv, recurrent
from tests.engine.op_cases import Case, F
from tests.engine.op_cases_recurrent import RECURRENT_CASES
from tests.engine.op_cases_spatial import CASES as SPATIAL_CASES
from tests.engine.op_cases_spatial import Mask

SPLIT_OPS = {"conv2d", "conv1d", "max_pool2d", "avg_pool2d", "batch_norm", "relu", "tanh", "sigmoid", "dense",
             "multi_head_attention", "layer_norm"}
# Batches of several samples, so that two threads get pieces of several runs and chunks each.
LARGER_CASES = [
    Case("conv2d", (F((5, 3, 6, 6)),), {"filters": 4, "kernel_size": 3, "padding": 1}, name="batch5-same"),
    Case("conv2d", (F((5, 2, 7, 6)),), {"filters": 3, "kernel_size": 3, "stride": 2, "padding": 1},
         name="batch5-strided"),
    Case("conv2d", (F((4, 4, 5, 5)),), {"filters": 4, "kernel_size": 3, "padding": 3}, name="batch4-over-padded"),
    Case("conv2d", (F((5, 2, 6, 6)),), {"filters": 4, "kernel_size": [3, 2], "dilation": 2, "groups": 2,
                                        "padding": "same"}, name="batch5-dilated-groups"),
    Case("conv1d", (F((5, 2, 9)),), {"filters": 3, "kernel_size": 3, "padding": "same"}, name="batch5"),
    Case("conv2d", (F((5, 6, 5, 5)),), {"filters": 4, "kernel_size": 3, "padding": 1}, name="batch5-offsets"),
    Case("conv2d", (F((5, 8, 6, 6)),), {"filters": 4, "kernel_size": [3, 2], "dilation": 2, "groups": 2,
                                        "padding": "same"}, name="batch5-offsets-dilated-groups"),
    Case("conv2d", (F((5, 8, 5, 5)),), {"filters": 8, "kernel_size": 3, "padding": 1}, name="batch5-offset-products"),
    Case("conv2d", (F((5, 8, 7, 7)),), {"filters": 8, "kernel_size": 3, "stride": 2, "padding": "same"},
         name="batch5-offset-products-strided"),
    Case("conv2d", (F((5, 4, 6, 7)),), {"filters": 6, "kernel_size": 1, "stride": 2}, name="batch5-pointwise-strided"),
    Case("max_pool2d", (F((5, 2, 4, 4)),), {"kernel_size": 2}, name="batch5"),
    Case("max_pool2d", (F((5, 2, 5, 5)),), {"kernel_size": 3, "stride": 2, "padding": 1}, name="batch5-overlap"),
    Case("avg_pool2d", (F((5, 2, 4, 4)),), {"kernel_size": 2}, name="batch5"),
    Case("batch_norm", (F((5, 3, 2, 2)),), name="batch5-train", training=True),
    Case("batch_norm", (F((7, 3)),), name="batch7-features", training=True),
    Case("relu", (F((5, 3, 4), away_from_zero=True),), name="batch5"),
    Case("tanh", (F((5, 3, 4)),), name="batch5"),
    Case("sigmoid", (F((5, 3, 4)),), name="batch5"),
    Case("dense", (F((5, 4)),), {"units": 3}, name="batch5"),
    Case("dense", (F((5, 2, 4)),), {"units": 3}, name="batch5-rank3"),
    Case("layer_norm", (F((5, 3, 4)),), name="batch5"),
    Case("layer_norm", (F((5, 3, 4)),), {"axes": 2, "affine": False}, name="batch5-two-axes-no-affine"),
    Case("multi_head_attention", (F((5, 3, 4)), None, None, Mask((5, 1, 1, 3))), {"heads": 2, "causal": True},
         name="batch5-self-mask-causal", skip_grad=(3,)),
    Case("multi_head_attention", (F((5, 3, 4)), F((5, 4, 6)), None, None), {"heads": 2, "units": 3},
         name="batch5-value-is-key"),
    Case("multi_head_attention", (F((5, 3, 4)), None, F((5, 3, 2)), None), {"heads": 2},
         name="batch5-key-is-query"),
]
# Recurrent layers: every variant (directions, layers, lengths), their batch of 2 or 3 sequences split
# one or two to a piece.
THREADED_CASES = [case for case in SPATIAL_CASES if case.op in SPLIT_OPS] + LARGER_CASES + RECURRENT_CASES


@pytest.fixture
def finest_split(monkeypatch):
    """Two threads owned as in a convolutional net's training step (products split too), and every
    piece of work as small as it can be: one sample per run and chunk."""
    monkeypatch.setattr(conv, "CHUNK_VALUES", 1)
    monkeypatch.setattr(parallel, "RUN_VALUES", 1)
    with parallel.threads(2, grain=1), parallel.owned_cores():
        yield


def test_split_is_contiguous_even_and_respects_the_grain():
    with parallel.threads(3, grain=10):
        assert parallel.split(10) == [(0, 10)]  # 10 elements: one grain
        assert parallel.split(10, work=30) == [(0, 4), (4, 7), (7, 10)]
        assert parallel.split(10, work=25) == [(0, 5), (5, 10)]  # two pieces of grain 10 at most
        assert parallel.split(10, work=5) == [(0, 10)]
        assert parallel.split(2, work=1000) == [(0, 1), (1, 2)]  # never more pieces than rows
    with parallel.threads(1, grain=1):
        assert parallel.split(10) == [(0, 10)]


def test_a_head_start_gives_the_first_piece_more_and_still_covers_the_range():
    with parallel.threads(2, grain=10):
        assert parallel.split(100, work=1000) == [(0, 50), (50, 100)]
        assert parallel.split(100, work=1000, head_start=100) == [(0, 55), (55, 100)]  # 550 of 1000
        assert parallel.split(100, work=1000, head_start=10_000) == [(0, 99), (99, 100)]  # at most doubled, 1 left
        assert parallel.split(100, work=15, head_start=100) == [(0, 100)]  # one piece: nothing to give
    with parallel.threads(3, grain=10):
        pieces = parallel.split(90, work=900, head_start=90)
        assert pieces == [(0, 36), (36, 63), (63, 90)]  # 300 + 60, the other two 270 each
        assert pieces == parallel.split(90, work=900, head_start=90)  # never on timing


def test_run_writes_every_piece_and_map_reduce_combines_in_order():
    values = numpy.arange(1000, dtype=numpy.float64)
    out = numpy.empty_like(values)
    with parallel.threads(4, grain=1):
        parallel.run(len(values), lambda start, stop: numpy.multiply(values[start:stop], 2, out=out[start:stop]))
        order = parallel.map_reduce(len(values), lambda start, stop: [start], lambda a, b: a + b)
    numpy.testing.assert_array_equal(out, values * 2)
    assert order == [0, 250, 500, 750]


def test_an_error_in_a_piece_reaches_the_caller():
    def chunk(start, stop):
        if start:
            raise ValueError(f"piece at {start}")

    with parallel.threads(2, grain=1), pytest.raises(ValueError, match="piece at 5"):
        parallel.run(10, chunk)


def test_the_interpreter_switches_threads_often_while_the_pool_works_and_as_before_after():
    seen = []
    before = sys.getswitchinterval()
    with parallel.threads(2, grain=1):
        parallel.run(10, lambda start, stop: seen.append(sys.getswitchinterval()))
        with parallel.owned_cores():
            inside_a_step = sys.getswitchinterval()
    assert seen == pytest.approx([parallel.SWITCH_INTERVAL_SECONDS] * 2)
    assert inside_a_step == pytest.approx(parallel.SWITCH_INTERVAL_SECONDS)
    assert sys.getswitchinterval() == before


def test_the_setting_comes_from_the_environment_and_holds_blas_to_it(monkeypatch):
    monkeypatch.setenv("NETFORGE_THREADS", "3")
    assert parallel.default_threads() == 3
    monkeypatch.setenv("NETFORGE_THREADS", "many")
    with pytest.raises(ValueError, match="NETFORGE_THREADS"):
        parallel.default_threads()
    monkeypatch.delenv("NETFORGE_THREADS")
    assert parallel.default_threads() == len(os.sched_getaffinity(0))
    before = parallel.thread_count()
    with parallel.threads(2):
        assert parallel.thread_count() == 2
        assert {pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"} == {2}
    assert parallel.thread_count() == before
    with pytest.raises(ValueError, match="positive integer"):
        parallel.set_threads(0)


def test_trainer_refuses_a_bad_thread_count():
    dataset = Dataset({"x": numpy.zeros((4, 2, 8, 8), numpy.float32), "y": numpy.zeros(4, numpy.int64)},
                      "classification", num_classes=2)
    with pytest.raises(engine.EngineError, match="threads must be a positive integer"):
        engine.Trainer(_small_cnn(), dataset, threads=0)


@pytest.mark.parametrize("case", THREADED_CASES, ids=lambda c: c.id)
def test_split_paths_match_central_differences(case, finest_split):
    testing.check_gradients(case.op, case.params, case.make_inputs("float64"), training=case.training,
                            rtol=case.rtol, atol=case.atol)


@pytest.mark.parametrize("case", THREADED_CASES, ids=lambda c: c.id)
def test_split_paths_agree_with_one_thread(case, monkeypatch):
    """The same op on two threads in the finest pieces and on one thread in whole chunks (float32)."""
    inputs = case.make_inputs("float32")

    def outputs_and_grads():
        outputs, ctx, op, p, _ = testing.run_op(case.op, case.params, inputs, training=case.training, seed=3)
        cotangent = numpy.random.default_rng(1).normal(size=outputs[0].shape).astype(outputs[0].dtype)
        return [*outputs, *(g for g in op.backward(ctx, p, cotangent) if g is not None)]

    with parallel.threads(1):
        single = outputs_and_grads()
    with parallel.threads(2, grain=1), parallel.owned_cores():
        monkeypatch.setattr(conv, "CHUNK_VALUES", 1)
        monkeypatch.setattr(parallel, "RUN_VALUES", 1)
        split = outputs_and_grads()
    for expected, got in zip(single, split, strict=True):
        numpy.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)


def _small_cnn() -> dict:
    g = engine.GraphBuilder()
    x = g.input("x", [None, 2, 8, 8])
    h = g.relu(g.batch_norm(g.conv2d(x, filters=4, kernel_size=3, padding=1, use_bias=False)))
    h = g.add(h, g.tanh(g.conv2d(h, filters=4, kernel_size=3, padding="same")))
    h = g.avg_pool2d(g.max_pool2d(h, kernel_size=2), kernel_size=2)
    logits = g.dense(g.flatten(h), units=3)
    g.loss(g.softmax_cross_entropy(logits, g.input("y", [None], dtype="int64")))
    g.output("prediction", logits)
    return g.to_spec()


def _train(threads: int) -> dict:
    rng = numpy.random.default_rng(5)
    dataset = Dataset({"x": rng.normal(size=(48, 2, 8, 8)).astype(numpy.float32),
                       "y": rng.integers(0, 3, size=48)}, "classification", num_classes=3)
    trainer, _ = engine.fit(_small_cnn(), dataset, threads=threads, epochs=2, batch_size=16, seed=7,
                            validation_fraction=0.0)
    return trainer.model.state_arrays()


def test_training_is_bit_identical_run_to_run_with_the_same_threads(monkeypatch):
    monkeypatch.setattr(conv, "CHUNK_VALUES", 64)  # several chunks and pieces even for this small net
    with parallel.threads(parallel.thread_count(), grain=1):
        first, second = _train(threads=2), _train(threads=2)
    assert first.keys() == second.keys()
    for key in first:
        assert numpy.array_equal(first[key], second[key]), key


def _train_recurrent(op_name: str) -> dict:
    g = engine.GraphBuilder()
    h = g.node(op_name, g.input("x", [None, 5, 3]), units=6, return_sequences=True, bidirectional=True)
    logits = g.dense(g.node(op_name, h, units=4), units=3)
    g.loss(g.softmax_cross_entropy(logits, g.input("y", [None], dtype="int64")))
    g.output("prediction", logits)
    rng = numpy.random.default_rng(5)
    dataset = Dataset({"x": rng.normal(size=(48, 5, 3)).astype(numpy.float32), "y": rng.integers(0, 3, size=48)},
                      "classification", num_classes=3)
    trainer, _ = engine.fit(g.to_spec(), dataset, threads=2, epochs=2, batch_size=16, seed=7,
                            validation_fraction=0.0)
    return trainer.model.state_arrays()


@pytest.mark.parametrize("op_name", ["lstm", "gru"])
def test_recurrent_training_is_bit_identical_run_to_run_with_the_same_threads(op_name):
    with parallel.threads(parallel.thread_count(), grain=1):  # the batch split in pieces, products too
        first, second = _train_recurrent(op_name), _train_recurrent(op_name)
    assert first.keys() == second.keys()
    for key in first:
        assert numpy.array_equal(first[key], second[key]), key


@pytest.mark.parametrize("case", THREADED_CASES, ids=lambda c: c.id)
def test_the_cupy_path_with_numpy_standing_in(case, monkeypatch):
    """On CuPy arrays the ops take the whole batch in one piece and chunk (the GPU parallelizes it)
    and build window views with ``as_strided``: that path, run on NumPy arrays, still matches
    central differences (the CuPy run itself is tests/engine/test_ops.py::test_cupy_matches_numpy)."""
    not_numpy = object()  # the modules' "is this NumPy?" checks now say no
    for module in (conv, parallel, _windows, recurrent, attention):
        monkeypatch.setattr(module, "numpy", not_numpy)
    with parallel.threads(2, grain=1):
        testing.check_gradients(case.op, case.params, case.make_inputs("float64"), training=case.training,
                                rtol=case.rtol, atol=case.atol)


def test_fit_trains_on_the_threads_asked_for_and_restores_the_setting():
    rng = numpy.random.default_rng(2)
    dataset = Dataset({"x": rng.normal(size=(16, 2, 8, 8)).astype(numpy.float32), "y": rng.integers(0, 3, size=16)},
                      "classification", num_classes=3)
    seen = []
    with parallel.threads(1):
        engine.fit(_small_cnn(), dataset, threads=3, epochs=1, batch_size=8, validation_fraction=0.0,
                   callbacks={"batch_end": lambda payload: seen.append(parallel.thread_count())})
        assert parallel.thread_count() == 1
    assert seen == [3, 3]


def test_a_step_owns_the_cores_unless_an_op_relies_on_blas_threads(monkeypatch):
    """BLAS stays on one thread through a CNN's or a recurrent net's training step (the pool splits
    their products and scans), but a dense net keeps BLAS's threads."""
    def owns(spec):
        model = engine.Model(spec)
        return model._plan((model.loss_key,), True).owns_cores

    assert owns(_small_cnn()) and owns(zoo.load("small_resnet")) and owns(zoo.load("lstm_sequence_memory"))
    assert not owns(zoo.load("mlp"))
    blas_threads = parallel._blas_controllers()[0].get_num_threads
    seen = []
    forward = conv.Convolution.forward
    monkeypatch.setattr(conv.Convolution, "forward",
                        lambda self, *args: seen.append(blas_threads()) or forward(self, *args))
    cnn = engine.Model(_small_cnn())
    with parallel.threads(2):
        cnn.loss_and_grads({"x": numpy.zeros((4, 2, 8, 8), numpy.float32), "y": numpy.zeros(4, numpy.int64)})
        assert blas_threads() == 2  # given back after the step
    assert seen == [1, 1]
