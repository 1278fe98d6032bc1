"""``python -m engine`` as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy

from engine import data, zoo


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_ops_lists_the_catalog_as_table_and_json():
    table = run("ops")
    assert table.returncode == 0 and "dense" in table.stdout and "softmax_cross_entropy" in table.stdout
    catalog = json.loads(run("ops", "--json").stdout)
    assert {op["name"] for op in catalog["ops"]} >= {"dense", "relu", "matmul", "embedding", "dropout"}


def test_validate_prints_shapes_of_a_valid_graph(tmp_path):
    path = tmp_path / "mlp.json"
    path.write_text(json.dumps(zoo.load("mlp")))
    result = run("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "fc1" in result.stdout and "(N, 128)" in result.stdout and "valid" in result.stdout


def test_validate_names_node_and_field_and_exits_1(tmp_path):
    spec = zoo.load("mlp")
    spec["nodes"][0]["params"]["units"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    result = run("validate", str(path))
    assert result.returncode == 1
    assert "node 'fc1', params.units" in result.stdout


def test_invalid_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "format": "netforge.graph/1",\n  "nodes": [,]\n}')
    result = run("validate", str(path))
    assert result.returncode == 2
    assert "broken.json line 3, column" in result.stderr


def test_train_then_predict(tmp_path):
    model_dir = tmp_path / "model"
    result = run("train", "zoo:softmax_regression", "--dataset", "digits", "--epochs", "2", "--out", str(model_dir),
                 "--quiet")
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and str(model_dir) in result.stdout
    features = data.load_builtin("digits").arrays["x"][:7]
    numpy.savez(tmp_path / "inputs.npz", x=features)
    predicted = run("predict", str(model_dir), str(tmp_path / "inputs.npz"))
    assert predicted.returncode == 0, predicted.stderr
    assert "7 prediction(s)" in predicted.stdout
    with numpy.load(tmp_path / "inputs.predictions.npz", allow_pickle=False) as archive:
        assert archive["classes"].shape == (7,)


def test_unknown_dataset_is_a_clear_error():
    result = run("train", "zoo:mlp", "--dataset", "nonexistent", "--epochs", "1", "--quiet")
    assert result.returncode == 2 and "nonexistent" in result.stderr and "Traceback" not in result.stderr


def test_engine_stands_alone_without_the_platform():
    code = (
        "import sys, engine, engine.trainer, engine.cli;"
        "bad = [m for m in sys.modules"
        " if m.split('.')[0] in ('django', 'celery', 'channels', 'webapp', 'workers', 'torch')];"
        "assert not bad, bad"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0
