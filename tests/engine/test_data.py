"""Datasets: built-ins, splitting, batching, standardization, and the CSV / NPZ / IDX loaders."""

from __future__ import annotations

import gzip
import json

import numpy
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from engine import data
from engine.errors import DataError

BUILTINS = [row["name"] for row in data.list_builtin()]
GENERATED = ["moons", "circles", "spirals", "xor", "linear", "sine", "sequence_memory", "sequence_sum", "synthetic_ctr"]


# -- built-in datasets --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_has_the_listed_shapes_and_house_dtypes(name):
    listed = next(row for row in data.list_builtin() if row["name"] == name)
    dataset = data.load_builtin(name, seed=0)
    assert dataset.name == name and dataset.task == listed["task"]
    assert {key: list(array.shape[1:]) for key, array in dataset.arrays.items()} == listed["shapes"]
    x, y = dataset.arrays["x"], dataset.arrays["y"]
    assert x.dtype == (numpy.int64 if name == "synthetic_ctr" else numpy.float32)
    if dataset.task == "regression":
        assert y.dtype == numpy.float32 and dataset.num_classes is None
    else:
        assert y.dtype == numpy.int64
        assert set(numpy.unique(y)) == set(range(dataset.num_classes)) == set(range(len(dataset.label_names)))
    json.dumps(dataset.schema())
    json.dumps(dataset.preview(rows=3))


@pytest.mark.parametrize("name", GENERATED)
def test_generated_builtin_is_determined_by_its_seed(name):
    first, again, other = (data.load_builtin(name, seed=s, n_samples=300) for s in (1, 1, 2))
    assert len(first) == 300
    for key in first.arrays:
        numpy.testing.assert_array_equal(first.arrays[key], again.arrays[key])
    assert not numpy.array_equal(first.arrays["x"], other.arrays["x"])


def test_builtin_options():
    assert data.load_builtin("digits", image=True).arrays["x"].shape == (1797, 1, 8, 8)
    spirals = data.load_builtin("spirals", arms=5, n_samples=500)
    assert spirals.num_classes == 5 and numpy.bincount(spirals.arrays["y"]).tolist() == [100] * 5
    sine = data.load_builtin("sine")
    assert numpy.abs(sine.arrays["x"]).max() <= numpy.pi
    assert numpy.corrcoef(numpy.sin(sine.arrays["x"][:, 0]), sine.arrays["y"])[0, 1] > 0.98


def test_builtin_errors_list_what_is_available():
    with pytest.raises(DataError, match="digits.*moons.*synthetic_ctr"):
        data.load_builtin("mnist")
    with pytest.raises(DataError, match=r"no option\(s\) \['arms'\].*n_samples=1000"):
        data.load_builtin("moons", arms=3)
    with pytest.raises(DataError, match="n_samples must be a positive integer"):
        data.load_builtin("moons", n_samples=0)


def test_linear_metadata_holds_the_true_coefficients():
    dataset = data.load_builtin("linear", noise=0.0)
    x = numpy.column_stack([dataset.arrays["x"], numpy.ones(len(dataset))]).astype(numpy.float64)
    fitted, *_ = numpy.linalg.lstsq(x, dataset.arrays["y"], rcond=None)
    numpy.testing.assert_allclose(fitted[:-1], dataset.metadata["coefficients"], atol=1e-4)
    numpy.testing.assert_allclose(fitted[-1], dataset.metadata["intercept"], atol=1e-4)


def test_synthetic_ctr_holds_global_ids_and_a_learnable_signal():
    dataset = data.load_builtin("synthetic_ctr", seed=0)
    ids, clicks = dataset.arrays["x"], dataset.arrays["y"]
    sizes, offsets = dataset.metadata["field_sizes"], dataset.metadata["field_offsets"]
    assert len(dataset) == 20000 and len(sizes) == 8 and all(10 <= s <= 20 for s in sizes)
    assert dataset.metadata["vocab_size"] == sum(sizes) <= 160  # the zoo's CTR graphs embed 160 ids
    assert (ids >= numpy.array(offsets)).all() and (ids < numpy.array(offsets) + numpy.array(sizes)).all()
    assert 0.3 < clicks.mean() < 0.7
    # The generating model's own logits separate clicks well, so learned models can reach 0.9.
    truth = data.click_model(seed=0)
    assert roc_auc_score(clicks, truth.logits(ids)) >= 0.95


def test_sequence_memory_label_lives_only_in_the_first_steps():
    train, test = data.load_builtin("sequence_memory", seed=0).split(0.3, seed=0)

    def accuracy(steps: slice) -> float:
        features = [part.arrays["x"][:, steps].reshape(len(part), -1) for part in (train, test)]
        model = LogisticRegression(max_iter=500).fit(features[0], train.arrays["y"])
        return model.score(features[1], test.arrays["y"])

    assert accuracy(slice(0, 2)) > 0.9
    assert accuracy(slice(10, 20)) < 0.35  # chance is 0.25


# -- the Dataset container ------------------------------------------------------------------------------

def test_split_is_stratified_disjoint_and_covers_every_row():
    dataset = data.load_builtin("iris")  # 50 rows per class, stored class by class
    dataset.arrays["row"] = numpy.arange(len(dataset))
    train, validation = dataset.split(0.2, seed=0)
    assert len(train) == 120 and len(validation) == 30
    assert numpy.bincount(validation.arrays["y"]).tolist() == [10, 10, 10]
    rows = numpy.concatenate([train.arrays["row"], validation.arrays["row"]])
    assert sorted(rows.tolist()) == list(range(150))
    again, _ = dataset.split(0.2, seed=0)
    other, _ = dataset.split(0.2, seed=1)
    assert numpy.array_equal(train.arrays["row"], again.arrays["row"])
    assert not numpy.array_equal(train.arrays["row"], other.arrays["row"])
    assert train.label_names == dataset.label_names and train.task == "classification"


def test_split_of_regression_data_and_bad_fractions():
    train, validation = data.load_builtin("sine", n_samples=101).split(0.25, seed=3)
    assert (len(train), len(validation)) == (76, 25)
    with pytest.raises(DataError, match="between 0 and 1"):
        data.load_builtin("sine").split(1.0)


def test_subset_shuffled_schema_and_preview():
    dataset = data.load_builtin("wine")
    head = dataset.subset(numpy.arange(4))
    assert len(head) == 4 and head.feature_names == dataset.feature_names
    shuffled = dataset.shuffled(seed=0)
    assert sorted(shuffled.arrays["x"][:, 0].tolist()) == sorted(dataset.arrays["x"][:, 0].tolist())
    schema = dataset.schema()
    assert schema["rows"] == 178 and schema["arrays"]["x"] == {"shape": [13], "dtype": "float32"}
    assert schema["num_classes"] == 3 and schema["label_names"] == ["class_0", "class_1", "class_2"]
    preview = dataset.preview(rows=2)
    assert len(preview["arrays"]["x"]) == 2 and len(preview["arrays"]["x"][0]) == 13


def test_arrays_must_share_their_rows():
    with pytest.raises(DataError, match="share their first axis"):
        data.Dataset(arrays={"x": numpy.zeros((3, 2)), "y": numpy.zeros(4)}, task="regression")


# -- batches and standardization ----------------------------------------------------------------------------

def test_iter_batches_follows_the_given_order_and_covers_every_row_once():
    arrays = {"x": numpy.arange(10.0)[:, None], "y": numpy.arange(10)}
    order = numpy.random.default_rng(0).permutation(10)
    batches = list(data.iter_batches(arrays, 4, order=order))
    assert [len(b["y"]) for b in batches] == [4, 4, 2]
    assert numpy.concatenate([b["y"] for b in batches]).tolist() == order.tolist()
    assert all((b["x"][:, 0] == b["y"]).all() for b in batches)  # rows stay aligned across arrays
    assert [len(b["y"]) for b in data.iter_batches(arrays, 4, order=order, drop_last=True)] == [4, 4]
    assert numpy.concatenate([b["y"] for b in data.iter_batches(arrays, 3)]).tolist() == list(range(10))


def test_standardizer_round_trips_through_json():
    rng = numpy.random.default_rng(0)
    train = numpy.column_stack([rng.normal(5.0, 3.0, 200), numpy.full(200, 7.0)]).astype(numpy.float32)
    scaler = data.Standardizer().fit(train)
    scaled = scaler.transform(train)
    assert scaled.dtype == numpy.float32
    numpy.testing.assert_allclose(scaled.mean(axis=0), [0.0, 0.0], atol=1e-5)
    numpy.testing.assert_allclose(scaled.std(axis=0), [1.0, 0.0], atol=1e-5)  # a constant column is only centred
    restored = data.Standardizer.from_dict(json.loads(json.dumps(scaler.to_dict())))
    numpy.testing.assert_array_equal(restored.transform(train), scaled)
    numpy.testing.assert_allclose(restored.inverse_transform(scaled), train, rtol=1e-5)
    with pytest.raises(DataError, match=r"fitted on rows of shape \[2\]"):
        restored.transform(numpy.zeros((3, 5)))


# -- CSV -------------------------------------------------------------------------------------------------------

def write(path, text: str):
    path.write_text(text)
    return path


def test_csv_with_text_labels(tmp_path):
    path = write(tmp_path / "flowers.csv", "length,width,species\n1.0,0.5,setosa\n4.5,1.5,virginica\n"
                                           "1.2,0.4,setosa\n\n3.9,1.1,versicolor\n")
    dataset = data.load_csv(path, target="species")
    assert dataset.task == "classification" and dataset.name == "flowers"
    assert dataset.label_names == ["setosa", "versicolor", "virginica"]
    assert dataset.arrays["y"].tolist() == [0, 2, 0, 1]
    assert dataset.arrays["x"].dtype == numpy.float32 and dataset.feature_names == ["length", "width"]


def test_csv_infers_binary_and_regression_unless_told(tmp_path):
    path = write(tmp_path / "table.csv", "a,b,label,price\n" + "".join(
        f"{i},{i * 2},{i % 2},{i * 1.5 + 0.25}\n" for i in range(30)))
    binary = data.load_csv(path, target="label")
    assert binary.task == "binary" and binary.arrays["y"].dtype == numpy.int64
    assert binary.feature_names == ["a", "b", "price"]
    regression = data.load_csv(path, target="price")
    assert regression.task == "regression" and regression.arrays["y"].dtype == numpy.float32
    assert data.load_csv(path, target="label", task="regression").task == "regression"
    tab = write(tmp_path / "table.tsv", "a\tb\n1\t0\n2\t1\n")
    assert data.load(tab, target="b").arrays["x"].tolist() == [[1.0], [2.0]]


@pytest.mark.parametrize("text, target, message", [
    ("age,y\n30,1\n31,0\nabc,1\n", "y", "bad.csv line 4, column 'age': 'abc' is not a number"),
    ("age,y\n30,1\n,0\n", "y", "bad.csv line 3, column 'age': the value is empty"),
    ("age,y\n30,1\n31,0,7\n", "y", "bad.csv line 3: expected 2 values .* found 3"),
    ("age,y\n30,1\n", "label", "bad.csv: no column named 'label' .* 'age', 'y'"),
    ("", "y", "bad.csv: the file is empty"),
    ("age,y\n", "y", "bad.csv: the file has a header but no data rows"),
])
def test_csv_errors_name_the_file_line_and_column(tmp_path, text, target, message):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=message):
        data.load_csv(path, target=target)


def test_csv_regression_target_must_be_numbers(tmp_path):
    path = write(tmp_path / "prices.csv", "area,price\n50,1.5\n70,high\n")
    assert data.load_csv(path, target="price").label_names == ["1.5", "high"]  # text: class names
    with pytest.raises(DataError, match="prices.csv line 3, column 'price': 'high' is not a number"):
        data.load_csv(path, target="price", task="regression")


# -- NPZ -------------------------------------------------------------------------------------------------------

def test_npz_round_trip(tmp_path):
    x = numpy.arange(12, dtype=numpy.float64).reshape(6, 2)
    numpy.savez(tmp_path / "points.npz", x=x, y=numpy.array([3, 5, 3, 5, 3, 5]))
    dataset = data.load(tmp_path / "points.npz")
    assert dataset.arrays["x"].dtype == numpy.float32 and dataset.task == "binary"
    assert dataset.arrays["y"].tolist() == [0, 1, 0, 1, 0, 1] and dataset.label_names == ["3", "5"]
    numpy.savez(tmp_path / "other.npz", features=x, target=x[:, 0] / 7)
    regression = data.load_npz(tmp_path / "other.npz", x_key="features", y_key="target")
    assert regression.task == "regression"


def test_npz_errors_name_the_file_and_keys(tmp_path):
    numpy.savez(tmp_path / "keys.npz", inputs=numpy.zeros((3, 2)), y=numpy.zeros(3))
    with pytest.raises(DataError, match="keys.npz: no array named 'x'; the archive holds 'inputs', 'y'"):
        data.load_npz(tmp_path / "keys.npz")
    numpy.savez(tmp_path / "rows.npz", x=numpy.zeros((3, 2)), y=numpy.zeros(4))
    with pytest.raises(DataError, match="rows.npz: array 'x' has 3 rows but 'y' has 4 rows"):
        data.load_npz(tmp_path / "rows.npz")
    numpy.savez(tmp_path / "pickled.npz", x=numpy.array([{"code": 1}] * 3, dtype=object), y=numpy.zeros(3))
    with pytest.raises(DataError, match="pickled.npz: array 'x' cannot be read safely"):
        data.load_npz(tmp_path / "pickled.npz")
    write(tmp_path / "empty.npz", "")
    with pytest.raises(DataError, match="empty.npz: the file is empty"):
        data.load_npz(tmp_path / "empty.npz")
    write(tmp_path / "text.npz", "not an archive")
    with pytest.raises(DataError, match="text.npz: not a readable NumPy .npz archive"):
        data.load_npz(tmp_path / "text.npz")


# -- IDX -------------------------------------------------------------------------------------------------------

def idx_bytes(array: numpy.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(data.loaders.IDX_TYPES[type_code]).tobytes()


def test_idx_images_and_labels_mnist_style(tmp_path):
    images = numpy.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=numpy.uint8)
    labels = numpy.array([7, 2, 1, 0, 4], dtype=numpy.uint8)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    dataset = data.load_idx(tmp_path / "t10k-images-idx3-ubyte.gz", tmp_path / "t10k-labels-idx1-ubyte")
    assert dataset.arrays["x"].shape == (5, 1, 4, 3) and dataset.arrays["x"].dtype == numpy.float32
    numpy.testing.assert_array_equal(dataset.arrays["x"][:, 0], images)
    assert dataset.label_names == ["0", "1", "2", "4", "7"] and dataset.task == "classification"
    found = data.load(tmp_path / "t10k-images-idx3-ubyte.gz")  # picks up the labels file beside it
    assert numpy.array_equal(found.arrays["y"], dataset.arrays["y"])
    flat = data.load_idx(tmp_path / "t10k-images-idx3-ubyte.gz", flatten=True)
    assert flat.arrays["x"].shape == (5, 12) and "y" not in flat.arrays
    (tmp_path / "floats.idx").write_bytes(idx_bytes(numpy.array([[1.5, -2.0]]), type_code=0x0D))
    assert data.read_idx(tmp_path / "floats.idx").tolist() == [[1.5, -2.0]]


def test_idx_errors_say_what_was_expected_and_found(tmp_path):
    images = numpy.zeros((3, 2, 2), dtype=numpy.uint8)
    (tmp_path / "magic.idx").write_bytes(b"\x00\x00\x07\x03" + idx_bytes(images)[4:])
    with pytest.raises(DataError, match="magic.idx: bad magic number 0x00000703; expected 0x0000TTDD"):
        data.read_idx(tmp_path / "magic.idx")
    (tmp_path / "short.idx").write_bytes(idx_bytes(images)[:-1])
    with pytest.raises(DataError, match=r"short.idx: truncated: dimensions \[3, 2, 2\] .* need 12 bytes .* found 11"):
        data.read_idx(tmp_path / "short.idx")
    (tmp_path / "images.idx").write_bytes(idx_bytes(images))
    (tmp_path / "labels.idx").write_bytes(idx_bytes(numpy.zeros(4, dtype=numpy.uint8)))
    with pytest.raises(DataError, match="labels.idx: dimension mismatch: expected 3 labels .* found 4"):
        data.load_idx(tmp_path / "images.idx", tmp_path / "labels.idx")
    with pytest.raises(DataError, match="labels.idx: expected images with at least 2 dimensions"):
        data.load_idx(tmp_path / "labels.idx")
    (tmp_path / "empty.idx").write_bytes(b"")
    with pytest.raises(DataError, match="empty.idx: the file is empty"):
        data.read_idx(tmp_path / "empty.idx")


# -- dispatch ----------------------------------------------------------------------------------------------------

def test_load_dispatches_names_and_files(tmp_path):
    assert data.load("moons", seed=4, n_samples=10).name == "moons"
    with pytest.raises(DataError, match="unknown dataset 'nope': not a file, and not a built-in"):
        data.load("nope")
    with pytest.raises(DataError, match="missing.csv: no such file"):
        data.load(tmp_path / "missing.csv", target="y")
    path = write(tmp_path / "pairs.csv", "a,b\n1,0\n2,1\n")
    with pytest.raises(DataError, match="pairs.csv: say which column is the target .* 'a', 'b'"):
        data.load(path)
    assert data.load(str(path), target="b", seed=0).task == "binary"  # a file ignores the seed
