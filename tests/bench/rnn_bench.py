"""Training-step throughput and peak memory of the engine's LSTM against PyTorch CPU's.

The model of both: an LSTM over 28 steps of 28 features (an MNIST image read row by row), hidden
size 128, its last state into a dense layer of 10, softmax cross-entropy, batch 64, Adam, float32.
Throughput is measured like ``engine_bench`` (same threads, interleaved trials, the median).

Peak memory is measured the same way for both: each side runs in a fresh process that builds its
model and batches, notes its resident set size (RSS), resets the kernel's high-water mark
(``/proc/self/clear_refs``), runs 20 training steps and reports the high-water mark minus that
baseline: the memory the training steps needed at their peak, the optimizer's state included, as
the operating system sees it (allocator caches included). For the engine, the peak of the NumPy
array bytes during one step (``tracemalloc``, which NumPy reports its allocations to) is printed
too; PyTorch's CPU allocations are invisible to ``tracemalloc``, so it has no such figure.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tracemalloc

import numpy

import engine
from engine.optimizers import make_optimizer
from tests.bench.engine_bench import THREADS, TRIAL_SECONDS, TRIALS, throughput

STEPS, FEATURES, UNITS, CLASSES, BATCH = 28, 28, 128, 10, 64
MEMORY_STEPS = 20
TARGET = 0.6  # engine samples/s at least this fraction of PyTorch's


def lstm_spec() -> dict:
    g = engine.GraphBuilder()
    x = g.input("x", [None, STEPS, FEATURES])
    y = g.input("y", [None], dtype="int64")
    last = g.lstm(x, units=UNITS, id="lstm")
    logits = g.dense(last, units=CLASSES, id="logits")
    g.loss(g.softmax_cross_entropy(logits, y, id="loss"))
    g.output("prediction", logits)
    return g.to_spec()


def make_data(batches: int = 16):
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(batches * BATCH, STEPS, FEATURES)).astype(numpy.float32)
    y = rng.integers(0, CLASSES, size=batches * BATCH).astype(numpy.int64)
    return [(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]) for i in range(batches)]


def engine_step_factory(batches, lr=1e-3):
    model = engine.Model(lstm_spec())
    optimizer = make_optimizer({"name": "adam", "lr": lr})

    def step(i):
        x, y = batches[i % len(batches)]
        _, _, grads = model.loss_and_grads({"x": x, "y": y})
        optimizer.step(model.params, grads)

    return step


def torch_step_factory(batches, lr=1e-3):
    import torch  # noqa: PLC0415 - a benchmark-only dependency

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(FEATURES, UNITS, batch_first=True)
    head = torch.nn.Linear(UNITS, CLASSES)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def step(i):
        x, y = data[i % len(data)]
        optimizer.zero_grad(set_to_none=True)
        _, (last, _) = lstm(x)
        loss = loss_fn(head(last[-1]), y)
        loss.backward()
        optimizer.step()

    return step


FACTORIES = {"engine": engine_step_factory, "pytorch": torch_step_factory}


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_memory(side: str) -> dict:
    """Run in a fresh process: peak RSS growth over MEMORY_STEPS steps (and tracemalloc's peak)."""
    import torch  # noqa: PLC0415

    torch.set_num_threads(THREADS)
    step = FACTORIES[side](make_data())
    baseline = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # reset VmHWM to the current RSS
    for i in range(MEMORY_STEPS):
        step(i)
    result = {"rss_peak_mib": (_rss_kib("VmHWM") - baseline) / 1024}
    if side == "engine":
        tracemalloc.start()
        step(0)
        result["arrays_peak_mib"] = tracemalloc.get_traced_memory()[1] / 1024**2
        tracemalloc.stop()
    return result


def memory_in_fresh_process(side: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "tests.bench.rnn_bench", "--memory", side],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    import torch  # noqa: PLC0415

    torch.set_num_threads(THREADS)
    batches = make_data()
    steps = {side: factory(batches) for side, factory in FACTORIES.items()}
    samples = {side: [] for side in steps}
    for _ in range(TRIALS):
        for side, step in steps.items():
            samples[side].append(throughput(step, BATCH))
    speed = {side: statistics.median(values) for side, values in samples.items()}
    memory = {side: memory_in_fresh_process(side) for side in steps}
    ratio = speed["engine"] / speed["pytorch"]
    print(f"rnn bench: LSTM classifier ({STEPS} steps x {FEATURES} features, hidden {UNITS}, last state -> "
          f"dense {CLASSES}, batch {BATCH}, Adam, float32), {THREADS} threads; median of {TRIALS} interleaved "
          f"trials of {TRIAL_SECONDS:.0f} s\n")
    header = f"{'':10} {'samples/s':>10} {'peak RSS growth':>16} {'peak array bytes':>17}"
    print(header)
    print("-" * len(header))
    for side in steps:
        arrays = memory[side].get("arrays_peak_mib")
        print(f"{side:10} {speed[side]:10,.0f} {memory[side]['rss_peak_mib']:12.1f} MiB "
              f"{'' if arrays is None else f'{arrays:13.1f} MiB':>17}")
    met = ratio >= TARGET
    print(f"\nengine / pytorch = {ratio:.2f}x (target >= {TARGET:.1f}x: {'met' if met else 'MISSED'})")
    print(f"peak RSS growth: over {MEMORY_STEPS} training steps in a fresh process, above the RSS after building "
          f"the model and batches; peak array bytes: tracemalloc's peak over one engine step")
    return 0 if met else 1  # make bench's status counts a missed target, as cnn_bench's does


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory":
        print(json.dumps(measure_memory(sys.argv[2])))
    else:
        sys.exit(main())
