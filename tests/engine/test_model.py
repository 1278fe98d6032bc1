"""Compiled graphs: whole-graph gradients, shared values, stopped gradients, feeding errors,
float64 on request, and prediction in batches."""

from __future__ import annotations

import threading

import numpy
import pytest

import engine
from engine.errors import BackendError, EngineError
from engine.graph import GraphBuilder
from engine.optimizers import make_optimizer


def diamond_spec() -> dict:
    """x -> fc -> (tanh, sigmoid) -> multiply -> add(fc) -> dense -> mse: a value used three times."""
    g = GraphBuilder()
    x = g.input("x", [None, 4])
    y = g.input("y", [None, 2])
    h = g.dense(x, units=3, id="fc")
    mixed = g.multiply(g.tanh(h, id="t"), g.sigmoid(h, id="s"), id="mixed")
    skip = g.add(mixed, h, id="skip")
    out = g.dense(skip, units=2, id="out")
    g.loss(g.mse(out, y, id="loss"))
    g.output("prediction", out)
    return g.to_spec()


def numeric_param_grads(model, feeds, eps=1e-6):
    grads = {}
    for key, param in model.params.items():
        numeric = numpy.zeros_like(param)
        flat = param.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus, _, _ = model.loss_and_grads(feeds)
            flat[i] = original - eps
            minus, _, _ = model.loss_and_grads(feeds)
            flat[i] = original
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        grads[key] = numeric
    return grads


def test_whole_graph_gradients_match_central_differences_in_float64():
    model = engine.Model(diamond_spec(), dtype="float64", seed=4)
    rng = numpy.random.default_rng(0)
    feeds = {"x": rng.normal(size=(5, 4)), "y": rng.normal(size=(5, 2))}
    _, _, grads = model.loss_and_grads(feeds)
    expected = numeric_param_grads(model, feeds)
    assert set(grads) == set(expected) == {"fc/W", "fc/b", "out/W", "out/b"}
    for key in expected:
        numpy.testing.assert_allclose(grads[key], expected[key], rtol=1e-5, atol=1e-8, err_msg=key)


def test_float32_stays_float32():
    model = engine.Model(diamond_spec())
    feeds = {"x": numpy.ones((3, 4)), "y": numpy.zeros((3, 2))}  # float64 data is converted
    _, values, grads = model.loss_and_grads(feeds, value_keys=("out",))
    assert values["out"].dtype == numpy.float32
    assert all(g.dtype == numpy.float32 for g in grads.values())


def test_gradient_stops_at_non_differentiable_ops():
    g = GraphBuilder()
    x = g.input("x", [None, 3])
    y = g.input("y", [None, 3])
    first = g.dense(x, units=3, id="first")
    gate = g.step(first, id="gate")  # no gradient flows back through step
    out = g.dense(g.multiply(gate, x, id="gated"), units=3, id="second")
    g.loss(g.mse(out, y, id="loss"))
    g.output("prediction", out)
    model = engine.Model(g.to_spec())
    _, _, grads = model.loss_and_grads({"x": numpy.ones((2, 3)), "y": numpy.zeros((2, 3))})
    assert set(grads) == {"second/W", "second/b"}


def test_same_seed_same_weights_other_seed_other_weights():
    a = engine.Model(diamond_spec(), seed=1).state_arrays()
    b = engine.Model(diamond_spec(), seed=1).state_arrays()
    c = engine.Model(diamond_spec(), seed=2).state_arrays()
    assert all(numpy.array_equal(a[k], b[k]) for k in a)
    assert not numpy.array_equal(a["fc/W"], c["fc/W"])


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"x": numpy.ones((2, 5)), "y": numpy.ones((2, 2))}, "graph input 'x' expects shape (N, 4) but was fed (2, 5)"),
        ({"y": numpy.ones((2, 2))}, "missing value for graph input 'x'"),
    ],
)
def test_feeding_errors_name_the_input(feeds, message):
    model = engine.Model(diamond_spec())
    with pytest.raises(EngineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.loss_and_grads(feeds)


def test_predict_runs_in_batches_and_needs_no_labels():
    model = engine.Model(diamond_spec())
    x = numpy.random.default_rng(0).normal(size=(10, 4))
    whole = model.predict({"x": x}, batch_size=100)["prediction"]
    pieces = model.predict({"x": x}, batch_size=3)["prediction"]
    assert whole.shape == (10, 2)
    numpy.testing.assert_allclose(pieces, whole, rtol=1e-6)


def test_integer_input_fed_with_fractions_is_refused():
    g = GraphBuilder()
    ids = g.input("ids", [None, 2], dtype="int64")
    y = g.input("y", [None], dtype="int64")
    logits = g.dense(g.flatten(g.embedding(ids, vocab_size=5, dim=3, id="emb"), id="flat"), units=2, id="logits")
    g.loss(g.softmax_cross_entropy(logits, y, id="loss"))
    g.output("prediction", logits)
    model = engine.Model(g.to_spec())
    with pytest.raises(EngineError, match="'ids' is int64 but was fed non-integer"):
        model.predict({"ids": numpy.array([[0.5, 1.0]])})


def test_gpu_without_cupy_is_a_clear_error():
    if engine.backend.gpu_available():
        pytest.skip("this machine has a usable GPU, so the error cannot occur")
    with pytest.raises(BackendError, match="CuPy"):
        engine.Model(diamond_spec(), device="gpu")


def batch_norm_spec() -> dict:
    g = GraphBuilder()
    x = g.input("x", [None, 3])
    y = g.input("y", [None, 1])
    out = g.dense(g.batch_norm(x, momentum=0.5, id="bn"), units=1, id="out")
    g.loss(g.mse(out, y, id="loss"))
    g.output("prediction", out)
    return g.to_spec()


def test_batch_norm_running_statistics_are_buffers():
    """Buffers update in training steps, are used in eval, are never optimized, and save with the weights."""
    model = engine.Model(batch_norm_spec(), dtype="float64")
    assert set(model.buffers) == {"bn/running_mean", "bn/running_var"}
    assert "bn/running_mean" not in model.params
    x = numpy.random.default_rng(0).normal(5.0, 2.0, size=(64, 3))
    feeds = {"x": x, "y": numpy.zeros((64, 1))}
    _, _, grads = model.loss_and_grads(feeds)
    assert not set(grads) & set(model.buffers)
    make_optimizer({"name": "adam", "lr": 0.1}).step(model.params, grads)
    numpy.testing.assert_allclose(model.buffers["bn/running_mean"], 0.5 * x.mean(axis=0))
    numpy.testing.assert_allclose(model.buffers["bn/running_var"], 0.5 + 0.5 * x.var(axis=0, ddof=1))
    before = {k: v.copy() for k, v in model.buffers.items()}
    model.forward(feeds)  # eval: running statistics are read, not updated
    assert all(numpy.array_equal(before[k], model.buffers[k]) for k in before)
    clone = engine.Model(batch_norm_spec(), dtype="float64", seed=5)
    clone.load_state_arrays(model.state_arrays())
    numpy.testing.assert_array_equal(clone.forward(feeds)["prediction"], model.forward(feeds)["prediction"])


def conv_spec() -> dict:
    """Two convolutions (the second strided) and a pooling: the ops that reuse work arrays."""
    g = GraphBuilder()
    x = g.input("x", [None, 2, 9, 9])
    y = g.input("y", [None], dtype="int64")
    h = g.relu(g.conv2d(x, filters=3, kernel_size=3, padding=1, id="conv1"), id="relu1")
    h = g.conv2d(g.max_pool2d(h, kernel_size=2, id="pool"), filters=4, kernel_size=2, stride=2, id="conv2")
    logits = g.dense(g.flatten(h, id="flat"), units=3, id="logits")
    g.loss(g.softmax_cross_entropy(logits, y, id="loss"))
    g.output("prediction", logits)
    return g.to_spec()


def conv_batches():
    rng = numpy.random.default_rng(3)
    return [{"x": rng.normal(size=(size, 2, 9, 9)), "y": rng.integers(0, 3, size=size)} for size in (6, 4, 7, 6)]


def fresh_gradients(feeds) -> tuple[float, dict]:
    loss, _, grads = engine.Model(conv_spec(), dtype="float64", seed=2).loss_and_grads(feeds)
    return loss, grads


def test_training_steps_reuse_work_arrays_without_mixing_steps():
    """A model that has trained on other batches (smaller, then larger) gives every batch the same
    loss and gradients as a model that never ran: reused work arrays carry nothing over."""
    model = engine.Model(conv_spec(), dtype="float64", seed=2)
    for feeds in conv_batches():
        loss, _, grads = model.loss_and_grads(feeds)
        expected_loss, expected = fresh_gradients(feeds)
        assert loss == pytest.approx(expected_loss, rel=1e-12)
        for key in expected:
            numpy.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-12, err_msg=key)
    # A returned gradient is the caller's: the next step does not write over it.
    _, _, first = model.loss_and_grads(conv_batches()[0])
    kept = {key: value.copy() for key, value in first.items()}
    model.loss_and_grads(conv_batches()[1])
    for key in kept:
        numpy.testing.assert_array_equal(first[key], kept[key], err_msg=key)


def test_threads_training_one_model_do_not_share_work_arrays():
    model = engine.Model(conv_spec(), dtype="float64", seed=2)
    batches = conv_batches()
    expected = [fresh_gradients(feeds)[1] for feeds in batches]
    failures = []
    start = threading.Barrier(len(batches))

    def train(index):
        start.wait()
        for _ in range(20):
            _, _, grads = model.loss_and_grads(batches[index])
            for key, value in expected[index].items():
                if not numpy.allclose(grads[key], value, rtol=1e-10, atol=1e-12):
                    failures.append((index, key))
                    return

    threads = [threading.Thread(target=train, args=(index,)) for index in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


def test_every_weight_is_c_ordered_whatever_its_initializer_gave():
    """The orthogonal initializer gives Fortran order; the products and Adam's one-pass kernel expect
    C order (Adam fell back to ten NumPy passes on an LSTM's recurrent kernel, 5x slower)."""
    g = GraphBuilder()
    h = g.lstm(g.input("x", [None, 5, 3]), units=8, id="lstm")
    g.loss(g.softmax_cross_entropy(g.dense(h, units=4, id="head"), g.input("y", [None], dtype="int64"), id="loss"))
    model = engine.Model(g.to_spec())
    assert model.params["lstm/recurrent_kernel_l0"].flags.c_contiguous
    assert all(array.flags.c_contiguous for array in {**model.params, **model.buffers}.values())
