"""Convolutional training steps of the engine against PyTorch CPU: samples per second and peak memory;
and, where CuPy and a CUDA build of PyTorch see an NVIDIA GPU, the CNN at batch 256 on it.

Same model, batch, optimizer (Adam, lr 1e-3), float32 and one thread on each side (PyTorch's intra-op
pool and NumPy's BLAS pool, pinned by threadpoolctl): two thread pools spinning in one process on a
two-core machine measure contention, not convolution. Throughput is the median of interleaved trials.

Peak memory is measured the same way for both, whichever allocator holds it: each framework runs in
a fresh subprocess that imports it, resets the kernel's resident-set high-water mark
(``/proc/self/clear_refs``), builds the model and the data and trains a few steps, and reports the
peak resident size minus the resident size before building (``VmHWM - VmRSS``): weights, optimizer
slots, data, activations, gradients and whatever the allocator caches. (tracemalloc would miss
PyTorch's allocations; a delta after warm-up would miss its cache.)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import numpy

import engine
from engine.optimizers import make_optimizer
from tests.bench.engine_bench import TRIALS, throughput

THREADS = 1

BATCH = 64
IMAGE = (1, 28, 28)
CLASSES = 10
MEMORY_STEPS = 10


def lenet5_layers() -> list[tuple]:
    """LeNet-5 (ReLU and max pooling): conv 6@5x5 pad 2 -> pool -> conv 16@5x5 -> pool -> 120 -> 84 -> 10."""
    return [("conv", 6, 5, 2), ("relu",), ("pool", 2), ("conv", 16, 5, 0), ("relu",), ("pool", 2), ("flatten",),
            ("dense", 120), ("relu",), ("dense", 84), ("relu",), ("dense", CLASSES)]


def cnn_layers() -> list[tuple]:
    """conv 32@3x3 same -> pool -> conv 64@3x3 same -> pool -> dense 128 -> 10, ReLU between."""
    return [("conv", 32, 3, 1), ("relu",), ("pool", 2), ("conv", 64, 3, 1), ("relu",), ("pool", 2), ("flatten",),
            ("dense", 128), ("relu",), ("dense", CLASSES)]


MODELS = {"lenet5": lenet5_layers, "cnn": cnn_layers}


def engine_spec(layers: list[tuple]) -> dict:
    g = engine.GraphBuilder()
    h = g.input("x", [None, *IMAGE])
    y = g.input("y", [None], dtype="int64")
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            h = g.conv2d(h, filters=layer[1], kernel_size=layer[2], padding=layer[3])
        elif kind == "pool":
            h = g.max_pool2d(h, kernel_size=layer[1])
        elif kind == "dense":
            h = g.dense(h, units=layer[1])
        else:
            h = g.node(kind, h)
    g.loss(g.softmax_cross_entropy(h, y, id="loss"))
    g.output("prediction", h)
    return g.to_spec()


def torch_model(layers: list[tuple]):
    import torch  # noqa: PLC0415 - a benchmark-only dependency

    modules, channels, size = [], IMAGE[0], IMAGE[1]
    features = None
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            modules.append(torch.nn.Conv2d(channels, layer[1], layer[2], padding=layer[3]))
            channels, size = layer[1], size + 2 * layer[3] - layer[2] + 1
        elif kind == "pool":
            modules.append(torch.nn.MaxPool2d(layer[1]))
            size //= layer[1]
        elif kind == "flatten":
            modules.append(torch.nn.Flatten())
            features = channels * size * size
        elif kind == "dense":
            modules.append(torch.nn.Linear(features, layer[1]))
            features = layer[1]
        else:
            modules.append(torch.nn.ReLU())
    return torch.nn.Sequential(*modules)


def make_batches(batches: int = 8, batch: int = BATCH):
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(batch * batches, *IMAGE)).astype(numpy.float32)
    y = rng.integers(0, CLASSES, size=batch * batches).astype(numpy.int64)
    return [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(batches)]


def engine_step_factory(model_name: str, batches, device: str = "cpu"):
    """A training step; on the GPU the batches live there and each step ends with a device
    synchronisation, so that the time is the GPU's work, not its queueing."""
    from engine.backend import get_xp  # noqa: PLC0415

    xp = get_xp(device)
    model = engine.Model(engine_spec(MODELS[model_name]()), device=device)
    optimizer = make_optimizer({"name": "adam", "lr": 1e-3})
    data = batches if device == "cpu" else [(xp.asarray(x), xp.asarray(y)) for x, y in batches]
    synchronize = xp.cuda.Device().synchronize if device == "gpu" else lambda: None

    def step(i):
        x, y = data[i % len(data)]
        _, _, grads = model.loss_and_grads({"x": x, "y": y})
        optimizer.step(model.params, grads)
        synchronize()

    return step


def torch_step_factory(model_name: str, batches, device: str = "cpu"):
    import torch  # noqa: PLC0415

    on_gpu = device == "gpu"
    torch.manual_seed(0)
    model = torch_model(MODELS[model_name]())
    if on_gpu:
        model = model.cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]
    if on_gpu:
        data = [(x.cuda(), y.cuda()) for x, y in data]
    synchronize = torch.cuda.synchronize if on_gpu else lambda: None

    def step(i):
        x, y = data[i % len(data)]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()
        synchronize()

    return step


FACTORIES = {"engine": engine_step_factory, "pytorch": torch_step_factory}


def _memory_status() -> dict[str, int]:
    with open("/proc/self/status") as handle:
        fields = dict(line.split(":", 1) for line in handle if line.startswith(("VmRSS", "VmHWM")))
    return {key: int(value.split()[0]) * 1024 for key, value in fields.items()}


def peak_memory_child(framework: str, model_name: str) -> int:
    """In this (fresh) process: peak resident bytes of building and training the model, over the
    resident size with the framework imported (weights, data, activations, allocator caches)."""
    import threadpoolctl  # noqa: PLC0415
    import torch  # noqa: PLC0415

    torch.set_num_threads(THREADS)
    threadpoolctl.threadpool_limits(THREADS)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current resident size
    before = _memory_status()["VmRSS"]
    step = FACTORIES[framework](model_name, make_batches())
    for i in range(MEMORY_STEPS):
        step(i)
    return _memory_status()["VmHWM"] - before


def peak_memory(framework: str, model_name: str) -> int | None:
    code = ("import json, sys; from tests.bench import cnn_bench; "
            f"print(json.dumps(cnn_bench.peak_memory_child({framework!r}, {model_name!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if result.returncode:
        print(f"  (memory of {framework} {model_name} not measured: {result.stderr.strip().splitlines()[-1:]})")
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare(model_name: str, *, device: str = "cpu", batch: int = BATCH) -> dict:
    """Samples/s of each framework (median of interleaved trials) on the same batches."""
    batches = make_batches(batch=batch)
    steps = {key: factory(model_name, batches, device=device) for key, factory in FACTORIES.items()}
    samples = {key: [] for key in steps}
    for _ in range(TRIALS):
        for key, step in steps.items():
            samples[key].append(throughput(step, batch))
    return {key: statistics.median(values) for key, values in samples.items()}


ROWS = [
    ("lenet5", "LeNet-5 1x28x28, batch 64, Adam", 0.8),
    ("cnn", "CNN c32-p-c64-p-d128-10, batch 64, Adam", 0.6),
]


GPU_BATCH = 256
GPU_TARGET = 0.5


def gpu_table() -> int:
    """The CNN at batch 256 on an NVIDIA GPU against PyTorch CUDA; 1 when its target is missed."""
    import torch  # noqa: PLC0415

    from engine.backend import gpu_available  # noqa: PLC0415

    if not (gpu_available() and torch.cuda.is_available()):
        print("\nGPU: not measured: CuPy and a CUDA build of PyTorch do not both see a GPU on this machine "
              f"(the CNN at batch {GPU_BATCH} against PyTorch CUDA, target >= {GPU_TARGET}x, runs where they do)")
        return 0
    speed = compare("cnn", device="gpu", batch=GPU_BATCH)
    ratio = speed["engine"] / speed["pytorch"]
    met = ratio >= GPU_TARGET
    print(f"\nGPU ({torch.cuda.get_device_name()}), CNN c32-p-c64-p-d128-10, batch {GPU_BATCH}, Adam: engine on CuPy "
          f"{speed['engine']:,.0f}/s, PyTorch CUDA {speed['pytorch']:,.0f}/s, {ratio:.2f}x "
          f"(target >= {GPU_TARGET}x: {'met' if met else 'MISSED'})")
    return 0 if met else 1


def main() -> int:
    """Print the tables; returns the number of targets missed."""
    import threadpoolctl  # noqa: PLC0415
    import torch  # noqa: PLC0415

    torch_threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        with threadpoolctl.threadpool_limits(THREADS):
            missed = _table()
    finally:
        torch.set_num_threads(torch_threads)
    return missed + gpu_table()


def _table() -> int:
    print(f"convolutional nets: {THREADS} thread each side; samples/s median of {TRIALS} interleaved trials; "
          f"peak memory = resident-set peak of building and training {MEMORY_STEPS} steps over the imported "
          "framework, each in its own process\n")
    header = (f"{'model':42} {'engine/s':>10} {'pytorch/s':>10} {'ratio':>7} {'engine MiB':>11} {'pytorch MiB':>12}"
              "  target")
    print(header)
    print("-" * len(header))
    missed = 0
    for model_name, title, target in ROWS:
        speed = compare(model_name)
        memory = {key: peak_memory(key, model_name) for key in FACTORIES}
        ratio = speed["engine"] / speed["pytorch"]
        missed += ratio < target
        mib = {key: "n/a" if value is None else f"{value / 2**20:.1f}" for key, value in memory.items()}
        print(f"{title:42} {speed['engine']:10,.0f} {speed['pytorch']:10,.0f} {ratio:6.2f}x {mib['engine']:>11} "
              f"{mib['pytorch']:>12}  >= {target:.1f}x: {'met' if ratio >= target else 'MISSED'}")
    print(f"\n{missed} target(s) missed" if missed else "\nall targets met")
    return missed

if __name__ == "__main__":
    sys.exit(1 if main() else 0)
