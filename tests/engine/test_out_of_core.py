"""Training on a memory-mapped store without loading it: the split selects rows lazily, the
standardizer is fitted in a streaming pass, batches are standardized one at a time, and the result
is the same, bit for bit, as training on the arrays in memory. A child process trains on a store
twice the size of the memory it may allocate."""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy
import pytest

from engine import data, inference
from engine.data import standardizer as standardizer_module
from engine.data import store as store_module
from engine.data.dataset import RowSelection
from engine.data.store import is_mapped, open_store, write_store
from engine.errors import DataError, EngineError
from engine.graph import GraphBuilder
from engine.ops import _numba
from engine.trainer import Trainer

REPOSITORY = Path(__file__).parents[2]


def mlp(features: int, classes: int, hidden: int = 16) -> dict:
    g = GraphBuilder()
    x, y = g.input("x", [None, features]), g.input("y", [None], dtype="int64")
    g.loss(g.softmax_cross_entropy(g.dense(g.relu(g.dense(x, units=hidden)), units=classes), y))
    return g.to_spec()


def test_a_split_selects_rows_without_copying_them(tmp_path):
    write_store(data.load_builtin("digits"), tmp_path)
    stored = open_store(tmp_path)
    train, validation = stored.split(0.25, seed=1)
    assert isinstance(train.arrays["x"], RowSelection) and is_mapped(train.arrays["x"])
    assert len(train) + len(validation) == len(stored) and train.arrays["x"].shape == (len(train), 64)
    expected_train, expected_validation = data.load_builtin("digits").split(0.25, seed=1)
    assert numpy.array_equal(numpy.asarray(train.arrays["x"]), numpy.asarray(expected_train.arrays["x"]))
    assert numpy.array_equal(validation.arrays["y"][3:9], numpy.asarray(expected_validation.arrays["y"])[3:9])
    rows = numpy.array([5, 0, 7])
    assert numpy.array_equal(train.arrays["x"][rows], numpy.asarray(train.arrays["x"])[rows])
    assert numpy.array_equal(train.arrays["x"][2, 3:5], numpy.asarray(train.arrays["x"])[2, 3:5])


def test_the_streaming_standardizer_agrees_with_the_whole_array_statistics(monkeypatch):
    rng = numpy.random.default_rng(0)
    values = (rng.normal(size=(5000, 3, 4)) * [[1e-3], [1.0], [1e3]] + [[5.0], [-2.0], [1e4]]).astype(numpy.float32)
    values[:, 0, 0] = 7.0  # a constant feature: centred, not scaled
    monkeypatch.setattr(standardizer_module, "CHUNK_BYTES", 4096)  # 42 rows a chunk: 120 chunks merged
    fitted = data.Standardizer().fit(values)
    whole = values.astype(numpy.float64)
    assert numpy.allclose(fitted.mean, whole.mean(axis=0), rtol=1e-12, atol=1e-9)
    expected_std = numpy.where(whole.std(axis=0) < 1e-6, 1.0, whole.std(axis=0))
    assert numpy.allclose(fitted.std, expected_std, rtol=1e-9) and fitted.std[0, 0] == 1.0


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("row_shape, axes", [((7,), (0,)), ((3, 4, 5), (0, 2, 3))])
def test_a_one_pass_gather_equals_gathering_then_standardizing(tmp_path, monkeypatch, compiled, row_shape, axes):
    monkeypatch.setattr(_numba, "ENABLED", compiled)
    rng = numpy.random.default_rng(3)
    values = (rng.normal(size=(50, *row_shape)) * 3 + 1).astype(numpy.float32)
    write_store(data.from_arrays(values, rng.integers(0, 2, size=50), task="classification"), tmp_path)
    mapped = open_store(tmp_path).arrays["x"]
    fitted = data.Standardizer().fit(values, axes=axes)
    rows = numpy.array([49, 0, 7, 7, -1, 23])
    gathered = fitted.gather_float32(mapped, rows)
    assert gathered.dtype == numpy.float32 and gathered.shape == (6, *row_shape)
    assert numpy.array_equal(gathered, fitted.transform_float32(values[rows]))
    selection = RowSelection(mapped, numpy.arange(49, -1, -2))  # a lazy split's rows of the store
    picked = numpy.array([24, 0, 7, -1])
    assert numpy.array_equal(fitted.gather_float32(selection, picked),
                             fitted.transform_float32(values[numpy.arange(49, -1, -2)][picked]))
    assert numpy.array_equal(fitted.gather_float32(mapped, rows[:0]), values[:0])
    with pytest.raises((DataError, IndexError), match="out of range|out of bounds"):
        fitted.gather_float32(mapped, numpy.array([0, 50]))


def test_a_store_is_read_ahead_on_a_thread_only_where_its_pages_are_not_in_the_page_cache(tmp_path):
    # A real cold store: the synced files dropped from the page cache (posix_fadvise DONTNEED).
    digits = data.load_builtin("digits")
    write_store(digits, tmp_path)
    threads = []
    trainer = Trainer(mlp(64, 10), open_store(tmp_path), config={"epochs": 1, "batch_size": 64, "seed": 0})
    trainer.on("batch_end", lambda event: threads.append(
        {thread.name for thread in threading.enumerate() if thread.name.startswith("netforge-read-ahead")}))
    stored_x = trainer.train_data.arrays["x"]
    mapping = stored_x.base
    while not isinstance(mapping, mmap.mmap):  # the trainer read the features to standardize them:
        mapping = mapping.base  # unmap its pages, so that they can leave the page cache
    mapping.madvise(mmap.MADV_DONTNEED)
    for file in tmp_path.glob("*.npy"):
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    assert store_module.resident_share(stored_x) < 0.5
    trainer.run()
    assert all(threads), "rows read from the disk are read ahead"
    assert store_module.resident_share(stored_x) == 1.0  # the epoch read every row
    threads.clear()
    trainer.config.epochs = 2
    trainer.run()
    assert threads and not any(threads), "rows in the page cache are read in line"
    assert store_module.resident_share(numpy.arange(3)) is None


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_on_a_memory_mapped_store_equals_training_on_arrays(tmp_path, dtype):
    # float32 features take the store's one-pass gather (Standardizer.gather_float32), float64 the
    # gather and then the standardization; both must train bit for bit as the in-memory arrays do.
    digits = data.load_builtin("digits")
    digits = dataclasses.replace(digits, arrays={**digits.arrays, "x": digits.arrays["x"].astype(dtype)})
    write_store(digits, tmp_path)
    stored = open_store(tmp_path)
    options = {"epochs": 2, "batch_size": 64, "seed": 4, "optimizer": {"name": "adam", "lr": 3e-3}}
    from_memory = Trainer(mlp(64, 10), digits, config=options)
    from_store = Trainer(mlp(64, 10), stored, config=options)
    prepared = from_store._prepared(from_store.train_data)
    assert all(is_mapped(array) for array in prepared.values()), "a store's rows are read a batch at a time"
    memory_result, store_result = from_memory.run(), from_store.run()
    for key, value in from_memory.model.state_arrays().items():
        assert numpy.array_equal(value, from_store.model.state_arrays()[key]), key
    timing = {key: memory_result.final[key] for key in ("samples_per_second", "seconds")}
    assert memory_result.final == {**store_result.final, **timing}


# The child: a store of ROWS x FEATURES float32 (384 MiB) trains under RLIMIT_DATA of CAP_MIB more than
# the process had allocated after its imports, half what reading the features whole would take.
ROWS, FEATURES, CAP_MIB = 98_304, 1024, 192
CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy
    from engine.data.store import open_store
    from engine.trainer import Trainer
    from tests.engine.test_out_of_core import CAP_MIB, mlp

    def status(key):
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(key + ":"))

    dataset = open_store(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_DATA, (status("VmData") + CAP_MIB * 2**20, resource.RLIM_INFINITY))
    try:
        numpy.asarray(dataset.arrays["x"]) + 0
        whole = "read"
    except MemoryError:
        whole = "refused"
    start = status("RssAnon")
    peak = [start]
    trainer = Trainer(mlp(dataset.arrays["x"].shape[1], 2, hidden=8), dataset,
                      config={"epochs": 1, "batch_size": 512, "seed": 0, "train_metrics": False,
                              "optimizer": {"name": "adam", "lr": 0.01}})
    trainer.on("batch_end", lambda event: peak.__setitem__(0, max(peak[0], status("RssAnon"))))
    result = trainer.run()
    print(json.dumps({"whole": whole, "status": result.status, "loss": result.final["loss"],
                      "val_loss": result.final["val_loss"], "rss_start": start, "rss_peak": peak[0]}))
""")


def test_a_store_larger_than_the_memory_limit_trains_with_bounded_memory(tmp_path):
    source = numpy.lib.format.open_memmap(tmp_path / "source.npy", mode="w+", dtype=numpy.float32,
                                          shape=(ROWS, FEATURES))
    rng = numpy.random.default_rng(0)
    for start in range(0, ROWS, 8192):
        source[start:start + 8192] = rng.standard_normal((8192, FEATURES), dtype=numpy.float32)
    labels = (numpy.asarray(source[:, 0]) > 0).astype(numpy.int64)  # learnable from the first feature
    source.flush()
    write_store(data.Dataset(arrays={"x": source, "y": labels}, task="binary", name="large"), tmp_path / "store")
    del source
    (tmp_path / "source.npy").unlink()

    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "store")], cwd=REPOSITORY,
                           capture_output=True, text=True, timeout=110, check=False,
                           env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)})
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["whole"] == "refused", "the limit must be too small for the data, or the test proves nothing"
    assert report["status"] == "succeeded" and numpy.isfinite(report["loss"])
    assert report["val_loss"] < 0.6  # chance: ln 2
    grown_mib = (report["rss_peak"] - report["rss_start"]) / 2**20
    data_mib = ROWS * FEATURES * 4 >> 20
    assert grown_mib < CAP_MIB, f"anonymous memory grew {grown_mib:.0f} MiB while training on {data_mib} MiB"


class _CountingRows:
    """A store's array that records how many rows each read took (what Predictor.predict reads)."""

    def __init__(self, array):
        self.array, self.reads = array, []
        self.shape, self.dtype = array.shape, array.dtype

    def __len__(self):
        return len(self.array)

    def __getitem__(self, key):
        rows = self.array[key]
        self.reads.append(len(rows))
        return rows


def test_predictions_over_a_store_read_it_a_chunk_of_rows_at_a_time(tmp_path, monkeypatch):
    # The post-run evaluation predicts a whole split: it must not read (and standardize in float64)
    # a split larger than memory at once, and the chunks must give the predictions of one pass.
    digits = data.load_builtin("digits")
    write_store(digits, tmp_path / "store")
    g = GraphBuilder()
    x, y = g.input("x", [None, 64]), g.input("y", [None], dtype="int64")
    logits = g.dense(g.relu(g.dense(x, units=16)), units=10)
    g.loss(g.softmax_cross_entropy(logits, y))
    g.output("prediction", logits)
    trainer = Trainer(g.to_spec(), digits, config={"epochs": 1, "batch_size": 64, "seed": 0})
    trainer.run()
    trainer.save_model(tmp_path / "model")
    predictor = inference.load_model(tmp_path / "model")
    whole = predictor.predict(digits.arrays["x"])
    monkeypatch.setattr(inference, "CHUNK_ROWS", 500)
    rows = _CountingRows(open_store(tmp_path / "store").arrays["x"])
    chunked = predictor.predict(rows, batch_size=128)
    assert rows.reads == [500, 500, 500, 297]
    assert numpy.array_equal(chunked["classes"], whole["classes"])
    assert numpy.allclose(chunked["probabilities"], whole["probabilities"], rtol=1e-6, atol=1e-7)
    with pytest.raises(EngineError, match="no rows"):
        predictor.predict(digits.arrays["x"][:0])
