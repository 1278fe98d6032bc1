"""Checking ops: run one op alone, compare its backward with central differences, and check
its shape rule against real outputs. Used by the test suite's op table, and by anyone adding an op
(like ``torch.autograd.gradcheck``).
"""

from __future__ import annotations

import numpy

from engine import backend
from engine.errors import EngineError
from engine.registry import Context, TensorType, get_op


def _op_and_params(op_name: str, params: dict):
    op = get_op(op_name)
    if op is None:
        raise EngineError(f"unknown op {op_name!r}")
    resolved, errors = op.resolve(params or {})
    if errors:
        raise EngineError(f"bad parameters for '{op_name}': {errors}")
    return op, resolved


def tensor_type(value, batch_unknown: bool = False) -> TensorType | list[TensorType] | None:
    """The symbolic type of an array (or list of arrays); optionally with the batch unknown."""
    if value is None:
        return None
    if isinstance(value, list):
        return [tensor_type(v, batch_unknown) for v in value]
    shape = tuple(value.shape)
    if batch_unknown and shape:
        shape = (None, *shape[1:])
    return TensorType(shape, str(value.dtype))


def make_weights(op_name: str, params: dict, inputs: list, *, seed: int = 0, dtype="float64", xp=numpy) -> list:
    """Random weights for an op (normal, scale 0.5; buffers that are variances stay positive)."""
    op, p = _op_and_params(op_name, params)
    specs = op.weights(p, *[tensor_type(v) for v in inputs])
    rng = numpy.random.default_rng(seed + 1000)
    arrays = []
    for spec in specs:
        if spec.trainable:
            values = rng.normal(0.0, 0.5, size=spec.shape)
        else:
            values = rng.uniform(0.5, 1.5, size=spec.shape)
        arrays.append(xp.asarray(values, dtype=dtype))
    return arrays


def run_op(op_name: str, params: dict, inputs: list, weights: list | None = None, *,
           training: bool = False, seed: int = 0, needs: tuple | None = None):
    """Forward of one op on concrete arrays: (outputs as a tuple, the context for backward)."""
    op, p = _op_and_params(op_name, params)
    if weights is None:
        weights = make_weights(op_name, params, inputs, seed=seed, dtype=_first_float_dtype(inputs),
                               xp=backend.array_module(*_flat(inputs)))
    xp = backend.array_module(*_flat(inputs))
    rng = numpy.random.default_rng(seed) if xp is numpy else xp.random.default_rng(seed)
    if needs is None:
        trainable = tuple(spec.trainable for spec in op.weights(p, *[tensor_type(v) for v in inputs]))
        needs = tuple(
            [True] * len(v) if isinstance(v, list) else v is not None for v in inputs
        ) + trainable
    ctx = Context(training, rng, needs)
    out = op.forward(ctx, p, *inputs, *weights)
    outputs = out if isinstance(out, tuple) else (out,)
    return outputs, ctx, op, p, weights


def _flat(values) -> list:
    flat = []
    for value in values:
        if isinstance(value, list):
            flat.extend(value)
        elif value is not None:
            flat.append(value)
    return flat


def _first_float_dtype(inputs, default: str = "float64") -> str:
    for value in _flat(inputs):
        if value.dtype.kind == "f":
            return str(value.dtype)
    return default


def check_gradients(op_name: str, params: dict, inputs: list, *, training: bool = False, seed: int = 0,
                    eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7, skip: tuple = ()) -> dict:
    """Compare the op's vector-Jacobian products with central differences (float64).

    The scalar checked is sum(output_i * r_i) for fixed random cotangents r_i. Every float input
    and every trainable weight is checked element by element (``skip`` names input positions to
    leave out, e.g. a mask; buffers such as running statistics get no gradient). Raises
    AssertionError naming the op, the argument and the worst element. Returns the largest
    absolute error per argument.
    """
    inputs = [_as_float64(v) for v in inputs]
    outputs, ctx, op, p, weights = run_op(op_name, params, inputs, training=training, seed=seed)
    rng = numpy.random.default_rng(seed + 7)
    cotangents = tuple(
        rng.normal(size=o.shape) if numpy.asarray(o).dtype.kind == "f" and op.differentiable else None for o in outputs
    )
    grad_arg = cotangents if len(outputs) > 1 else cotangents[0]
    analytic = op.backward(ctx, p, grad_arg)
    if len(analytic) != len(inputs) + len(weights):
        raise AssertionError(
            f"{op_name}: backward returned {len(analytic)} gradients for {len(inputs)} inputs "
            f"and {len(weights)} weights"
        )

    def objective() -> float:
        outs, _, _, _, _ = run_op(op_name, params, inputs, weights, training=training, seed=seed)
        return float(sum(numpy.sum(o * c) for o, c in zip(outs, cotangents) if c is not None))

    specs = op.weights(p, *[tensor_type(v) for v in inputs])
    names = [port.name for port in op.inputs] + [spec.name for spec in specs]
    arrays = []  # (label, array, analytic gradient)
    ports = list(op.inputs)
    buffers = {len(ports) + k for k, spec in enumerate(specs) if not spec.trainable}
    for index, (value, grad) in enumerate(zip(list(inputs) + list(weights), analytic)):
        if (index in skip or index in buffers or value is None
                or (index < len(ports) and not ports[index].differentiable)):
            continue
        if isinstance(value, list):
            for j, (item, g) in enumerate(zip(value, grad)):
                if item.dtype.kind == "f":
                    arrays.append((f"{names[index]}[{j}]", item, g))
        elif value.dtype.kind == "f":
            arrays.append((names[index], value, grad))
    errors = {}
    for label, array, grad in arrays:
        if grad is None:
            raise AssertionError(f"{op_name}: no gradient returned for '{label}'")
        if grad.shape != array.shape:
            raise AssertionError(f"{op_name}: gradient of '{label}' has shape {grad.shape}, expected {array.shape}")
        numeric = numpy.zeros_like(array)
        flat = array.reshape(-1)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = objective()
            flat[i] = original - eps
            minus = objective()
            flat[i] = original
            numeric.reshape(-1)[i] = (plus - minus) / (2 * eps)
        difference = numpy.abs(numeric - grad)
        bound = atol + rtol * numpy.abs(numeric)
        if (difference > bound).any():
            worst = numpy.unravel_index(numpy.argmax(difference - bound), array.shape)
            raise AssertionError(
                f"{op_name} {params}: gradient of '{label}' differs at {tuple(int(i) for i in worst)}: "
                f"analytic {grad[worst]:.8g}, numeric {numeric[worst]:.8g} (max abs error {difference.max():.3g})"
            )
        errors[label] = float(difference.max()) if difference.size else 0.0
    return errors


def _as_float64(value):
    if isinstance(value, list):
        return [_as_float64(v) for v in value]
    if value is not None and value.dtype.kind == "f":
        return value.astype(numpy.float64)
    return value


def check_shape_rule(op_name: str, params: dict, inputs: list, *, training: bool = False, seed: int = 0) -> None:
    """The op's shape rule, given the inputs' types, predicts its real outputs' shapes and dtypes,
    both with concrete sizes and with the batch size unknown."""
    op, p = _op_and_params(op_name, params)
    # Without float inputs (embedding), float outputs come from the weights: the graph types those float32.
    weights = make_weights(op_name, params, inputs, seed=seed, dtype=_first_float_dtype(inputs, default="float32"),
                           xp=backend.array_module(*_flat(inputs)))
    outputs, _, _, _, _ = run_op(op_name, params, inputs, weights, training=training, seed=seed)
    for batch_unknown in (False, True):
        predicted = op.infer(p, *[tensor_type(v, batch_unknown) for v in inputs])
        predicted = predicted if isinstance(predicted, tuple) else (predicted,)
        if len(predicted) != len(outputs):
            raise AssertionError(f"{op_name}: shape rule gives {len(predicted)} outputs, forward {len(outputs)}")
        for port, want, got in zip(op.outputs, predicted, outputs):
            got_shape = tuple(got.shape)
            if (len(want.shape) != len(got_shape)
                    or any(w is not None and w != g for w, g in zip(want.shape, got_shape))):
                raise AssertionError(
                    f"{op_name} {params}: shape rule says output '{port.name}' is {want.shape}, "
                    f"forward gave {got_shape}"
                    + (" (batch unknown)" if batch_unknown else "")
                )
            if str(got.dtype) != want.dtype:
                raise AssertionError(f"{op_name} {params}: shape rule says dtype {want.dtype}, "
                                     f"forward gave {got.dtype}")
