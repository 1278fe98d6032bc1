"""Recurrent training steps of the engine against PyTorch CPU (an LSTM and a GRU classifier), at the
machine's default thread count and at one thread: training steps per second, their ratio by wall
clock and by CPU time, and the peak memory of training. ``transformer_bench`` uses the same table.

The models: an LSTM (or GRU) over 28 steps of 28 features (an MNIST image read row by row), hidden
size 128, its last state into a dense layer of 10, softmax cross-entropy; Adam (lr 1e-3), synthetic
data and float32 on both sides, batches of 32 and 128.

Each side runs in a fresh process of its own, kept for the trials of one row so that they can
interleave in rounds (engine then PyTorch, then PyTorch then engine, ...); the ratio is the median
of the rounds' ratios (``cnn_bench.paired_ratio``), printed with their range. The thread count is set in that
process before the model is built (``engine.parallel.set_threads``, ``torch.set_num_threads``);
"default" is each framework's own default (the usable cores for the engine). The machine may be
shared with other work, which skews wall-clock ratios; the CPU-time ratio (PyTorch's CPU seconds per
step over the engine's, ``time.process_time`` of all the process's threads) is printed beside it.

Peak memory is the same measure for both, whatever allocator holds it: after importing its
framework and training the same model two steps at batch 2 (``cnn_bench.warm_up``: PyTorch's
libraries, numba and the kernels the engine compiles on first use are code, not a step's memory),
the process resets the kernel's resident-set high-water mark (``/proc/self/clear_refs``), builds the model and
the data, trains a few steps, and reports the peak resident size minus the resident size before
building (``VmHWM - VmRSS``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time

import numpy

import engine
from engine.optimizers import make_optimizer
from tests.bench.cnn_bench import (
    WARM_UP_BATCH,
    BenchChild,
    interleaved_trials,
    memory_status,
    set_side_threads,
    summarize_row,
    warm_up,
)

TRIALS = 5
TRIAL_SECONDS = 1.0
MEMORY_STEPS = 5
BATCHES = (32, 128)
SPEED_TARGET = 1.0  # engine steps/s over PyTorch's, at least
MEMORY_TARGET = 1.5  # engine peak memory over PyTorch's, at most
STEPS, FEATURES, UNITS, CLASSES = 28, 28, 128, 10


# -- the models ---------------------------------------------------------------------------------------
def _recurrent_engine(op_name: str):
    def build(g, x):
        return g.dense(g.node(op_name, x, units=UNITS, id=op_name), units=CLASSES, id="logits")
    return build


def _recurrent_torch(module_name: str):
    def build():
        import torch  # noqa: PLC0415 - PyTorch is for make bench only

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.recurrent = getattr(torch.nn, module_name)(FEATURES, UNITS, batch_first=True)
                self.head = torch.nn.Linear(UNITS, CLASSES)

            def forward(self, x):
                _, last = self.recurrent(x)
                last = last[0] if isinstance(last, tuple) else last  # the LSTM's (h, c)
                return self.head(last[-1])

        return Net()
    return build


# name: (title, input shape, engine builder g, x -> logits, PyTorch module factory)
MODELS = {
    "lstm": (f"LSTM {STEPS}x{FEATURES}, hidden {UNITS} -> dense {CLASSES}", (STEPS, FEATURES),
             _recurrent_engine("lstm"), _recurrent_torch("LSTM")),
    "gru": (f"GRU {STEPS}x{FEATURES}, hidden {UNITS} -> dense {CLASSES}", (STEPS, FEATURES),
            _recurrent_engine("gru"), _recurrent_torch("GRU")),
}


def engine_spec(models: dict, model_name: str) -> dict:
    _, shape, build, _ = models[model_name]
    g = engine.GraphBuilder()
    logits = build(g, g.input("x", [None, *shape]))
    g.loss(g.softmax_cross_entropy(logits, g.input("y", [None], dtype="int64"), id="loss"))
    g.output("prediction", logits)
    return g.to_spec()


def make_batches(shape: tuple, batch: int, batches: int = 4):
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(batch * batches, *shape)).astype(numpy.float32)
    y = rng.integers(0, CLASSES, size=batch * batches).astype(numpy.int64)
    return [(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]) for i in range(batches)]


def engine_step_factory(models: dict, model_name: str, batches):
    model = engine.Model(engine_spec(models, model_name))
    optimizer = make_optimizer({"name": "adam", "lr": 1e-3})

    def step(i):
        x, y = batches[i % len(batches)]
        _, _, grads = model.loss_and_grads({"x": x, "y": y})
        optimizer.step(model.params, grads)

    return step


def torch_step_factory(models: dict, model_name: str, batches):
    import torch  # noqa: PLC0415

    torch.manual_seed(0)
    model = models[model_name][3]()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def step(i):
        x, y = data[i % len(data)]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


FACTORIES = {"engine": engine_step_factory, "pytorch": torch_step_factory}


# -- one side of a row, in its own process -------------------------------------------------------------
def timed_trial(step) -> dict:
    """Steps per second of wall clock and CPU seconds per step, over about TRIAL_SECONDS (after a
    warm-up step)."""
    step(0)
    count, start, cpu_start = 1, time.perf_counter(), time.process_time()
    while True:
        step(count)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= TRIAL_SECONDS and count > 3:
            return {"steps_per_second": (count - 1) / elapsed,
                    "cpu_per_step": (time.process_time() - cpu_start) / (count - 1)}


def child(models: dict, framework: str, model_name: str, batch: int, threads: str) -> None:
    """Serve one side of a row over stdin/stdout: first a line with the thread count and the peak
    memory of building and training MEMORY_STEPS steps, then one line per 'trial' read."""
    threads_in_force = set_side_threads(framework, threads)
    warm_up(FACTORIES[framework](models, model_name, make_batches(models[model_name][1], WARM_UP_BATCH)))
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current resident size
    before = memory_status()["VmRSS"]
    step = FACTORIES[framework](models, model_name, make_batches(models[model_name][1], batch))
    for i in range(MEMORY_STEPS):
        step(i)
    peak = memory_status()["VmHWM"] - before
    print(json.dumps({"threads": threads_in_force, "peak_bytes": peak}), flush=True)
    for line in sys.stdin:
        if line.strip() != "trial":
            break
        print(json.dumps(timed_trial(step)), flush=True)


def measure_row(module: str, model_name: str, batch: int, threads: str) -> dict:
    """Both sides of one row: thread counts, medians of interleaved trials, peak memory."""
    sides = {framework: BenchChild(module, [framework, model_name, str(batch), threads]) for framework in FACTORIES}
    return summarize_row(sides, interleaved_trials(sides, TRIALS), medians=("steps_per_second", "cpu_per_step"))


def table(module: str, models: dict, what: str, model_names, batches, thread_settings) -> int:
    """Print the table of ``models``; returns the number of targets missed (the wall-clock speed
    ratio and the memory ratio of each row)."""
    print(f"{what}, training steps/s: engine against PyTorch CPU, each in a fresh process per row, {TRIALS} rounds "
          f"of one {TRIAL_SECONDS:.0f} s trial each, in turn; ratio = median of the rounds' ratios (lowest-highest), "
          f"steps/s = medians; cpu = ratio of median CPU seconds per step (PyTorch's "
          f"over the engine's); peak memory = resident-set peak of building and training {MEMORY_STEPS} steps over "
          f"the framework, imported and warmed up at batch {WARM_UP_BATCH}; {len(os.sched_getaffinity(0))} usable "
          f"cores. Targets: steps/s >= "
          f"{SPEED_TARGET:.1f}x, memory <= {MEMORY_TARGET:.1f}x\n")
    header = (f"{'model':40} {'batch':>5} {'threads':>7} {'engine/s':>9} {'torch/s':>9} {'ratio':>6} {'range':>9} "
              f"{'cpu':>6} "
              f"{'engine MiB':>10} {'torch MiB':>9} {'mem':>5}  targets")
    print(header)
    print("-" * len(header), flush=True)
    missed = 0
    for model_name in model_names:
        for batch in batches:
            for threads in thread_settings:
                row = measure_row(module, model_name, batch, threads)
                ours, theirs = row["engine"], row["pytorch"]
                ratio, lowest, highest = row["ratio"]
                cpu_ratio = theirs["cpu_per_step"] / ours["cpu_per_step"]
                memory = ours["peak_bytes"] / max(theirs["peak_bytes"], 1)
                fast, lean = ratio >= SPEED_TARGET, memory <= MEMORY_TARGET
                missed += (not fast) + (not lean)
                thread_column = (str(ours["threads"]) if ours["threads"] == theirs["threads"]
                                 else f"{ours['threads']}/{theirs['threads']}")
                print(f"{models[model_name][0]:40} {batch:5} {thread_column:>7} {ours['steps_per_second']:9.1f} "
                      f"{theirs['steps_per_second']:9.1f} {ratio:5.2f}x {lowest:4.2f}-{highest:4.2f} {cpu_ratio:5.2f}x "
                      f"{ours['peak_bytes'] / 2**20:10.1f} {theirs['peak_bytes'] / 2**20:9.1f} {memory:4.2f}x  "
                      f"speed {'met' if fast else 'MISSED'}, memory {'met' if lean else 'MISSED'}", flush=True)
    print(f"\n{missed} target(s) missed" if missed else "\nall targets met")
    return missed


def command_line(module: str, what: str) -> int:
    """``python -m <module>``: the table of the module's MODELS (or, with --child, one side of a row)."""
    models = importlib.import_module(module).MODELS
    parser = argparse.ArgumentParser(description=what)
    parser.add_argument("--child", nargs=4, metavar=("FRAMEWORK", "MODEL", "BATCH", "THREADS"),
                        help="serve one side of a row (used by the table itself)")
    parser.add_argument("--models", nargs="*", default=list(models), choices=list(models))
    parser.add_argument("--batches", nargs="*", type=int, default=list(BATCHES))
    parser.add_argument("--threads", nargs="*", default=["default", "1"], help="'default' or a count")
    arguments = parser.parse_args()
    if arguments.child:
        framework, model_name, batch, threads = arguments.child
        child(models, framework, model_name, int(batch), threads)
        return 0
    return 1 if table(module, models, what, arguments.models, arguments.batches, arguments.threads) else 0


if __name__ == "__main__":
    sys.exit(command_line("tests.bench.rnn_bench", "recurrent nets (LSTM, GRU)"))
