"""sequence_mask: the mask of each form, its errors, and a graph where lengths -> sequence_mask ->
attention hides the padded keys, so that whatever padding holds, valid queries see the same."""

from __future__ import annotations

import numpy
import pytest

import engine
from engine import testing
from engine.errors import ShapeError
from engine.graph import GraphBuilder, validate
from engine.registry import TensorType, get_op

STEPS, FEATURES = 5, 4
LENGTHS = numpy.array([5, 2, 3, 0])


@pytest.mark.parametrize(("form", "shape"), [
    ("sequence", (4, STEPS)), ("attention", (4, 1, 1, STEPS)), ("attention_single_head", (4, 1, STEPS))])
def test_mask_is_one_at_valid_steps_in_each_form(form, shape):
    (mask,), *_ = testing.run_op("sequence_mask", {"steps": STEPS, "form": form}, [LENGTHS])
    assert mask.shape == shape and mask.dtype == numpy.float32
    numpy.testing.assert_array_equal(mask.reshape(4, STEPS), [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0],
                                                              [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])


def test_lengths_past_the_steps_are_refused_at_run_time():
    with pytest.raises(ValueError, match=r"\[0, 5\].*from 0 to 6"):
        testing.run_op("sequence_mask", {"steps": STEPS}, [numpy.array([0, 6])])


@pytest.mark.parametrize(("lengths", "words"), [
    (TensorType((None,), "float32"), ["integers", "float32"]),
    (TensorType((None, 1), "int64"), ["(N,)", "(N, 1)"]),
])
def test_shape_rule_refuses_bad_lengths(lengths, words):
    op = get_op("sequence_mask")
    p, _ = op.resolve({"steps": 3})
    with pytest.raises(ShapeError) as raised:
        op.infer(p, lengths)
    assert raised.value.field == "inputs.lengths"
    assert all(word in str(raised.value) for word in words)


def masked_attention_spec(op_name: str, form: str, masked: bool = True, batch: int | None = None) -> dict:
    g = GraphBuilder()
    x = g.input("x", [batch, STEPS, FEATURES])
    lengths = g.input("lengths", [batch], dtype="int64")
    mask = g.sequence_mask(lengths, steps=STEPS, form=form, id="mask") if masked else None
    if op_name == "multi_head_attention":
        attended = g.multi_head_attention(x, None, None, mask, heads=2, id="attention")
    else:
        attended = g.scaled_dot_product_attention(x, x, x, mask, id="attention")
    g.loss(g.mean(attended, id="loss"))
    g.output("attended", attended)
    return g.to_spec()


@pytest.mark.parametrize(("op_name", "form"), [
    ("multi_head_attention", "attention"), ("scaled_dot_product_attention", "attention_single_head")])
def test_attention_with_a_sequence_mask_ignores_what_padding_holds(op_name, form):
    report = validate(masked_attention_spec(op_name, form))
    assert report.ok, report.errors
    assert report.nodes["mask"]["outputs"]["out"]["shape"][-1] == STEPS
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(4, STEPS, FEATURES))
    changed = x.copy()
    padded = numpy.arange(STEPS)[None, :] >= LENGTHS[:, None]  # (N, T): steps at or past each length
    changed[padded] = rng.normal(size=(int(padded.sum()), FEATURES)) * 10
    valid = ~padded

    def attended(spec, values):
        model = engine.Model(spec, dtype="float64")
        return model.forward({"x": values, "lengths": LENGTHS})["attended"]

    spec = masked_attention_spec(op_name, form)
    numpy.testing.assert_allclose(attended(spec, changed)[valid], attended(spec, x)[valid], rtol=1e-12, atol=1e-12)
    unmasked = masked_attention_spec(op_name, form, masked=False)
    assert not numpy.allclose(attended(unmasked, changed)[valid], attended(unmasked, x)[valid])


def test_a_mask_of_the_wrong_form_names_the_mask_port():
    """The multi-head scores are (N, heads, Lq, Lk): the single-head form (N, 1, T) would put the
    batch on the heads axis (seen where the batch size is known)."""
    report = validate(masked_attention_spec("multi_head_attention", "attention_single_head", batch=4))
    assert [(e["node"], e["field"]) for e in report.errors] == [("attention", "inputs.mask")]
    assert "(4, 1, 5)" in report.errors[0]["message"]
