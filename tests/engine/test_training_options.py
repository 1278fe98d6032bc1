"""The training options' schema and its one validator (engine.training_options), held to the table
of cases that the web app's API and the train panel's validator are held to as well."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine import zoo
from engine.errors import EngineError
from engine.optimizers import OPTIMIZERS, make_optimizer
from engine.option_schema import TrainingOptionsError, show
from engine.schedules import SCHEDULES
from engine.trainer import TrainConfig
from engine.training_options import EARLY_STOPPING, schema, validate_training_options

CASES = json.loads((Path(__file__).parents[1] / "fixtures" / "training_option_cases.json").read_text())


@pytest.mark.parametrize("case", CASES["cases"], ids=[case["description"] for case in CASES["cases"]])
def test_the_validator_answers_as_the_shared_table_says(case):
    if "cleaned" in case:
        assert validate_training_options(case["options"], reserved=CASES["reserved"]) == case["cleaned"]
    else:
        with pytest.raises(TrainingOptionsError) as raised:
            validate_training_options(case["options"], reserved=CASES["reserved"])
        assert raised.value.errors == case["errors"]


def test_every_message_names_its_field():
    for case in CASES["cases"]:
        for field, message in case.get("errors", {}).items():
            *_, parent, name = ["", *field.split(".")]
            # an unknown 'optimizer.name' is "unknown optimizer ...", 'optimizer.schedule.name' "unknown schedule ..."
            assert (parent if name == "name" else name) in message, (field, message)


def test_trainer_defaults_and_the_classes_defaults_are_the_schemas():
    assert TrainConfig().to_dict() == validate_training_options({}, trainer_only=True)
    for cls in SCHEDULES.values():
        fields = {field.name: field.default for field in dataclasses.fields(cls)}
        declared = {option.name: option.default for option in cls.params}
        assert fields == {name: (dataclasses.MISSING if option.required else option.default)
                          for name, option in zip(declared, cls.params)}, cls.name
    for name, cls in OPTIMIZERS.items():
        config = make_optimizer(name).to_config()
        defaults = {option.name: option.default for option in cls.params} | {"schedule": {"name": "constant"}}
        assert config == {"name": name, **defaults}, name


def test_trainer_refuses_what_only_a_run_takes_and_checks_early_stopping():
    with pytest.raises(EngineError, match="unknown training option 'strategy'"):
        TrainConfig.from_dict({"strategy": "ps"})
    with pytest.raises(TrainingOptionsError) as raised:
        TrainConfig.from_dict({"early_stopping": {"patience": 0}})
    assert raised.value.errors == {
        "early_stopping.patience": "early_stopping.patience must be a positive integer, got 0"}
    with pytest.raises(TrainingOptionsError, match="early_stopping.mode"):
        TrainConfig(early_stopping={"mode": "sideways"}).check()


def test_the_schema_is_json_and_declares_every_option_once():
    data = json.loads(json.dumps(schema()))
    assert data["format"] == "netforge.training_options/1"
    names = [entry["name"] for entry in data["options"]]
    assert len(names) == len(set(names)) and {"epochs", "batch_size", "optimizer", "early_stopping", "device",
                                               "workers", "strategy", "staleness"} <= set(names)
    adam = next(entry for entry in data["optimizers"] if entry["name"] == "adam")
    lr = next(param for param in adam["params"] if param["name"] == "lr")
    assert lr == {"name": "lr", "type": "float", "doc": lr["doc"], "required": False, "default": 0.001,
                  "minimum": 0, "label": "Learning rate", "group": "", "scope": "trainer", "exclusive_minimum": True}
    patience = next(param for param in data["early_stopping"] if param["name"] == "patience")
    assert patience["default"] == 5 and patience["minimum"] == 1
    assert [param["name"] for param in data["early_stopping"]] == [option.name for option in EARLY_STOPPING]
    cosine = next(entry for entry in data["schedules"] if entry["name"] == "cosine")
    assert cosine["params"][0]["required"] is True


@pytest.mark.parametrize(("value", "shown"), [
    (None, "null"), (True, "true"), ("x", "'x'"), (1, "1"), (1.0, "1"), (-0.5, "-0.5"), (1e-5, "0.00001"),
    (1e-7, "1e-7"), (1.5e21, "1.5e+21"), (123456.789, "123456.789"), ([1, "a"], '[1,"a"]'),
])
def test_values_are_shown_as_javascript_shows_them(value, shown):
    assert show(value) == shown


def test_the_command_line_checks_options_with_the_same_validator(tmp_path):
    result = subprocess.run([sys.executable, "-m", "engine", "train", "zoo:softmax_regression", "--epochs", "0",
                             "--quiet", "--out", str(tmp_path / "model")], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "epochs must be a positive integer, got 0" in result.stderr, result.stderr
    listed = subprocess.run([sys.executable, "-m", "engine", "options", "--json"], capture_output=True, text=True,
                            check=False)
    assert listed.returncode == 0 and json.loads(listed.stdout)["format"] == "netforge.training_options/1"


def test_every_templates_recommended_settings_are_valid_options():
    for row in zoo.info():
        metadata = zoo.load(row["name"])["metadata"]
        assert validate_training_options(metadata.get("train", {}), trainer_only=True), row["name"]
