"""Dataset conversion and reading (issue 13): an 80 MB / 200k-row CSV converted, a zip of 60,000
28x28 PNGs converted, and training epochs on the memory-mapped store against in-memory arrays.

Each conversion runs in a fresh process, as the worker's child does (``engine.data.convert`` then
``engine.data.store.write_store``); its time excludes imports, its peak RSS (``ru_maxrss``)
includes them. The training comparison interleaves the epochs of two trainers of an MLP, one on
arrays (standardized once, up front) and one on the memory-mapped store (``open_store``: each
batch's rows read, standardized and converted as it is taken), so it measures the trainer's path.
"""

from __future__ import annotations

import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy

CSV_ROWS = 200_000
CSV_FEATURES = 40
IMAGES = 60_000
TARGETS = {"csv_seconds": 1.5, "csv_peak_mb": 400, "zip_seconds": 30.0, "memmap_ratio": 0.95}
TRIALS = 5


def write_csv(path: Path) -> None:
    """200k rows of 40 float features and an integer class: about 80 MB."""
    rng = numpy.random.default_rng(0)
    with path.open("w") as handle:
        handle.write(",".join(f"f{index}" for index in range(CSV_FEATURES)) + ",label\n")
        for _ in range(0, CSV_ROWS, 20_000):
            block = rng.normal(size=(20_000, CSV_FEATURES))
            labels = rng.integers(0, 10, size=20_000)
            numpy.savetxt(handle, numpy.column_stack([block, labels]), delimiter=",",
                          fmt=["%.6f"] * CSV_FEATURES + ["%d"])


def write_image_zip(path: Path) -> None:
    """60,000 28x28 grayscale PNGs in ten class folders (MNIST's shape)."""
    from PIL import Image  # noqa: PLC0415

    rng = numpy.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for index in range(IMAGES):
            pixels = rng.integers(0, 256, size=(28, 28), dtype=numpy.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(buffer, format="PNG", compress_level=1)
            archive.writestr(f"digits/{index % 10}/{index:05d}.png", buffer.getvalue())


def convert_here(path: str, file_format: str, options: str) -> None:
    """In the measuring child: convert and store, then print seconds and peak RSS as JSON."""
    import pyarrow.csv  # noqa: F401, PLC0415 - imported before the clock, as the worker's child does
    from PIL import Image  # noqa: F401, PLC0415

    from engine.data.convert import convert_file  # noqa: PLC0415
    from engine.data.limits import Limits  # noqa: PLC0415
    from engine.data.store import write_store  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        dataset = convert_file(Path(path), file_format=file_format, options=json.loads(options), limits=Limits(),
                               work_folder=folder)
        write_store(dataset, Path(folder) / "store")
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_bytes": peak, "rows": len(dataset),
                      "shape": list(dataset.arrays["x"].shape)}))


def measure_conversion(path: Path, file_format: str, options: dict, *, runs: int) -> dict:
    """The median time and the largest peak RSS of ``runs`` conversions, each in a fresh process."""
    results = []
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-m", "tests.bench.datasets_bench", "--convert", str(path),
                                 file_format, json.dumps(options)], capture_output=True, text=True, check=True)
        results.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {**results[0], "seconds": statistics.median(r["seconds"] for r in results),
            "peak_bytes": max(r["peak_bytes"] for r in results), "runs": runs}


def training_throughput(folder: Path) -> tuple[float, float]:
    """Median rows/s of a training epoch (the ``Trainer``: inputs standardized, MLP steps) on
    in-memory arrays and on the memmap store, whose rows the trainer reads, standardizes and
    converts a batch at a time; the two trainers take their epochs in turn."""
    from engine.data import from_arrays  # noqa: PLC0415
    from engine.data.store import is_mapped, open_store, write_store  # noqa: PLC0415
    from engine.trainer import Trainer  # noqa: PLC0415
    from tests.bench.engine_bench import mlp_spec  # noqa: PLC0415

    rng = numpy.random.default_rng(0)
    rows = 60_000
    memory = from_arrays(rng.normal(size=(rows, 784)).astype(numpy.float32), rng.integers(0, 10, size=rows),
                         task="classification")
    write_store(memory, folder / "store")
    mapped = open_store(folder / "store")
    assert is_mapped(mapped.arrays["x"])
    options = {"epochs": 1, "batch_size": 128, "validation_fraction": 0.0, "train_metrics": False, "seed": 0}
    trainers = {name: Trainer(mlp_spec([784, 128, 10]), dataset, config=options)
                for name, dataset in (("memory", memory), ("store", mapped))}
    speeds: dict[str, list[float]] = {name: [] for name in trainers}
    for trial in range(TRIALS + 1):  # the first epoch warms up: the store's pages into the page cache
        for name, trainer in trainers.items():
            trainer.config.epochs = trial + 1
            trainer.run()
            if trial:
                speeds[name].append(trainer.history[-1]["samples_per_second"])
    return statistics.median(speeds["memory"]), statistics.median(speeds["store"])


def main() -> int:
    missed = 0
    with tempfile.TemporaryDirectory(prefix="netforge-datasets-bench-") as folder:
        folder = Path(folder)
        csv_path = folder / "big.csv"
        write_csv(csv_path)
        size_mb = csv_path.stat().st_size / 1e6
        csv = measure_conversion(csv_path, "csv", {"target": "label"}, runs=3)
        ok_time, ok_peak = csv["seconds"] <= TARGETS["csv_seconds"], csv["peak_bytes"] / 2**20 <= TARGETS["csv_peak_mb"]
        missed += (not ok_time) + (not ok_peak)
        print(f"CSV {size_mb:.0f} MB, {csv['rows']:,} rows x {CSV_FEATURES} features converted: {csv['seconds']:.2f} s "
              f"(median of {csv['runs']} processes) "
              f"(target <= {TARGETS['csv_seconds']} s: {'met' if ok_time else 'MISSED'}), peak RSS "
              f"{csv['peak_bytes'] / 2**20:.0f} MB (target <= {TARGETS['csv_peak_mb']} MB: "
              f"{'met' if ok_peak else 'MISSED'})", flush=True)
        zip_path = folder / "digits.zip"
        started = time.perf_counter()
        write_image_zip(zip_path)
        made = time.perf_counter() - started
        images = measure_conversion(zip_path, "zip", {}, runs=1)
        ok_zip = images["seconds"] <= TARGETS["zip_seconds"]
        missed += not ok_zip
        print(f"zip of {IMAGES:,} 28x28 PNGs ({zip_path.stat().st_size / 1e6:.0f} MB, made in {made:.0f} s) converted: "
              f"{images['seconds']:.1f} s (target <= {TARGETS['zip_seconds']:.0f} s: {'met' if ok_zip else 'MISSED'}), "
              f"x {images['shape']}, peak RSS {images['peak_bytes'] / 2**20:.0f} MB", flush=True)
        from_memory, from_store = training_throughput(folder)
        ratio = from_store / from_memory
        ok_ratio = ratio >= TARGETS["memmap_ratio"]
        missed += not ok_ratio
        print(f"MLP 784-128-10 training epochs (standardized), batch 128: {from_memory:,.0f} rows/s from arrays, "
              f"{from_store:,.0f} "
              f"rows/s from the memory-mapped store: {ratio:.2f}x (target >= {TARGETS['memmap_ratio']}x: "
              f"{'met' if ok_ratio else 'MISSED'})", flush=True)
    print(f"\n{missed} target(s) missed" if missed else "\nall targets met")
    return 1 if missed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--convert":
        convert_here(*sys.argv[2:5])
        sys.exit(0)
    sys.exit(main())
