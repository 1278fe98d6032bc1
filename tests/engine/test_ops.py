"""Every op in the catalog against the shared case table: gradients by central differences in
float64, shape rules against real outputs, float32 kept as float32, and CuPy equal to NumPy."""

from __future__ import annotations

import numpy
import pytest

from engine import backend, registry, testing
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
    import json

    catalog = registry.catalog()
    json.dumps(catalog)
    for op in catalog["ops"]:
        assert op["name"] and op["category"] and op["doc"], op
        assert op["outputs"], op["name"]
        for param in op["params"]:
            assert param["type"] in registry.PARAM_TYPES
            assert param["required"] or "default" in param


@pytest.mark.skipif(not backend.gpu_available(), reason="CuPy with a CUDA GPU is not available on this machine")
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_cupy_matches_numpy(case):
    cupy = backend.get_xp("gpu")
    for dtype, tolerance in (("float64", 1e-10), ("float32", 1e-5)):
        inputs = case.make_inputs(dtype)
        weights = testing.make_weights(case.op, case.params, inputs, dtype=dtype)
        cpu_out, cpu_ctx, op, p, _ = testing.run_op(case.op, case.params, inputs, weights, training=case.training)
        gpu_inputs = [None if v is None else [cupy.asarray(i) for i in v] if isinstance(v, list) else cupy.asarray(v) for v in inputs]
        gpu_weights = [cupy.asarray(w) for w in weights]
        gpu_out, gpu_ctx, _, _, _ = testing.run_op(case.op, case.params, gpu_inputs, gpu_weights, training=case.training)
        if case.training and case.op == "dropout":
            continue  # CuPy draws other random masks than NumPy; the gradient check covers dropout
        for a, b in zip(cpu_out, gpu_out):
            numpy.testing.assert_allclose(backend.to_numpy(b), a, rtol=tolerance, atol=tolerance)
        if op.differentiable and not case.training:
            cotangents = [numpy.ones_like(o) if o.dtype.kind == "f" else None for o in cpu_out]
            grad = cotangents if len(cotangents) > 1 else cotangents[0]
            gpu_grad = [None if c is None else cupy.asarray(c) for c in cotangents]
            gpu_grad = gpu_grad if len(gpu_grad) > 1 else gpu_grad[0]
            for a, b in zip(op.backward(cpu_ctx, p, grad), op.backward(gpu_ctx, p, gpu_grad)):
                if a is not None and not isinstance(a, list):
                    numpy.testing.assert_allclose(backend.to_numpy(b), a, rtol=tolerance, atol=tolerance)
