"""Every model of the zoo trains on its built-in dataset to the quality its metadata states,
measured on a held-out test split that training never sees."""

from __future__ import annotations

import pytest

from engine import data, zoo
from engine.graph import validate
from engine.trainer import Trainer

# Quality reached in these tests besides the gated metric (for the record in the zoo's docs).
TEST_FRACTION = 0.25


@pytest.mark.parametrize("name", zoo.names())
def test_zoo_graph_is_valid(name):
    report = validate(zoo.load(name))
    assert report.ok, report.errors


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.names())
def test_zoo_model_reaches_its_stated_quality(name):
    spec = zoo.load(name)
    meta = spec["metadata"]
    dataset = data.load_builtin(meta["dataset"], seed=0, **meta.get("dataset_options", {}))
    train, test = dataset.split(TEST_FRACTION, seed=0)
    trainer = Trainer(spec, train, config={**meta["train"], "seed": 0, "validation_fraction": 0.1})
    result = trainer.run()
    assert result.status == "succeeded"
    scores = trainer.evaluate(test)
    metric, floor = meta["expected"]["metric"], meta["expected"]["at_least"]
    print(f"{name} on {meta['dataset']}: test {metric} = {scores[metric]:.4f} (floor {floor})")
    assert scores[metric] >= floor, f"{name}: test {metric} {scores[metric]:.4f} < {floor}"


def test_zoo_lists_titles_and_expectations():
    rows = zoo.info()
    assert {row["name"] for row in rows} >= {"logistic_regression", "softmax_regression", "mlp", "fm",
                                             "wide_deep", "deepfm", "regression_mlp", "lenet5",
                                             "small_cnn", "small_resnet", "conv1d_sequence",
                                             "rnn_sequence_memory", "lstm_sequence_memory",
                                             "bilstm_sequence_memory"}
    for row in rows:
        assert row["title"] and row["dataset"] and row["expected"]["at_least"] > 0
