"""``make crosscheck``: the engine's forwards, gradients and optimizer updates against PyTorch's,
in float64. PyTorch stays out of the test suite's dependencies, so this runs beside it."""

from __future__ import annotations

import sys

import numpy

from engine import testing
from engine.optimizers import make_optimizer
from tests.bench import crosscheck_attention, crosscheck_recurrent, crosscheck_spatial

TOLERANCE = 1e-10


def torch_vjp(function, inputs, cotangent):
    import torch  # noqa: PLC0415

    tensors = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in inputs]
    out = function(*tensors)
    out.backward(torch.tensor(cotangent))
    return out.detach().numpy(), [t.grad.numpy() if t.grad is not None else None for t in tensors]


def engine_vjp(op, params, inputs, weights, cotangent):
    outputs, ctx, op_object, p, _ = testing.run_op(op, params, inputs, weights)
    grads = op_object.backward(ctx, p, cotangent)
    return outputs[0], grads


def op_cases():
    import torch  # noqa: PLC0415
    import torch.nn.functional as F  # noqa: PLC0415

    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(6, 5))
    w = rng.normal(size=(5, 4))
    b = rng.normal(size=(4,))
    labels = rng.integers(0, 4, size=6)
    yield "dense", ("dense", {"units": 4}, [x], [w, b]), (lambda x, w, b: F.linear(x, w.T, b), [x, w, b])
    for name, fn in [("relu", F.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("softplus", F.softplus),
                     ("gelu", F.gelu)]:
        yield name, (name, {}, [x], []), (fn, [x])
    yield "gelu-tanh", ("gelu", {"approximate": "tanh"}, [x], []), (lambda t: F.gelu(t, approximate="tanh"), [x])
    yield "leaky_relu", ("leaky_relu", {"slope": 0.1}, [x], []), (lambda t: F.leaky_relu(t, 0.1), [x])
    yield "softmax", ("softmax", {}, [x], []), (lambda t: torch.softmax(t, -1), [x])
    yield "log_softmax", ("log_softmax", {}, [x], []), (lambda t: torch.log_softmax(t, -1), [x])
    logits = rng.normal(size=(6, 4))
    yield "softmax_cross_entropy", ("softmax_cross_entropy", {}, [logits, labels], []), (
        lambda z, y: F.cross_entropy(z, y), [logits, labels])
    yield "softmax_cross_entropy-smoothing", (
        "softmax_cross_entropy", {"label_smoothing": 0.1}, [logits, labels], []), (
        lambda z, y: F.cross_entropy(z, y, label_smoothing=0.1), [logits, labels])
    scores = rng.normal(size=(6,))
    targets = rng.integers(0, 2, size=6).astype(numpy.float64)
    yield "sigmoid_cross_entropy", ("sigmoid_cross_entropy", {}, [scores, targets], []), (
        lambda z, y: F.binary_cross_entropy_with_logits(z, y), [scores, targets])
    prediction, target = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    yield "mse", ("mse", {}, [prediction, target], []), (F.mse_loss, [prediction, target])
    yield "huber", ("huber", {"delta": 0.5}, [prediction, target], []), (
        lambda a, c: F.huber_loss(a, c, delta=0.5), [prediction, target])


def check_ops() -> int:
    failures = 0
    for name, (op, params, inputs, weights), (function, torch_inputs) in op_cases():
        out, _, _, _, _ = testing.run_op(op, params, inputs, weights)
        cotangent = numpy.random.default_rng(1).normal(size=out[0].shape)
        engine_out, engine_grads = engine_vjp(op, params, inputs, weights, cotangent)
        torch_out, torch_grads = torch_vjp(function, torch_inputs, cotangent)
        worst = float(numpy.max(numpy.abs(engine_out - torch_out)))
        for mine, theirs in zip(engine_grads, torch_grads):
            if mine is not None and theirs is not None:
                worst = max(worst, float(numpy.max(numpy.abs(mine - theirs))))
        ok = worst <= TOLERANCE
        failures += not ok
        print(f"  {name:34} max |engine - torch| = {worst:.2e}  {'ok' if ok else 'MISMATCH'}")
    return failures


def check_optimizers() -> int:
    import torch  # noqa: PLC0415

    configs = {
        "sgd": ({"name": "sgd", "lr": 0.1, "weight_decay": 0.01},
                lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01)),
        "momentum": ({"name": "momentum", "lr": 0.1, "momentum": 0.9},
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
        "nesterov": ({"name": "nesterov", "lr": 0.1, "momentum": 0.9},
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
        "adagrad": ({"name": "adagrad", "lr": 0.1}, lambda p: torch.optim.Adagrad(p, lr=0.1)),
        "rmsprop": ({"name": "rmsprop", "lr": 0.01}, lambda p: torch.optim.RMSprop(p, lr=0.01)),
        "adam": ({"name": "adam", "lr": 0.01, "weight_decay": 0.01},
                 lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01)),
        "adamw": ({"name": "adamw", "lr": 0.01, "weight_decay": 0.05},
                  lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05)),
        "adam-clipped": ({"name": "adam", "lr": 0.01, "clip_norm": 0.5}, None),
    }
    failures = 0
    rng = numpy.random.default_rng(2)
    for name, (config, make_torch) in configs.items():
        start = rng.normal(size=(7, 3))
        grads = [rng.normal(size=(7, 3)) for _ in range(6)]
        mine = {"w": start.copy()}
        optimizer = make_optimizer(config)
        theirs = torch.tensor(start.copy(), requires_grad=True)
        torch_optimizer = make_torch([theirs]) if make_torch else torch.optim.Adam([theirs], lr=0.01)
        for grad in grads:
            optimizer.step(mine, {"w": grad.copy()})
            theirs.grad = torch.tensor(grad.copy())
            if config.get("clip_norm"):
                torch.nn.utils.clip_grad_norm_([theirs], config["clip_norm"])
            torch_optimizer.step()
        worst = float(numpy.max(numpy.abs(mine["w"] - theirs.detach().numpy())))
        ok = worst <= TOLERANCE
        failures += not ok
        print(f"  {name:34} max |engine - torch| after 6 steps = {worst:.2e}  {'ok' if ok else 'MISMATCH'}")
    return failures


def main() -> int:
    print("ops (forward and vector-Jacobian products, float64):")
    failures = check_ops()
    print("optimizers (parameters after 6 steps, float64):")
    failures += check_optimizers()
    failures += crosscheck_recurrent.main()
    failures += crosscheck_spatial.main()
    failures += crosscheck_attention.main()
    print(f"\n{failures} mismatch(es)" if failures else "\nall agree with PyTorch (within 1e-10)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
