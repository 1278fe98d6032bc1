"""Fine-tuning: a run starts from another model's weights (matched by node id or mapped), frozen
nodes' weights come out bit for bit as they went in, a lower learning rate per node group, and every
misfit named: node, weight and both shapes."""

from __future__ import annotations

import numpy
import pytest

from engine import finetune, onnx_export, onnx_import
from engine.data import load
from engine.errors import EngineError
from engine.graph import GraphBuilder
from engine.model import Model
from engine.optimizers import make_optimizer
from engine.trainer import Trainer
from engine.training_options import TrainingOptionsError, validate_training_options


def classifier(head_units: int = 10, head_id: str = "head", batch_norm: bool = False) -> dict:
    builder = GraphBuilder()
    x, y = builder.input("x", [None, 64]), builder.input("y", [None], dtype="int64")
    hidden = builder.dense(x, units=16, id="body")
    if batch_norm:
        hidden = builder.batch_norm(hidden, id="norm")
    scores = builder.dense(builder.relu(hidden, id="act"), units=head_units, id=head_id)
    builder.output("prediction", scores)
    builder.loss(builder.softmax_cross_entropy(scores, y, id="loss"))
    return builder.to_spec()


@pytest.fixture(scope="module")
def digits():
    return load("digits", seed=0)


@pytest.fixture(scope="module")
def trained_checkpoint(digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("parent") / "checkpoint"
    trainer = Trainer(classifier(batch_norm=True), digits, config={"epochs": 1, "batch_size": 64, "seed": 1})
    trainer.run()
    trainer.save_checkpoint(folder)
    return folder, trainer.model.state_arrays()


def test_a_run_starts_from_the_checkpoint_weights_matched_by_node_id(digits, trained_checkpoint):
    folder, parent = trained_checkpoint
    trainer = Trainer(classifier(batch_norm=True), digits, config={"epochs": 1, "init_from": str(folder), "seed": 5})
    for key, array in parent.items():
        numpy.testing.assert_array_equal(trainer.model.state_arrays()[key], array, err_msg=key)
    assert trainer.warm_start.loaded == ["body", "head", "norm"] and trainer.warm_start.initialized == []


def test_unmatched_nodes_are_freshly_initialized(digits, trained_checkpoint):
    folder, parent = trained_checkpoint
    spec = classifier(head_units=10, head_id="new_head")  # no batch norm, a head of another id
    trainer = Trainer(spec, digits, config={"epochs": 1, "init_from": str(folder), "seed": 5})
    fresh = Model(spec, seed=5).state_arrays()
    state = trainer.model.state_arrays()
    numpy.testing.assert_array_equal(state["body/W"], parent["body/W"])
    numpy.testing.assert_array_equal(state["new_head/W"], fresh["new_head/W"])
    assert not numpy.array_equal(state["new_head/W"], parent["head/W"])
    assert trainer.warm_start.loaded == ["body"] and trainer.warm_start.initialized == ["new_head"]
    # ... unless init_map names the source's node for it
    mapped = Trainer(spec, digits, config={"epochs": 1, "init_from": str(folder), "init_map": "new_head=head"})
    numpy.testing.assert_array_equal(mapped.model.state_arrays()["new_head/W"], parent["head/W"])


def test_a_shape_mismatch_names_the_node_the_weight_and_both_shapes(digits, trained_checkpoint):
    folder, parent = trained_checkpoint
    with pytest.raises(EngineError) as caught:
        Trainer(classifier(head_units=3, batch_norm=True), digits, config={"init_from": str(folder)})
    message = str(caught.value)
    assert "node 'head' weight 'W': init_from checkpoint has shape (16, 10), this graph (16, 3)" in message
    assert "node 'head' weight 'b': init_from checkpoint has shape (10,), this graph (3,)" in message
    # 'head=' starts the mismatched head fresh instead (a new classifier on a trained body)
    trainer = Trainer(classifier(head_units=3, batch_norm=True), digits,
                      config={"init_from": str(folder), "init_map": "head="})
    assert trainer.warm_start.initialized == ["head"]


def test_frozen_nodes_weights_are_bit_identical_after_training(digits, trained_checkpoint):
    folder, parent = trained_checkpoint
    config = {"epochs": 2, "batch_size": 32, "init_from": str(folder), "freeze": "body, norm",
              "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.1}}
    trainer = Trainer(classifier(batch_norm=True), digits, config=config)
    assert trainer.frozen_nodes == ["body", "norm"]
    trainer.run()
    after = trainer.model.state_arrays()
    for key in ("body/W", "body/b", "norm/gamma", "norm/beta", "norm/running_mean", "norm/running_var"):
        assert after[key].tobytes() == parent[key].tobytes(), key  # bit for bit, buffers too
    assert not numpy.array_equal(after["head/W"], parent["head/W"])


def test_a_learning_rate_multiplier_scales_that_group_s_updates():
    params = {"conv1/W": numpy.ones(3), "conv2/W": numpy.ones(3), "head/W": numpy.ones(3)}
    grads = {key: numpy.full(3, 2.0) for key in params}
    optimizer = make_optimizer({"name": "sgd", "lr": 0.1})
    optimizer.set_parameter_groups(frozen={"head/W"}, lr_multipliers={"conv1/W": 0.5, "conv2/W": 0.5})
    optimizer.step(params, grads)
    numpy.testing.assert_allclose(params["conv1/W"], 1 - 0.5 * 0.1 * 2.0)
    numpy.testing.assert_array_equal(params["head/W"], numpy.ones(3))


def test_patterns_choose_node_groups_and_a_pattern_matching_nothing_is_named(digits):
    trainer = Trainer(classifier(), digits, config={"epochs": 1, "lr_multipliers": "*=0.5, head=0.1"})
    factors = trainer.optimizer.lr_multipliers
    assert factors["body/W"] == 0.5 and factors["head/W"] == 0.1  # the later entry wins
    with pytest.raises(TrainingOptionsError) as caught:
        Trainer(classifier(), digits, config={"freeze": "conv*"})
    assert caught.value.errors["freeze"].startswith("freeze names 'conv*', which matches no node with trainable "
                                                    "parameters; those are: body, head")


def test_the_validator_names_malformed_fine_tuning_options():
    with pytest.raises(TrainingOptionsError) as caught:
        validate_training_options({"lr_multipliers": "head=fast", "init_map": "head", "freeze": 3,
                                   "init_from_run": 4, "init_from_import": True})
    assert caught.value.errors == {
        "lr_multipliers": "lr_multipliers gives 'head' the factor 'fast'; a factor must be a number >= 0",
        "init_map": "init_map entry 'head' is not of the form 'node=source_node' (e.g. 'classifier=fc8')",
        "freeze": "freeze must be a string, got 3",
        "init_from_import": "init_from_run and init_from_import both choose the starting weights: give one of them",
    }


def test_a_run_starts_from_imported_onnx_weights(digits, tmp_path):
    spec = classifier()
    original = Model(spec, seed=9)
    exported = onnx_export.export(spec, original.state_arrays(), {"link": "softmax", "prediction": "head"})
    imported = onnx_import.import_model(exported)  # outputs: the scores, and their softmax
    weights = tmp_path / "imported.npz"
    numpy.savez(weights, **imported.weights)
    trainer = Trainer(imported.spec, digits, config={"epochs": 1, "init_from": str(weights), "freeze": "body"})
    assert trainer.warm_start.loaded == ["body", "head"]
    trainer.run()
    numpy.testing.assert_array_equal(trainer.model.params["body/W"], original.params["body/W"])


def test_a_source_that_is_no_weights_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(EngineError, match="neither a checkpoint or saved-model folder nor a .npz"):
        finetune.read_weights(tmp_path / "notes.txt")


def test_a_fine_tuned_run_resumes_from_its_own_checkpoint_when_the_source_is_gone(digits, trained_checkpoint,
                                                                                  tmp_path):
    folder, parent = trained_checkpoint
    source = tmp_path / "source.npz"
    numpy.savez(source, **parent)
    config = {"epochs": 2, "init_from": str(source), "freeze": "body", "checkpoint_dir": str(tmp_path / "own")}
    trainer = Trainer(classifier(batch_norm=True), digits, config={**config, "epochs": 1})
    trainer.run()
    source.unlink()
    resumed = Trainer.resume(tmp_path / "own", digits, epochs=2)
    assert resumed.warm_start is None and resumed.frozen_nodes == ["body"]
    resumed.run()
    assert resumed.model.params["body/W"].tobytes() == parent["body/W"].tobytes()
