"""``python -m engine`` as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy

import engine
from engine import data, zoo
from engine.cli import _table


def run(*args, cwd=None, columns=None):
    # Piped output is not wrapped unless COLUMNS says how wide; a COLUMNS from the shell running the tests is dropped.
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=env)


def test_version_names_the_engine_and_exits_0():
    result = run("--version")
    assert result.returncode == 0
    assert f"netforge engine {engine.__version__}" in result.stdout


def test_usage_errors_exit_2_and_failures_exit_1(tmp_path):
    usage = run("train")  # the graph argument is missing
    assert usage.returncode == 2 and "usage:" in usage.stderr
    unknown = run("no-such-command")
    assert unknown.returncode == 2
    missing = run("validate", str(tmp_path / "absent.json"))
    assert missing.returncode == 1 and "absent.json: cannot read" in missing.stderr and "usage:" not in missing.stderr


def test_progress_bar_ends_on_the_final_epochs_validation_metrics(tmp_path):
    result = run("train", "zoo:softmax_regression", "--dataset", "digits", "--epochs", "2", "--out",
                 str(tmp_path / "model"))
    assert result.returncode == 0, result.stderr
    last_frame = [frame for frame in re.split(r"[\r\n]", result.stderr) if "batch" in frame][-1]
    assert "epoch=2/2" in last_frame, last_frame
    final_validation_loss = re.search(r"^loss\s+\S+\s+(\S+)", result.stdout, re.MULTILINE).group(1)
    assert f"val_loss={final_validation_loss}" in last_frame, (last_frame, result.stdout)


def test_wide_tables_wrap_to_the_terminal_width():
    for columns in (60, 100):
        printed = run("options", columns=columns)
        assert printed.returncode == 0, printed.stderr
        assert max(len(line) for line in printed.stdout.splitlines()) <= columns
        assert printed.stdout.startswith("option")
    table = _table([["a", "one two three four five six seven eight nine ten"]], ["key", "doc"], width=30)
    assert table.splitlines()[2:] == ["a    one two three four five", "     six seven eight nine ten"]


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
    assert result.returncode == 1
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
    assert result.returncode == 1 and "nonexistent" in result.stderr and "Traceback" not in result.stderr


def test_engine_stands_alone_without_the_platform():
    code = (
        "import sys, engine, engine.trainer, engine.cli;"
        "bad = [m for m in sys.modules"
        " if m.split('.')[0] in ('django', 'celery', 'channels', 'webapp', 'workers', 'torch')];"
        "assert not bad, bad"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0
