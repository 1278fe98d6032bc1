"""Multi-head attention and layer normalization against PyTorch (float64): outputs and the gradients
of inputs and weights, within 1e-10 (``make crosscheck`` runs this beside crosscheck.py), once on one
thread and once on two with the work cut into the finest pieces, so that the split paths agree too.

PyTorch's side projects with plain products and attends with ``F.scaled_dot_product_attention``;
the engine's kernels are (in features, out features), PyTorch's ``Linear`` weights transposed."""

from __future__ import annotations

import numpy

from engine import parallel, testing

TOLERANCE = 1e-10
N, LQ, LK, D, HEADS = 3, 5, 4, 8, 2


def _torch_attention(torch, heads, causal, mask, use_bias):
    F = torch.nn.functional

    def function(query, key, value, *weights):
        key = query if key is None else key
        value = key if value is None else value
        per = 2 if use_bias else 1
        projected = []
        for index, x in enumerate((query, key, value)):
            h = x @ weights[index * per] + (weights[index * per + 1] if use_bias else 0)
            projected.append(h.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2))
        keep = None if mask is None else torch.tensor(mask != 0)
        if causal:
            lower = torch.ones(projected[0].shape[2], projected[1].shape[2], dtype=torch.bool).tril()
            keep = lower if keep is None else keep & lower
        attended = F.scaled_dot_product_attention(*projected, attn_mask=keep)
        merged = attended.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)
        return merged @ weights[3 * per] + (weights[3 * per + 1] if use_bias else 0)

    return function


def _cases():
    rng = numpy.random.default_rng(7)
    query, key, value = rng.normal(size=(N, LQ, D)), rng.normal(size=(N, LK, 6)), rng.normal(size=(N, LK, 5))
    some_keys = numpy.ones((N, 1, 1, LK))
    some_keys[1, ..., -2:] = 0  # the second sequence's last two keys are padding
    yield "mha-self", {"heads": HEADS}, (query, None, None, None)
    yield "mha-self-causal-no-bias", {"heads": HEADS, "causal": True, "use_bias": False}, (query, None, None, None)
    yield "mha-self-padding-mask", {"heads": HEADS}, (query[:, :LK], None, None, some_keys)
    yield "mha-cross-mask", {"heads": HEADS}, (query, key, value, some_keys)
    yield "mha-value-is-key", {"heads": 1, "head_dim": 3, "units": 4}, (query, key, None, None)


def _layer_norm_cases():
    rng = numpy.random.default_rng(8)
    x = rng.normal(2.0, 3.0, size=(N, LQ, D))
    yield "layer_norm", {}, x, [rng.normal(size=D), rng.normal(size=D)], (D,)
    yield "layer_norm-two-axes", {"axes": 2}, x, [rng.normal(size=(LQ, D)), rng.normal(size=(LQ, D))], (LQ, D)
    yield "layer_norm-no-affine", {"affine": False, "epsilon": 1e-3}, x, [], (D,)


def _compare(outputs, grads, tensors, out) -> float:
    worst = float(numpy.max(numpy.abs(outputs[0] - out.detach().numpy())))
    for value, tensor in zip(grads, tensors):
        if tensor is not None:
            worst = max(worst, float(numpy.max(numpy.abs(value - tensor.grad.numpy()))))
    return worst


def check() -> int:
    """Print one line per case; returns the number of mismatches."""
    import torch  # noqa: PLC0415 - PyTorch is for make bench only

    failures = 0
    results = []
    for name, params, inputs in _cases():
        outputs, ctx, op, p, weights = testing.run_op("multi_head_attention", params, list(inputs), seed=2)
        cotangent = numpy.random.default_rng(1).normal(size=outputs[0].shape)
        grads = op.backward(ctx, p, cotangent)
        tensors = [None if x is None else torch.tensor(x, requires_grad=True) for x in inputs[:3]]
        weight_tensors = [torch.tensor(w, requires_grad=True) for w in weights]
        function = _torch_attention(torch, params["heads"], params.get("causal", False), inputs[3],
                                    params.get("use_bias", True))
        out = function(*tensors, *weight_tensors)
        out.backward(torch.tensor(cotangent))
        mine = [g for g, x in zip(grads[:3], inputs[:3]) if x is not None] + list(grads[4:])
        theirs = [t for t in tensors if t is not None] + weight_tensors
        results.append((name, _compare(outputs, mine, theirs, out)))
    for name, params, x, weights, shape in _layer_norm_cases():
        outputs, ctx, op, p, _ = testing.run_op("layer_norm", params, [x], weights)
        cotangent = numpy.random.default_rng(1).normal(size=outputs[0].shape)
        grads = op.backward(ctx, p, cotangent)
        tensors = [torch.tensor(v, requires_grad=True) for v in (x, *weights)]
        out = torch.nn.functional.layer_norm(tensors[0], shape, *(tensors[1:] or (None, None)),
                                             eps=params.get("epsilon", 1e-5))
        out.backward(torch.tensor(cotangent))
        results.append((name, _compare(outputs, grads, tensors, out)))
    for name, worst in results:
        ok = worst <= TOLERANCE
        failures += not ok
        print(f"  {name:34} max |engine - torch| = {worst:.2e}  {'ok' if ok else 'MISMATCH'}")
    return failures


def main() -> int:
    print(f"multi-head attention, layer normalization (forward and gradients, float64, tolerance {TOLERANCE:g}), "
          "one thread:")
    with parallel.threads(1):
        failures = check()
    print("the same on two threads, the work split into the finest pieces:")
    run_values = parallel.RUN_VALUES
    parallel.RUN_VALUES = 1
    try:
        with parallel.threads(2, grain=1), parallel.owned_cores():
            failures += check()
    finally:
        parallel.RUN_VALUES = run_values
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
