"""The recurrent layers (rnn, lstm, gru) beyond the shared op table: their shape rules and parameter
errors, what ``lengths`` means (a padded batch gives what each sequence gives alone), and a whole
graph that feeds lengths and trains. Gradients are checked by the table (tests/engine/op_cases_recurrent.py)."""

from __future__ import annotations

import numpy
import pytest

import engine
from engine import testing
from engine.errors import ShapeError
from engine.graph import validate
from engine.initializers import initialize
from engine.registry import TensorType, get_op

N = None  # the unknown batch size
RECURRENT = ("rnn", "lstm", "gru")


def T(*shape, dtype="float32"):  # reads like a type in the table
    return TensorType(tuple(shape), dtype)


SHAPE_ERRORS = [
    ("rank-2-input", {"units": 4}, [T(N, 8)], "inputs.x", ["(N, T, features)", "(N, 8)", "rank 2"]),
    ("unknown-features", {"units": 4}, [T(N, 5, None)], "inputs.x", ["feature size", "(N, 5, N)"]),
    ("float-lengths", {"units": 4}, [T(N, 5, 3), T(N)], "inputs.lengths", ["integers", "float32"]),
    ("lengths-rank-2", {"units": 4}, [T(N, 5, 3), T(N, 1, dtype="int64")], "inputs.lengths", ["(N,)", "(N, 1)"]),
    ("lengths-batch-mismatch", {"units": 4}, [T(4, 5, 3), T(3, dtype="int64")], "inputs.lengths",
     ["(3,)", "(4, 5, 3)"]),
]


@pytest.mark.parametrize("op_name", RECURRENT)
@pytest.mark.parametrize("case", SHAPE_ERRORS, ids=lambda case: case[0])
def test_shape_rule_names_the_field_and_the_shapes(op_name, case):
    _, params, inputs, field, words = case
    op = get_op(op_name)
    p, errors = op.resolve(params)
    assert not errors
    with pytest.raises(ShapeError) as raised:
        op.infer(p, *inputs, *[None] * (2 - len(inputs)))
    assert raised.value.field == field
    for word in words:
        assert word in str(raised.value), f"{word!r} not in {str(raised.value)!r}"


@pytest.mark.parametrize(("op_name", "params", "field", "words"), [
    ("lstm", {"units": 0}, "params.units", [">= 1"]),
    ("gru", {"units": 4, "num_layers": 0}, "params.num_layers", [">= 1"]),
    ("rnn", {"units": 4, "activation": "sigmoid"}, "params.activation", ["'tanh'", "'relu'"]),
    ("lstm", {"units": 4, "recurrent_init": "identity"}, "params.recurrent_init", ["orthogonal"]),
    ("gru", {"units": 4, "activation": "relu"}, "params.activation", ["unknown parameter"]),
])
def test_parameter_schema_rejects_bad_values(op_name, params, field, words):
    _, errors = get_op(op_name).resolve(params)
    assert [f for f, _ in errors] == [field]
    for word in words:
        assert word in errors[0][1]


@pytest.mark.parametrize(("params", "shape"), [
    ({"units": 4}, (N, 4)),
    ({"units": 4, "return_sequences": True}, (N, 7, 4)),
    ({"units": 4, "bidirectional": True}, (N, 8)),
    ({"units": 4, "bidirectional": True, "return_sequences": True, "num_layers": 3}, (N, 7, 8)),
])
def test_shape_rule_and_weights(params, shape):
    op = get_op("gru")
    p, _ = op.resolve(params)
    assert op.infer(p, T(N, 7, 3), None).shape == shape
    weights = {w.name: w.shape for w in op.weights(p, T(N, 7, 3), None)}
    assert weights["kernel_l0"] == (3, 12) and weights["recurrent_kernel_l0"] == (4, 12)
    assert weights["bias_l0"] == (12,) and weights["recurrent_bias_l0"] == (12,)
    if params.get("num_layers", 1) > 1:
        width = 8 if params.get("bidirectional") else 4
        assert weights["kernel_l1"] == (width, 12)
    assert ("kernel_l0_reverse" in weights) == params.get("bidirectional", False)


def _run(op_name, params, x, lengths=None, weights=None):
    outputs, ctx, op, p, weights = testing.run_op(op_name, params, [x, lengths], weights)
    return outputs[0], ctx, op, p, weights


@pytest.mark.parametrize("op_name", RECURRENT)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_gives_what_each_sequence_gives_alone(op_name, bidirectional):
    rng = numpy.random.default_rng(0)
    lengths = numpy.array([5, 2, 4, 1])
    x = rng.normal(size=(4, 5, 3))
    params = {"units": 3, "bidirectional": bidirectional, "num_layers": 2, "return_sequences": True}
    last_params = {**params, "return_sequences": False}
    sequences, _, _, _, weights = _run(op_name, params, x, lengths)
    last, _, _, _, _ = _run(op_name, last_params, x, lengths, weights)
    for n, length in enumerate(lengths):
        alone, _, _, _, _ = _run(op_name, params, x[n:n + 1, :length], None, weights)
        numpy.testing.assert_allclose(sequences[n, :length], alone[0], atol=1e-12)
        numpy.testing.assert_array_equal(sequences[n, length:], 0.0)
        alone_last, _, _, _, _ = _run(op_name, last_params, x[n:n + 1, :length], None, weights)
        numpy.testing.assert_allclose(last[n], alone_last[0], atol=1e-12)


@pytest.mark.parametrize("op_name", RECURRENT)
def test_padding_values_change_nothing_and_get_no_gradient(op_name):
    rng = numpy.random.default_rng(1)
    lengths = numpy.array([2, 4])
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    params = {"units": 5, "bidirectional": True, "return_sequences": True}
    out, ctx, op, p, weights = _run(op_name, params, x, lengths)
    noisy = x.copy()
    noisy[0, 2:] = 100.0
    again, _, _, _, _ = _run(op_name, params, noisy, lengths, weights)
    numpy.testing.assert_array_equal(out, again)
    grads = op.backward(ctx, p, numpy.ones_like(out))
    assert grads[0].dtype == numpy.float32 and grads[1] is None
    numpy.testing.assert_array_equal(grads[0][0, 2:], 0.0)
    assert numpy.abs(grads[0][0, :2]).min() > 0


def test_overflowing_padding_does_not_leak_into_the_states():
    x = numpy.ones((2, 3, 2), dtype="float32")
    x[1, 1:] = 3e38  # a relu state overflows to inf on these padded steps
    params = {"units": 4, "activation": "relu", "return_sequences": True}
    with numpy.errstate(over="ignore"):
        out, _, _, _, weights = _run("rnn", params, x, numpy.array([3, 1]))
    alone, _, _, _, _ = _run("rnn", params, x[1:, :1], None, weights)
    numpy.testing.assert_array_equal(out[1, 1:], 0.0)
    numpy.testing.assert_allclose(out[1, 0], alone[0, 0])


def test_lengths_out_of_range_name_the_range():
    x = numpy.zeros((2, 4, 3))
    with pytest.raises(ValueError, match=r"\[0, 4\].*from 1 to 5"):
        _run("lstm", {"units": 2}, x, numpy.array([1, 5]))
    with pytest.raises(ValueError, match=r"shape \(2,\).*\(2, 4, 3\).*\(3,\)"):
        _run("gru", {"units": 2}, x, numpy.array([1, 2, 3]))


def test_large_inputs_saturate_the_gates_without_warnings():
    x = numpy.full((2, 3, 2), 1e4, dtype="float32")
    for op_name in RECURRENT:
        out, _, _, _, _ = _run(op_name, {"units": 3}, numpy.concatenate([x, -x]))
        assert numpy.isfinite(out).all()


def test_orthogonal_initializer_gives_orthonormal_rows_or_columns():
    rng = numpy.random.default_rng(0)
    wide = initialize("orthogonal", (8, 32), fan_in=8, fan_out=32, rng=rng, dtype="float64")
    numpy.testing.assert_allclose(wide @ wide.T, numpy.eye(8), atol=1e-12)
    tall = initialize({"name": "orthogonal", "gain": 2.0}, (32, 8), fan_in=32, fan_out=8, rng=rng, dtype="float64")
    numpy.testing.assert_allclose(tall.T @ tall, 4.0 * numpy.eye(8), atol=1e-12)


def test_graph_with_lengths_input_validates_trains_and_predicts():
    g = engine.GraphBuilder()
    x = g.input("x", [None, 6, 3])
    lengths = g.input("lengths", [None], dtype="int64")
    y = g.input("y", [None], dtype="int64")
    encoded = g.lstm(x, lengths, units=8, bidirectional=True, num_layers=2, id="encoder")
    logits = g.dense(encoded, units=2, id="logits")
    g.loss(g.softmax_cross_entropy(logits, y, id="loss"))
    g.output("prediction", logits)
    spec = g.to_spec()
    report = validate(spec)
    assert report.ok, report.errors
    assert report.nodes["encoder"]["outputs"]["out"] == {"shape": [None, 16], "dtype": "float32"}
    assert "recurrent_kernel_l1_reverse" in report.nodes["encoder"]["weights"]

    model = engine.Model(spec, seed=0)
    rng = numpy.random.default_rng(0)
    feeds = {"x": rng.normal(size=(5, 6, 3)), "lengths": numpy.array([6, 3, 1, 4, 6]), "y": rng.integers(0, 2, 5)}
    loss, _, grads = model.loss_and_grads(feeds)
    assert numpy.isfinite(loss)
    assert set(grads) == set(model.params)
    assert all(grad.dtype == numpy.float32 for grad in grads.values())
    recurrent = model.params["encoder/recurrent_kernel_l0"]
    numpy.testing.assert_allclose(recurrent @ recurrent.T, numpy.eye(8), atol=1e-5)  # orthogonal by default
    assert model.predict(feeds)["prediction"].shape == (5, 2)


def test_float_lengths_are_a_dtype_mismatch_on_the_node():
    spec = {"format": "netforge.graph/1",
            "inputs": {"x": {"shape": [None, 4, 2]}, "lengths": {"shape": [None]}},
            "nodes": [{"id": "rnn", "op": "rnn", "params": {"units": 3}, "inputs": {"x": "x", "lengths": "lengths"}}],
            "outputs": {"h": "rnn"}}
    errors = validate(spec, require_loss=False).errors
    assert [(e["node"], e["field"], e["code"]) for e in errors] == [("rnn", "inputs.lengths", "dtype_mismatch")]


@pytest.mark.parametrize("lengths", [None, numpy.array([5, 2, 4])], ids=["full", "padded"])
def test_lstm_fused_kernels_match_the_numpy_path(lengths, monkeypatch):
    """On NumPy float64 arrays the LSTM's gate arithmetic runs in numba kernels; the NumPy path
    (CuPy's, and NumPy's without numba) gives the same outputs and gradients up to rounding."""
    from engine.ops import _numba, recurrent  # noqa: PLC0415

    rng = numpy.random.default_rng(3)
    x = rng.normal(size=(3, 5, 4))
    params = {"units": 6, "bidirectional": True, "return_sequences": True}
    d_out = rng.normal(size=(3, 5, 12))
    results, weights = {}, None
    for fused in (True, False):
        monkeypatch.setattr(_numba, "ENABLED", fused)
        out, ctx, op, p, weights = _run("lstm", params, x, lengths, weights)
        grads = op.backward(ctx, p, d_out)
        results[fused] = [out, grads[0], *grads[2:]]
        assert all(value.dtype == numpy.float64 for value in results[fused])
    assert all(kernel.signatures for kernel in recurrent._compiled_kernels())  # they did run
    for with_kernels, without in zip(results[True], results[False], strict=True):
        numpy.testing.assert_allclose(with_kernels, without, rtol=1e-13, atol=1e-13)


def _outputs_and_grads(op_name, params, x, lengths, weights, d_out):
    out, ctx, op, p, weights = _run(op_name, params, x, lengths, weights)
    grads = op.backward(ctx, p, d_out)
    return [out, grads[0], *grads[2:]], weights


COMPILED_SCAN_CASES = {
    "last": {"units": 37},  # not a multiple of the vector width: the loops' remainders
    "sequences-bidirectional": {"units": 37, "bidirectional": True, "return_sequences": True},
    "two-layers-bidirectional-last": {"units": 20, "bidirectional": True, "num_layers": 2},
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("lengths", [None, numpy.array([7, 2, 5, 1, 7])], ids=["full", "padded"])
@pytest.mark.parametrize("case", list(COMPILED_SCAN_CASES), ids=str)
@pytest.mark.parametrize("op_name", ["lstm", "gru"])
def test_compiled_float32_scans_match_the_float64_path(op_name, case, lengths, threads, monkeypatch):
    """float32 LSTMs and GRUs on NumPy arrays scan in one compiled call per piece of the batch (engine/ops/_scans.py,
    its tanh a rational approximation within 4e-7): outputs and every gradient agree with the float64
    path (gradient-checked by the op table) and with float32 NumPy arithmetic, on one thread and split
    one sequence to a piece."""
    from engine import parallel  # noqa: PLC0415
    from engine.ops import _numba, _scans  # noqa: PLC0415

    rng = numpy.random.default_rng(4)
    params = COMPILED_SCAN_CASES[case]
    x = rng.normal(size=(5, 7, 6))
    directions = 2 if params.get("bidirectional") else 1
    features = params["units"] * directions
    d_out = rng.normal(size=(5, 7, features) if params.get("return_sequences") else (5, features))
    reference, weights = _outputs_and_grads(op_name, params, x, lengths, None, d_out)
    weights32 = [w.astype(numpy.float32) for w in weights]
    with parallel.threads(threads, grain=1), parallel.owned_cores():
        compiled, _ = _outputs_and_grads(op_name, params, x.astype(numpy.float32), lengths, weights32,
                                         d_out.astype(numpy.float32))
        monkeypatch.setattr(_numba, "ENABLED", False)
        plain, _ = _outputs_and_grads(op_name, params, x.astype(numpy.float32), lengths, weights32,
                                      d_out.astype(numpy.float32))
    scans = _scans.kernels()[:2] if op_name == "lstm" else _scans.kernels()[2:]
    assert all(kernel.signatures for kernel in scans)  # the compiled scans did run
    for got, numpy32, expected in zip(compiled, plain, reference, strict=True):
        assert got.dtype == numpy.float32
        scale = max(1.0, float(numpy.abs(expected).max()))
        numpy.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * scale)
        numpy.testing.assert_allclose(got, numpy32, rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize("op_name", ["lstm", "gru"])
def test_compiled_float32_scans_match_central_differences(op_name):
    """The float32 compiled scans' gradients (LSTM, GRU) against central differences of the same float32 forward
    pass, along a random direction of the input and of every weight: steps of 8e-3 and 4e-3, large
    enough for float32 rounding to stay far below the differences, combined (Richardson) so that the
    step's own error of order step^2 cancels."""
    rng = numpy.random.default_rng(6)
    params = {"units": 19, "bidirectional": True, "return_sequences": True}
    x = rng.normal(size=(4, 6, 5)).astype(numpy.float32)
    lengths = numpy.array([6, 3, 5, 6])
    d_out = rng.normal(size=(4, 6, 38)).astype(numpy.float32)
    out, ctx, op, p, weights = _run(op_name, params, x, lengths)
    weights = [w.astype(numpy.float32) for w in weights]
    out, ctx, op, p, weights = _run(op_name, params, x, lengths, weights)
    grads = op.backward(ctx, p, d_out)
    values = [x, *weights]
    analytic = [grads[0], *grads[2:]]
    directions = [rng.normal(size=v.shape).astype(numpy.float32) for v in values]

    def objective(step):
        moved = [(v.astype(numpy.float64) + step * d).astype(numpy.float32) for v, d in zip(values, directions)]
        result, *_ = _run(op_name, params, moved[0], lengths, moved[1:])
        return float(numpy.sum(result.astype(numpy.float64) * d_out))

    def difference(step):
        return (objective(step) - objective(-step)) / (2 * step)

    numeric = (4 * difference(4e-3) - difference(8e-3)) / 3
    predicted = sum(float(numpy.sum(g.astype(numpy.float64) * d)) for g, d in zip(analytic, directions))
    assert abs(numeric - predicted) <= 1e-3 * max(1.0, abs(predicted)), (numeric, predicted)


@pytest.mark.parametrize("op_name", ["lstm", "gru"])
def test_compiled_float32_scan_keeps_nan_where_the_numpy_path_does(op_name, monkeypatch):
    """A NaN in one sequence makes that sequence's states NaN from its step on, and no other's, as on
    the NumPy path: the compiled tanh and its clamp let NaN through."""
    from engine.ops import _numba  # noqa: PLC0415

    rng = numpy.random.default_rng(7)
    x = rng.normal(size=(3, 5, 4)).astype(numpy.float32)
    x[1, 2, 0] = numpy.nan
    params = {"units": 17, "return_sequences": True}
    out, _, _, _, weights = _run(op_name, params, x)
    monkeypatch.setattr(_numba, "ENABLED", False)
    plain, _, _, _, _ = _run(op_name, params, x, None, weights)
    numpy.testing.assert_array_equal(numpy.isnan(out), numpy.isnan(plain))
    assert numpy.isnan(out[1, 2:]).all() and not numpy.isnan(out[1, :2]).any()
    assert numpy.isfinite(out[[0, 2]]).all()
