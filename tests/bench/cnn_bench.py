"""Convolutional training steps of the engine against PyTorch CPU, at the machine's default thread
count and at one thread: training steps per second, their ratio, and the peak memory of training;
and, where CuPy and a CUDA build of PyTorch see an NVIDIA GPU, the VGG-style net at batch 256 on it.

Models: LeNet-5 (tanh, average pooling), a VGG-style net (two 3x3 convolutions per stage, max
pooling) and a small ResNet (a conv-bn-relu stem, a basic block, and a strided basic block with a
1x1 projection shortcut, batch norm everywhere, global average pooling). Same model, batch,
optimizer (Adam, lr 1e-3), synthetic data and float32 on both sides.

Each side runs in a fresh process of its own, kept for the trials of one row so that the trials
can interleave in rounds (engine then PyTorch, then PyTorch then engine, ...); the ratio is the
median of the rounds' ratios (``paired_ratio``), printed with their range. The thread count is
set in that process before the model is built: ``NETFORGE_THREADS`` semantics for the engine
(``engine.parallel.set_threads``: its own pool and NumPy's BLAS), ``torch.set_num_threads`` for
PyTorch; "default" is each framework's own default (the usable cores for the engine).

Peak memory is the same measure for both, whatever allocator holds it: after importing its
framework and training the same model two steps at batch 2 (``warm_up``: what each framework loads
or compiles once per process, PyTorch's libraries, the engine's numba kernels, is code, not a step's
memory), the process resets the kernel's resident-set high-water mark (``/proc/self/clear_refs``),
builds the model and the data, trains a few steps, and reports the peak resident size minus the
resident size before building (``VmHWM - VmRSS``): weights, optimizer slots, data, activations,
gradients and allocator caches. (tracemalloc would miss PyTorch's allocations.)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

import numpy

import engine
from engine import parallel
from engine.backend import get_xp, gpu_available
from engine.optimizers import make_optimizer

TRIALS = 5
TRIAL_SECONDS = 1.0
MEMORY_STEPS = 5
CLASSES = 10
BATCHES = (32, 128)
SPEED_TARGET = 1.0  # engine steps/s over PyTorch's, at least
MEMORY_TARGET = 1.5  # engine peak memory over PyTorch's, at most


# -- the models, written once for each framework ------------------------------------------------------
def lenet5(g, x):
    """LeNet-5: conv 6@5x5 pad 2 -> tanh -> avg-pool -> conv 16@5x5 -> tanh -> avg-pool -> 120 -> 84 -> 10."""
    h = g.avg_pool2d(g.tanh(g.conv2d(x, filters=6, kernel_size=5, padding=2)), kernel_size=2)
    h = g.avg_pool2d(g.tanh(g.conv2d(h, filters=16, kernel_size=5)), kernel_size=2)
    h = g.tanh(g.dense(g.flatten(h), units=120))
    return g.dense(g.tanh(g.dense(h, units=84)), units=CLASSES)


def vgg(g, x):
    """Two stages of two 3x3 convolutions (16, then 32 filters) and a max pool, then dense 128 -> 10."""
    h = x
    for filters in (16, 32):
        for _ in range(2):
            h = g.relu(g.conv2d(h, filters=filters, kernel_size=3, padding=1))
        h = g.max_pool2d(h, kernel_size=2)
    return g.dense(g.relu(g.dense(g.flatten(h), units=128)), units=CLASSES)


def _conv_bn(g, x, filters, kernel, stride=1):
    h = g.conv2d(x, filters=filters, kernel_size=kernel, stride=stride, padding=kernel // 2, use_bias=False)
    return g.batch_norm(h)


def resnet(g, x):
    """Stem conv-bn-relu 16; a basic block of 16; a basic block of 32 with stride 2 and a 1x1 projection
    shortcut; global average pooling; dense 10."""
    h = g.relu(_conv_bn(g, x, 16, 3))
    for filters, stride in ((16, 1), (32, 2)):
        branch = _conv_bn(g, g.relu(_conv_bn(g, h, filters, 3, stride)), filters, 3)
        shortcut = h if stride == 1 else _conv_bn(g, h, filters, 1, stride)
        h = g.relu(g.add(branch, shortcut))
    return g.dense(g.global_avg_pool2d(h), units=CLASSES)


MODELS = {  # name: (title, input shape, builder)
    "lenet5": ("LeNet-5 1x28x28 (tanh, avg-pool)", (1, 28, 28), lenet5),
    "vgg": ("VGG-style 3x32x32 c16-c16-p-c32-c32-p-d128", (3, 32, 32), vgg),
    "resnet": ("ResNet 3x32x32 stem + 2 basic blocks, BN", (3, 32, 32), resnet),
}


def engine_spec(model_name: str) -> dict:
    _, shape, build = MODELS[model_name]
    g = engine.GraphBuilder()
    logits = build(g, g.input("x", [None, *shape]))
    g.loss(g.softmax_cross_entropy(logits, g.input("y", [None], dtype="int64"), id="loss"))
    g.output("prediction", logits)
    return g.to_spec()


class _TorchGraph:
    """The engine's GraphBuilder calls above, answered with PyTorch modules built on first use and
    applied at once: the same builder function describes the PyTorch model."""

    def __init__(self, torch, modules):
        self.torch, self.modules, self.index = torch, modules, 0

    def _module(self, make):
        if self.index == len(self.modules):
            self.modules.append(make())
        module = self.modules[self.index]
        self.index += 1
        return module

    def conv2d(self, x, *, filters, kernel_size, stride=1, padding=0, use_bias=True):
        nn = self.torch.nn
        return self._module(lambda: nn.Conv2d(x.shape[1], filters, kernel_size, stride, padding, bias=use_bias))(x)

    def dense(self, x, *, units):
        return self._module(lambda: self.torch.nn.Linear(x.shape[1], units))(x)

    def batch_norm(self, x):
        return self._module(lambda: self.torch.nn.BatchNorm2d(x.shape[1]))(x)

    def avg_pool2d(self, x, *, kernel_size):
        return self.torch.nn.functional.avg_pool2d(x, kernel_size)

    def max_pool2d(self, x, *, kernel_size):
        return self.torch.nn.functional.max_pool2d(x, kernel_size)

    def global_avg_pool2d(self, x):
        return x.mean(dim=(2, 3))

    def flatten(self, x):
        return x.flatten(1)

    def tanh(self, x):
        return self.torch.tanh(x)

    def relu(self, x):
        return self.torch.relu(x)

    def add(self, a, b):
        return a + b


def torch_model(model_name: str):
    import torch  # noqa: PLC0415 - PyTorch is for make bench only

    _, shape, build = MODELS[model_name]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList()
            with torch.no_grad():  # a first pass creates the modules in order
                build(_TorchGraph(torch, self.layers), torch.zeros(2, *shape))

        def forward(self, x):
            return build(_TorchGraph(torch, self.layers), x)

    return Net()


def make_batches(model_name: str, batch: int, batches: int = 4):
    shape = MODELS[model_name][1]
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(batch * batches, *shape)).astype(numpy.float32)
    y = rng.integers(0, CLASSES, size=batch * batches).astype(numpy.int64)
    return [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(batches)]


def engine_step_factory(model_name: str, batches, device: str = "cpu"):
    """A training step; on the GPU the batches live there and each step ends with a device
    synchronisation, so that the time is the GPU's work, not its queueing."""
    xp = get_xp(device)
    model = engine.Model(engine_spec(model_name), device=device)
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
    model = torch_model(model_name)
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


# -- one side of a row, in its own process ---------------------------------------------------------
def memory_status() -> dict[str, int]:
    with open("/proc/self/status") as handle:
        fields = dict(line.split(":", 1) for line in handle if line.startswith(("VmRSS", "VmHWM")))
    return {key: int(value.split()[0]) * 1024 for key, value in fields.items()}


def set_side_threads(framework: str, threads: str) -> int:
    """Apply the thread setting in this process; returns the thread count in force."""
    if framework == "engine":
        parallel.set_threads(None if threads == "default" else int(threads))
        return parallel.thread_count()
    import torch  # noqa: PLC0415

    if threads != "default":
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


WARM_UP_BATCH = 2


def warm_up(step) -> None:
    """Two steps of the same model at batch WARM_UP_BATCH, before the memory baseline, on both sides
    alike: what a framework loads or generates once per process (PyTorch's libraries and its
    lazily built kernels, the engine's numba and the kernels it compiles on first use) is code, not
    a training step's memory; the step's activations, gradients and work arrays are what the peak
    above the baseline measures."""
    step(0)
    step(1)
    gc.collect()


def steps_per_second(step) -> float:
    """Training steps per second of one timed trial of about TRIAL_SECONDS (after a warm-up step)."""
    step(0)
    count, start = 1, time.perf_counter()
    while True:
        step(count)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= TRIAL_SECONDS and count > 3:
            return (count - 1) / elapsed


def child(framework: str, model_name: str, batch: int, threads: str) -> None:
    """Serve one side of a row over stdin/stdout: first a line with the thread count and the peak
    memory of building and training MEMORY_STEPS steps, then one line of steps/s per 'trial' read."""
    threads_in_force = set_side_threads(framework, threads)
    warm_up(FACTORIES[framework](model_name, make_batches(model_name, WARM_UP_BATCH)))
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current resident size
    before = memory_status()["VmRSS"]
    step = FACTORIES[framework](model_name, make_batches(model_name, batch))
    for i in range(MEMORY_STEPS):
        step(i)
    peak = memory_status()["VmHWM"] - before
    print(json.dumps({"threads": threads_in_force, "peak_bytes": peak}), flush=True)
    for line in sys.stdin:
        if line.strip() != "trial":
            break
        print(json.dumps({"steps_per_second": steps_per_second(step)}), flush=True)


class BenchChild:
    """One side of a bench row in a fresh process of its own, ``python -m <module> --child
    <arguments>``: its first line of JSON is ``info``; ``trial()`` asks it for one timed trial and
    returns that trial's JSON. (The CNN, recurrent and engine benches all run their sides so.)"""

    def __init__(self, module: str, arguments: list[str]):
        self.process = subprocess.Popen([sys.executable, "-m", module, "--child", *arguments],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench child exited with status {self.process.wait()}")
        return json.loads(line)

    def trial(self) -> dict:
        self.process.stdin.write("trial\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def interleaved_trials(sides: dict[str, BenchChild], trials: int) -> dict[str, list[dict]]:
    """``trials`` rounds of one trial of each side, the order turned round every round (a, b, then
    b, a, ...), so that a drift of the machine's speed weighs on both alike; every side closed after."""
    try:
        results = {key: [] for key in sides}
        for index in range(trials):
            for key in (list(sides) if index % 2 == 0 else list(reversed(sides))):
                results[key].append(sides[key].trial())
        return results
    finally:
        for side in sides.values():
            side.close()


def paired_ratio(ours: list[float], theirs: list[float]) -> tuple[float, float, float]:
    """The median, lowest and highest of the rounds' ratios ours[i] / theirs[i]. A round's two trials
    run back to back, so each ratio compares the two sides at the same moment of the machine, whose
    speed drifts by up to 2x over seconds on a shared virtual machine; a ratio of medians could pair
    a fast moment of one side with a slow one of the other."""
    ratios = sorted(a / b for a, b in zip(ours, theirs))
    return statistics.median(ratios), ratios[0], ratios[-1]


def summarize_row(sides: dict[str, BenchChild], trials: dict[str, list[dict]],
                  medians: tuple[str, ...] = ("steps_per_second",)) -> dict:
    """Per side, its thread count, peak memory and the median of each of ``medians`` over its
    trials; and "ratio", the engine's steps/s over PyTorch's by ``paired_ratio``."""
    row = {framework: {"threads": side.info["threads"], "peak_bytes": side.info["peak_bytes"],
                       **{key: statistics.median(t[key] for t in trials[framework]) for key in medians}}
           for framework, side in sides.items()}
    speeds = {framework: [t["steps_per_second"] for t in trials[framework]] for framework in ("engine", "pytorch")}
    return {**row, "ratio": paired_ratio(speeds["engine"], speeds["pytorch"])}


def measure_row(model_name: str, batch: int, threads: str) -> dict:
    """Both sides of one row: thread counts, median steps/s of interleaved trials, peak memory."""
    sides = {framework: BenchChild("tests.bench.cnn_bench", [framework, model_name, str(batch), threads])
             for framework in FACTORIES}
    return summarize_row(sides, interleaved_trials(sides, TRIALS))


# -- the GPU row ----------------------------------------------------------------------------------------
GPU_MODEL = "vgg"
GPU_BATCH = 256
GPU_TARGET = 0.5


def gpu_table() -> int:
    """The VGG-style net at batch 256 on an NVIDIA GPU against PyTorch CUDA; 1 when its target is missed."""
    import torch  # noqa: PLC0415

    if not (gpu_available() and torch.cuda.is_available()):
        print(f"\nGPU: not measured: CuPy and a CUDA build of PyTorch do not both see a GPU on this machine "
              f"({MODELS[GPU_MODEL][0]} at batch {GPU_BATCH} against PyTorch CUDA, target >= {GPU_TARGET}x, "
              "runs where they do)")
        return 0
    batches = make_batches(GPU_MODEL, GPU_BATCH)
    steps = {key: factory(GPU_MODEL, batches, device="gpu") for key, factory in FACTORIES.items()}
    speeds = {key: [] for key in steps}
    for _ in range(TRIALS):
        for key, step in steps.items():
            speeds[key].append(steps_per_second(step))
    speed = {key: statistics.median(values) for key, values in speeds.items()}
    ratio = speed["engine"] / speed["pytorch"]
    met = ratio >= GPU_TARGET
    print(f"\nGPU ({torch.cuda.get_device_name()}), {MODELS[GPU_MODEL][0]}, batch {GPU_BATCH}, Adam: engine on CuPy "
          f"{speed['engine']:,.1f} steps/s, PyTorch CUDA {speed['pytorch']:,.1f} steps/s, {ratio:.2f}x "
          f"(target >= {GPU_TARGET}x: {'met' if met else 'MISSED'})")
    return 0 if met else 1


# -- the table --------------------------------------------------------------------------------------------
def main(models=tuple(MODELS), batches=BATCHES, thread_settings=("default", "1")) -> int:
    """Print the table; returns the number of targets missed."""
    print(f"convolutional nets, training steps/s: engine against PyTorch CPU, each in a fresh process per row, "
          f"{TRIALS} rounds of one {TRIAL_SECONDS:.0f} s trial each, in turn; ratio = median of the rounds' ratios "
          f"(lowest-highest), steps/s = medians; peak memory = resident-set peak of "
          f"building and training {MEMORY_STEPS} steps over the imported framework; {len(os.sched_getaffinity(0))} "
          f"usable cores. Targets: steps/s >= {SPEED_TARGET:.1f}x, memory <= {MEMORY_TARGET:.1f}x\n")
    header = (f"{'model':42} {'batch':>5} {'threads':>7} {'engine/s':>9} {'torch/s':>9} {'ratio':>6} {'range':>9} "
              f"{'engine MiB':>10} {'torch MiB':>9} {'mem':>5}  targets")
    print(header)
    print("-" * len(header), flush=True)
    missed = 0
    for model_name in models:
        for batch in batches:
            for threads in thread_settings:
                row = measure_row(model_name, batch, threads)
                ours, theirs = row["engine"], row["pytorch"]
                ratio, lowest, highest = row["ratio"]
                memory = ours["peak_bytes"] / max(theirs["peak_bytes"], 1)
                fast, lean = ratio >= SPEED_TARGET, memory <= MEMORY_TARGET
                missed += (not fast) + (not lean)
                thread_column = (str(ours["threads"]) if ours["threads"] == theirs["threads"]
                                 else f"{ours['threads']}/{theirs['threads']}")
                print(f"{MODELS[model_name][0]:42} {batch:5} {thread_column:>7} {ours['steps_per_second']:9.1f} "
                      f"{theirs['steps_per_second']:9.1f} {ratio:5.2f}x {lowest:4.2f}-{highest:4.2f} "
                      f"{ours['peak_bytes'] / 2**20:10.1f} "
                      f"{theirs['peak_bytes'] / 2**20:9.1f} {memory:4.2f}x  speed {'met' if fast else 'MISSED'}, "
                      f"memory {'met' if lean else 'MISSED'}", flush=True)
    print(f"\n{missed} target(s) missed" if missed else "\nall targets met")
    return missed + gpu_table()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=4, metavar=("FRAMEWORK", "MODEL", "BATCH", "THREADS"),
                        help="serve one side of a row (used by the table itself)")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batches", nargs="*", type=int, default=list(BATCHES))
    parser.add_argument("--threads", nargs="*", default=["default", "1"], help="'default' or a count")
    arguments = parser.parse_args()
    if arguments.child:
        framework, model_name, batch, threads = arguments.child
        child(framework, model_name, int(batch), threads)
        sys.exit(0)
    sys.exit(1 if main(arguments.models, arguments.batches, arguments.threads) else 0)
