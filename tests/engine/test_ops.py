"""Every op in the catalog against the shared case table: gradients by central differences in
float64, shape rules against real outputs, float32 kept as float32, and CuPy equal to NumPy."""

from __future__ import annotations

import json

import numpy
import pytest

from engine import backend, registry, testing
from engine.errors import ShapeError
from engine.registry import TensorType
from tests.engine.op_cases import CASES, NON_DIFFERENTIABLE

ALL_CASES = CASES + NON_DIFFERENTIABLE


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient_matches_central_differences(case):
    inputs = case.make_inputs("float64")
    testing.check_gradients(
        case.op, case.params, inputs, training=case.training, skip=case.skip_grad, rtol=case.rtol, atol=case.atol
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_shape_rule_predicts_forward(case, dtype):
    testing.check_shape_rule(case.op, case.params, case.make_inputs(dtype), training=case.training)


def test_every_registered_op_has_a_case():
    covered = {case.op for case in ALL_CASES}
    blocks = {op["name"] for op in registry.catalog()["ops"] if op["block"]}
    missing = sorted(set(registry.op_names()) - covered - blocks)
    assert not missing, f"ops without a case in tests/engine/op_cases.py: {missing}"


def test_catalog_entries_are_complete_and_json_ready():
    catalog = registry.catalog()
    json.dumps(catalog)
    for op in catalog["ops"]:
        assert op["name"] and op["category"] and op["doc"], op
        assert op["outputs"], op["name"]
        for param in op["params"]:
            assert param["type"] in registry.PARAM_TYPES
            assert param["required"] or "default" in param


def _ranked_ports() -> list[tuple[str, int]]:
    """(op, input index) of every op input port that declares the ranks it accepts."""
    return [(name, index) for name in registry.op_names()
            for index, port in enumerate(registry.get_op(name).inputs) if port.rank is not None]


def _with_rank(shape: tuple, rank: int) -> tuple:
    """The shape cut to its last ``rank`` axes, or widened by leading axes of size 1 (which any
    broadcasting accepts), so that only the rank is wrong."""
    return shape[len(shape) - rank:] if rank <= len(shape) else (1,) * (rank - len(shape)) + shape


@pytest.mark.parametrize(("op_name", "index"), _ranked_ports(), ids=lambda value: str(value))
def test_declared_port_rank_agrees_with_the_shape_rule(op_name, index):
    """The editor refuses a connection by the catalog's ``rank``; the shape rule must refuse the
    same ranks, and accept the ranks of the op's cases, which must lie inside the declared range."""
    op = registry.get_op(op_name)
    port = op.inputs[index]
    low, high = port.rank
    case = next(c for c in ALL_CASES if c.op == op_name and c.inputs[index] is not None)
    p, errors = op.resolve(case.params)
    assert not errors
    types = [testing.tensor_type(value, batch_unknown=True) for value in case.make_inputs("float32")]
    given = types[index] if port.variadic else [types[index]]
    assert all(port.accepts_rank(t.rank) for t in given), f"case {case.id} gives {port.name} a rank outside {port.rank}"
    op.infer(p, *types)
    outside = [rank for rank in (low - 1, None if high is None else high + 1) if rank is not None and rank >= 0]
    assert outside or high is not None, "a range [0, unbounded] constrains nothing: declare no rank"
    for rank in outside:
        wrong = [TensorType(_with_rank(t.shape, rank), t.dtype) for t in given]
        types_wrong = list(types)
        types_wrong[index] = wrong if port.variadic else wrong[0]
        with pytest.raises(ShapeError):
            op.infer(p, *types_wrong)
            pytest.fail(f"{op_name}: the shape rule accepts '{port.name}' of rank {rank}, outside {port.rank}")


def test_catalog_publishes_port_ranks():
    entries = {entry["name"]: entry for entry in registry.catalog()["ops"]}

    def ranks(name):
        return {port["name"]: port.get("rank") for port in entries[name]["inputs"]}

    assert ranks("conv2d") == {"x": [4, 4]}
    assert ranks("conv1d") == {"x": [3, 3]}
    for name in ("max_pool2d", "avg_pool2d", "global_avg_pool2d", "upsample2d"):
        assert ranks(name) == {"x": [4, 4]}
    assert ranks("batch_norm") == {"x": [2, None]}
    assert ranks("lstm") == ranks("gru") == ranks("rnn") == {"x": [3, 3], "lengths": [1, 1]}
    assert ranks("embedding") == {"indices": [1, None]}
    assert ranks("multi_head_attention") == {"query": [3, 3], "key": [3, 3], "value": [3, 3], "mask": [0, 4]}
    assert ranks("scaled_dot_product_attention")["query"] == [2, None]
    assert ranks("dense") == {"x": [1, None]}
    assert ranks("resnet_basic_block") == {"x": [4, 4]}
    assert ranks("lstm_classifier_head") == {"x": [3, 3]}
    assert "rank" not in entries["add"]["inputs"][0]  # any rank: the key is left out


def _assert_same(gpu, cpu, tolerance: float, label: str) -> None:
    """A GPU result equals the CPU one: arrays within tolerance, lists element by element (concat's
    gradient), None where the CPU gives None."""
    if cpu is None:
        assert gpu is None, f"{label}: the GPU gives a value where NumPy gives None"
        return
    if isinstance(cpu, list):
        assert isinstance(gpu, list) and len(gpu) == len(cpu), f"{label}: lists of other lengths"
        for index, (gpu_item, cpu_item) in enumerate(zip(gpu, cpu)):
            _assert_same(gpu_item, cpu_item, tolerance, f"{label}[{index}]")
        return
    assert gpu is not None, f"{label}: the GPU gives None where NumPy gives a value"
    numpy.testing.assert_allclose(backend.to_numpy(gpu), cpu, rtol=tolerance, atol=tolerance, err_msg=label)


@pytest.mark.skipif(not backend.gpu_available(), reason="CuPy with a CUDA GPU is not available on this machine")
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_cupy_matches_numpy(case):
    cupy = backend.get_xp("gpu")
    for dtype, tolerance in (("float64", 1e-10), ("float32", 1e-5)):
        inputs = case.make_inputs(dtype)
        weights = testing.make_weights(case.op, case.params, inputs, dtype=dtype)
        cpu_out, cpu_ctx, op, p, _ = testing.run_op(case.op, case.params, inputs, weights, training=case.training)
        gpu_inputs = [None if v is None else [cupy.asarray(i) for i in v] if isinstance(v, list) else cupy.asarray(v)
                      for v in inputs]
        gpu_weights = [cupy.asarray(w) for w in weights]
        gpu_out, gpu_ctx, _, _, _ = testing.run_op(case.op, case.params, gpu_inputs, gpu_weights,
                                                   training=case.training)
        if case.training and case.op == "dropout":
            continue  # CuPy draws other random masks than NumPy; the gradient check covers dropout
        for index, (a, b) in enumerate(zip(cpu_out, gpu_out)):
            _assert_same(b, a, tolerance, f"{dtype} output {index}")
        for name, value in (cpu_ctx.updates or {}).items():  # running statistics in training
            _assert_same((gpu_ctx.updates or {}).get(name), value, tolerance, f"{dtype} update {name}")
        if op.differentiable:
            cotangents = [numpy.ones_like(o) if o.dtype.kind == "f" else None for o in cpu_out]
            grad = cotangents if len(cotangents) > 1 else cotangents[0]
            gpu_grad = [None if c is None else cupy.asarray(c) for c in cotangents]
            gpu_grad = gpu_grad if len(gpu_grad) > 1 else gpu_grad[0]
            cpu_grads, gpu_grads = op.backward(cpu_ctx, p, grad), op.backward(gpu_ctx, p, gpu_grad)
            assert len(gpu_grads) == len(cpu_grads)
            for index, (a, b) in enumerate(zip(cpu_grads, gpu_grads)):
                _assert_same(b, a, tolerance, f"{dtype} gradient {index}")
