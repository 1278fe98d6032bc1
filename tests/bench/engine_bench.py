"""Training-step throughput of the engine against PyTorch CPU and a hand-written NumPy step.

Same model, batch, optimizer (Adam) and float32 everywhere. Each implementation runs in a fresh
process of its own, kept for all the trials of a row so that they interleave in rounds, the order
turned round every round; the medians of the trials and of the rounds' ratios are reported. (In one
process the three halved each other: PyTorch's OpenMP threads and OpenBLAS's threads each spin
after their work and took the cores from the other, so the engine measured 49-58k samples/s beside
PyTorch and 103-116k alone, and PyTorch 33-44k against 64-82k alone.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy

import engine
from engine import parallel
from engine.optimizers import make_optimizer
from tests.bench.cnn_bench import BenchChild, interleaved_trials, paired_ratio

TRIALS = 5
TRIAL_SECONDS = 1.0
THREADS = len(os.sched_getaffinity(0))  # both sides on every usable core (the engine's default)
MLP_TORCH_TARGET = 1.5  # engine samples/s over PyTorch's, at least
MLP_NUMPY_TARGET = 0.9  # engine samples/s over the hand-written NumPy step's: within 10%


def mlp_spec(sizes: list[int]) -> dict:
    g = engine.GraphBuilder()
    h = g.input("x", [None, sizes[0]])
    y = g.input("y", [None], dtype="int64")
    for index, units in enumerate(sizes[1:]):
        h = g.dense(h, units=units, id=f"fc{index + 1}")
        if index < len(sizes) - 2:
            h = g.relu(h, id=f"relu{index + 1}")
    g.loss(g.softmax_cross_entropy(h, y, id="loss"))
    g.output("prediction", h)
    return g.to_spec()


def make_data(features: int, classes: int, batch: int, batches: int = 16):
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(batch * batches, features)).astype(numpy.float32)
    y = rng.integers(0, classes, size=batch * batches).astype(numpy.int64)
    return [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(batches)]


def engine_step_factory(sizes, batches, lr=1e-3):
    model = engine.Model(mlp_spec(sizes))
    optimizer = make_optimizer({"name": "adam", "lr": lr})
    params = model.params

    def step(i):
        x, y = batches[i % len(batches)]
        _, _, grads = model.loss_and_grads({"x": x, "y": y})
        optimizer.step(params, grads)

    return step


def numpy_step_factory(sizes, batches, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """What one would write by hand: explicit forward, backward and an in-place Adam."""
    rng = numpy.random.default_rng(0)
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = numpy.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(numpy.float32))
        biases.append(numpy.zeros(fan_out, numpy.float32))
    params = weights + biases
    m = [numpy.zeros_like(p) for p in params]
    v = [numpy.zeros_like(p) for p in params]
    scratch = [numpy.empty_like(p) for p in params]
    state = {"t": 0}
    layers = len(weights)

    def step(i):
        x, y = batches[i % len(batches)]
        n = len(x)
        activations = [x]
        h = x
        for k in range(layers):
            h = h @ weights[k]
            h += biases[k]
            if k < layers - 1:
                numpy.maximum(h, 0, out=h)
            activations.append(h)
        logits = activations[-1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        exp = numpy.exp(shifted)
        probs = exp / exp.sum(axis=1, keepdims=True)
        probs[numpy.arange(n), y] -= 1.0
        g = probs * (1.0 / n)
        grads_w, grads_b = [None] * layers, [None] * layers
        for k in reversed(range(layers)):
            grads_w[k] = activations[k].T @ g
            grads_b[k] = g.sum(axis=0)
            if k:
                g = g @ weights[k].T
                g *= activations[k] > 0
        state["t"] += 1
        t = state["t"]
        step_size = lr / (1 - beta1**t)
        correction2 = 1 - beta2**t
        for p, grad, mk, vk, s in zip(params, grads_w + grads_b, m, v, scratch):
            mk *= beta1
            mk += (1 - beta1) * grad
            vk *= beta2
            numpy.multiply(grad, grad, out=s)
            s *= 1 - beta2
            vk += s
            numpy.divide(vk, correction2, out=s)
            numpy.sqrt(s, out=s)
            s += eps
            numpy.divide(mk, s, out=s)
            s *= step_size
            p -= s

    return step


def torch_step_factory(sizes, batches, lr=1e-3):
    import torch  # noqa: PLC0415 - PyTorch is for make bench only

    torch.manual_seed(0)
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def step(i):
        x, y = data[i % len(data)]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def throughput(step, batch: int) -> float:
    """Samples per second of one timed trial (after a warm-up)."""
    for i in range(5):
        step(i)
    count = 0
    start = time.perf_counter()
    while True:
        for _ in range(10):
            step(count)
            count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= TRIAL_SECONDS:
            return count * batch / elapsed


FACTORIES = {"engine": engine_step_factory, "pytorch": torch_step_factory, "numpy": numpy_step_factory}


def child(framework: str, sizes: list[int], batch: int) -> None:
    """One implementation in this process: a first line with its thread count and versions, then
    samples/s of one trial for each 'trial' line read."""
    parallel.set_threads(THREADS)  # the engine's pool and NumPy's BLAS (the NumPy step's too)
    info = {"threads": parallel.thread_count(), "numpy": numpy.__version__}
    if framework == "pytorch":
        import torch  # noqa: PLC0415 - PyTorch is for make bench only

        torch.set_num_threads(THREADS)
        info.update(threads=torch.get_num_threads(), torch=torch.__version__)
    step = FACTORIES[framework](sizes, make_data(sizes[0], sizes[-1], batch))
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        if line.strip() != "trial":
            break
        print(json.dumps({"samples_per_second": throughput(step, batch)}), flush=True)


def compare(name: str, sizes: list[int], batch: int) -> dict:
    sides = {framework: BenchChild("tests.bench.engine_bench", [framework, ",".join(map(str, sizes)), str(batch)])
             for framework in FACTORIES}
    trials = interleaved_trials(sides, TRIALS)
    speeds = {key: [t["samples_per_second"] for t in values] for key, values in trials.items()}
    return {"name": name, "info": {key: side.info for key, side in sides.items()},
            **{key: statistics.median(values) for key, values in speeds.items()},
            "vs_torch": paired_ratio(speeds["engine"], speeds["pytorch"]),
            "vs_numpy": paired_ratio(speeds["engine"], speeds["numpy"])}


def main() -> int:
    """Print the table; returns the number of targets missed."""
    rows = [
        (compare("MLP 784-256-128-10, batch 128, Adam", [784, 256, 128, 10], 128), MLP_TORCH_TARGET, MLP_NUMPY_TARGET),
        (compare("logistic regression 64-10, batch 32, Adam", [64, 10], 32), 1.0, None),
    ]
    info = rows[0][0]["info"]
    print(f"engine bench: {platform.processor() or platform.machine()}, {THREADS} threads (engine and its BLAS: "
          f"{info['engine']['threads']}, torch: {info['pytorch']['threads']}), numpy {info['engine']['numpy']}, "
          f"torch {info['pytorch']['torch']}; each side in its own process, {TRIALS} rounds of one "
          f"{TRIAL_SECONDS:.0f} s trial each, in turn; samples/s = medians, ratios = medians of the rounds' ratios\n")
    header = f"{'model':44} {'engine/s':>10} {'pytorch/s':>10} {'numpy/s':>10} {'vs torch':>9} {'vs numpy':>9}  targets"
    print(header)
    print("-" * len(header))
    missed = 0
    for row, torch_target, numpy_target in rows:
        vs_torch, vs_numpy = row["vs_torch"][0], row["vs_numpy"][0]
        checks = [f"torch >= {torch_target:.1f}x: {'met' if vs_torch >= torch_target else 'MISSED'}"]
        missed += vs_torch < torch_target
        if numpy_target is not None:
            checks.append(f"numpy >= {numpy_target:.1f}x: {'met' if vs_numpy >= numpy_target else 'MISSED'}")
            missed += vs_numpy < numpy_target
        print(f"{row['name']:44} {row['engine']:10,.0f} {row['pytorch']:10,.0f} {row['numpy']:10,.0f} "
              f"{vs_torch:8.2f}x {vs_numpy:8.2f}x  {'; '.join(checks)}")
    print(f"\n{missed} target(s) missed" if missed else "\nall targets met")
    return missed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "SIZES", "BATCH"),
                        help="internal: run one side of a row in this process")
    arguments = parser.parse_args()
    if arguments.child:
        framework, sizes, batch = arguments.child
        child(framework, [int(size) for size in sizes.split(",")], int(batch))
        sys.exit(0)
    sys.exit(1 if main() else 0)
