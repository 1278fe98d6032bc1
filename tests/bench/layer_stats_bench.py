"""Per-layer statistics' cost to training: the training loop's throughput (``Trainer.run``,
samples a second, wall clock) with statistics sampled at the default rate (``LayerStatsOptions()``,
what a worker uses by default) against the same training without them. Target: >= 0.95x, for an
MLP on digits (small, fast steps: the per-step bookkeeping shows), the zoo's small CNN (convolutions,
batch norm: many activations for each sample's histograms) and a chain of 1,000 nodes (the per-node work).

Each run trains for a few seconds and a few hundred steps, past the first sample's step. Rounds
interleave (without, with, without, ...) so a busy moment weighs on both; each ratio is the median
of the rounds'; the share of the time the sampler measured itself taking is printed beside it.
Run alone: ``python -m tests.bench.layer_stats_bench``."""

from __future__ import annotations

import statistics
import sys
import time

import numpy

from engine import data, zoo
from engine.layer_stats import LayerStatsOptions
from engine.trainer import TrainConfig, Trainer

TARGET = 0.95
ROUNDS = 3


def chain_spec(nodes: int) -> dict:
    layers, previous = [], "x"
    for index in range((nodes - 1) // 2):
        layers.append({"id": f"fc{index}", "op": "dense", "params": {"units": 16}, "inputs": {"x": previous}})
        layers.append({"id": f"act{index}", "op": "tanh", "inputs": {"x": f"fc{index}"}})
        previous = f"act{index}"
    layers.append({"id": "loss", "op": "mse", "inputs": {"prediction": previous, "target": "y"}})
    return {"format": "netforge.graph/1",
            "inputs": {"x": {"shape": [None, 16], "dtype": "float32"}, "y": {"shape": [None, 16], "dtype": "float32"}},
            "nodes": layers, "outputs": {"prediction": previous}, "loss": "loss"}


def cases() -> list[tuple[str, dict, data.Dataset, dict]]:
    rng = numpy.random.default_rng(0)
    images = data.Dataset(arrays={"x": rng.normal(size=(4096, 1, 8, 8)).astype(numpy.float32),
                                  "y": rng.integers(0, 10, size=4096).astype(numpy.int64)},
                          task="classification", name="noise images", num_classes=10)
    rows = data.Dataset(arrays={"x": rng.normal(size=(1536, 16)).astype(numpy.float32),
                                "y": rng.normal(size=(1536, 16)).astype(numpy.float32)},
                        task="regression", name="noise rows")
    return [
        ("MLP on digits, batch 32", zoo.load("mlp"), data.load_builtin("digits", seed=0),
         {"epochs": 60, "batch_size": 32}),
        ("small CNN, 8x8, batch 64", zoo.load("small_cnn"), images, {"epochs": 3, "batch_size": 64}),
        ("1,000-node chain, batch 8", chain_spec(1001), rows, {"epochs": 1, "batch_size": 8}),
    ]


def throughput(spec: dict, dataset: data.Dataset, options: dict, *, with_stats: bool) -> tuple[float, int, float]:
    """Samples a second, samples of statistics taken, and the share of the time they took."""
    config = TrainConfig(validation_fraction=0, train_metrics=False, **options)
    trainer = Trainer(spec, dataset, config=config)
    sampler = trainer.watch_layers(LayerStatsOptions()) if with_stats else None
    started = time.perf_counter()
    trainer.run()
    elapsed = time.perf_counter() - started
    taken, spent = (sampler.samples_taken, sampler.seconds_spent) if sampler else (0, 0.0)
    return len(dataset) * config.epochs / elapsed, taken, spent / elapsed


def main() -> int:
    defaults = LayerStatsOptions()
    print(f"per-layer statistics at the default rate (every {defaults.every_steps} steps, at most one in "
          f"{defaults.min_seconds:g} s, at most {defaults.max_overhead:.0%} of the time) against none: training "
          f"throughput, median of {ROUNDS} interleaved rounds")
    missed = []
    for name, spec, dataset, options in cases():
        throughput(spec, dataset, {**options, "epochs": 1}, with_stats=True)  # imports and plans warm
        ratios, without, with_stats, sample_counts, shares = [], [], [], [], []
        for _ in range(ROUNDS):
            plain, _, _ = throughput(spec, dataset, options, with_stats=False)
            sampled, count, share = throughput(spec, dataset, options, with_stats=True)
            without.append(plain)
            with_stats.append(sampled)
            sample_counts.append(count)
            shares.append(share)
            ratios.append(sampled / plain)
        ratio = statistics.median(ratios)
        print(f"  {name:28} without {statistics.median(without):9,.0f} samples/s, with "
              f"{statistics.median(with_stats):9,.0f} samples/s: {ratio:.3f}x (target >= {TARGET}); "
              f"{statistics.median(sample_counts):.0f} samples of statistics a run, taking "
              f"{statistics.median(shares):.1%} of its time")
        if ratio < TARGET:
            missed.append(f"{name}: {ratio:.3f}x")
    if missed:
        print(f"MISSED: {'; '.join(missed)}")
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
