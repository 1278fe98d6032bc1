"""Training: events, cancel, early stopping, checkpoints, exact resume, save/load/predict."""

from __future__ import annotations

import json

import numpy
import pytest

import engine
from engine import backend, data, serialization, zoo
from engine.errors import ArtifactError, EngineError
from engine.graph import GraphBuilder
from engine.inference import load_model
from engine.trainer import TrainConfig, Trainer


def small_digits():
    dataset = data.load_builtin("digits", seed=0)
    return dataset.subset(numpy.arange(400))


def dropout_mlp() -> dict:
    return zoo.load("mlp")  # has dropout, so resume must restore the dropout generator too


def config(**overrides) -> TrainConfig:
    values = {"epochs": 4, "batch_size": 32, "optimizer": {"name": "adam", "lr": 2e-3}, "seed": 3}
    values.update(overrides)
    return TrainConfig(**values)


def test_events_carry_loss_metrics_and_throughput():
    events = {"train_begin": [], "batch_end": [], "epoch_end": [], "train_end": []}
    trainer = Trainer(dropout_mlp(), small_digits(), config=config(epochs=2))
    for name, seen in events.items():
        trainer.on(name, seen.append)
    result = trainer.run()
    assert result.status == "succeeded" and result.epochs_completed == 2
    steps_per_epoch = events["train_begin"][0]["steps_per_epoch"]
    assert steps_per_epoch == -(-320 // 32)
    assert len(events["batch_end"]) == 2 * steps_per_epoch
    last_batch = events["batch_end"][-1]
    assert last_batch["step"] == 2 * steps_per_epoch and last_batch["samples_per_second"] > 0
    epoch = events["epoch_end"][-1]
    assert set(epoch) >= {"epoch", "step", "loss", "metrics", "val_loss", "val_metrics", "samples_per_second"}
    assert 0.0 <= epoch["metrics"]["accuracy"] <= 1.0 and 0.0 <= epoch["val_metrics"]["accuracy"] <= 1.0
    assert events["train_end"] == [{"status": "succeeded", "epochs_completed": 2}]
    json.dumps(events)  # every payload is JSON-ready for the live stream


def test_cancel_stops_within_one_batch():
    trainer = Trainer(dropout_mlp(), small_digits(), config=config(epochs=50))
    seen = []

    def on_batch(event):
        seen.append(event["step"])
        if event["step"] == 3:
            trainer.cancel()

    trainer.on("batch_end", on_batch)
    result = trainer.run()
    assert result.status == "cancelled"
    assert seen == [1, 2, 3]


def test_early_stopping_restores_the_best_epoch():
    trainer = Trainer(dropout_mlp(), small_digits(), config=config(
        epochs=200, optimizer={"name": "adam", "lr": 0.05},
        early_stopping={"monitor": "val_loss", "patience": 2, "restore_best": True}))
    result = trainer.run()
    assert result.status == "stopped_early" and result.epochs_completed < 200
    best = min(record["val_loss"] for record in result.history)
    assert result.best["val_loss"] == best
    assert trainer.evaluate(trainer.validation_data)["loss"] == pytest.approx(best, rel=1e-5)


def test_resume_after_epoch_k_equals_an_uninterrupted_run(tmp_path):
    dataset = small_digits()
    straight = Trainer(dropout_mlp(), dataset, config=config(epochs=4))
    straight.run()

    first = Trainer(dropout_mlp(), dataset, config=config(epochs=2, checkpoint_dir=str(tmp_path / "ckpt")))
    first.run()
    resumed = Trainer.resume(tmp_path / "ckpt", dataset, epochs=4)
    assert resumed.epoch == 2
    result = resumed.run()
    assert result.epochs_completed == 4 and len(result.history) == 4
    for key, value in straight.model.state_arrays().items():
        assert numpy.array_equal(value, resumed.model.state_arrays()[key]), key
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]


def test_save_load_predict_gives_identical_outputs(tmp_path):
    dataset = small_digits()
    trainer, _ = engine.fit(dropout_mlp(), dataset, epochs=2, batch_size=32, seed=1)
    trainer.save_model(tmp_path / "model")
    predictor = load_model(tmp_path / "model")
    features = dataset.arrays["x"][:50]
    expected = trainer.model.predict({"x": trainer.standardizers["x"].transform(features)})["prediction"]
    got = predictor.predict(features)
    assert numpy.array_equal(got["outputs"]["prediction"], expected)
    assert got["classes"].shape == (50,) and got["probabilities"].shape == (50, 10)
    numpy.testing.assert_allclose(got["probabilities"].sum(axis=1), 1.0, rtol=1e-6)
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["input_schema"]["inputs"]["x"]["shape"] == [None, 64]
    assert manifest["input_schema"]["label_names"] == dataset.label_names


def batch_norm_mlp() -> dict:
    g = GraphBuilder()
    x = g.input("x", [None, 64])
    y = g.input("y", [None], dtype="int64")
    hidden = g.relu(g.batch_norm(g.dense(x, units=16, use_bias=False, id="hidden"), id="bn"), id="act")
    logits = g.dense(hidden, units=10, id="logits")
    g.loss(g.softmax_cross_entropy(logits, y, id="loss"))
    g.output("prediction", logits)
    return g.to_spec()


def test_batch_norm_running_statistics_survive_save_and_load(tmp_path):
    dataset = small_digits()
    trainer, _ = engine.fit(batch_norm_mlp(), dataset, epochs=2, batch_size=32, seed=1)
    running = {name: backend.to_numpy(value) for name, value in trainer.model.buffers.items()}
    assert set(running) == {"bn/running_mean", "bn/running_var"}
    assert not numpy.allclose(running["bn/running_mean"], 0.0) and not numpy.allclose(running["bn/running_var"], 1.0)
    trainer.save_model(tmp_path / "model")
    predictor = load_model(tmp_path / "model")
    for name, value in running.items():
        numpy.testing.assert_array_equal(backend.to_numpy(predictor.model.buffers[name]), value)
    features = dataset.arrays["x"][:50]
    expected = trainer.model.predict({"x": trainer.standardizers["x"].transform(features)})["prediction"]
    numpy.testing.assert_array_equal(predictor.predict(features)["outputs"]["prediction"], expected)
    # Eval mode normalizes with the running statistics, not the batch's: one sample alone gets its prediction.
    alone = predictor.predict(features[:1])["outputs"]["prediction"]
    numpy.testing.assert_allclose(alone, expected[:1], rtol=1e-5, atol=1e-6)
    # And they matter: the initial statistics (mean 0, variance 1) predict otherwise.
    predictor.model.buffers["bn/running_mean"][...] = 0.0
    predictor.model.buffers["bn/running_var"][...] = 1.0
    assert not numpy.allclose(predictor.predict(features)["outputs"]["prediction"], expected, atol=1e-3)


@pytest.fixture
def saved_model(tmp_path):
    trainer, _ = engine.fit(zoo.load("softmax_regression"), small_digits(), epochs=1, batch_size=64)
    return trainer.save_model(tmp_path / "model")


def test_tampered_weights_are_refused_naming_the_file(saved_model):
    path = saved_model / "weights.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="weights.npz.*modified"):
        load_model(saved_model)


def test_truncated_file_is_refused(saved_model):
    path = saved_model / "weights.npz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="weights.npz.*truncated"):
        load_model(saved_model)


def test_mismatched_tensor_is_refused_naming_the_tensor(saved_model):
    # A consistent artifact (checksums updated) whose weights do not fit the graph.
    artifact = serialization.read_artifact(saved_model)
    weights = dict(artifact.weights)
    weights["logits/W"] = numpy.zeros((3, 3), numpy.float32)
    serialization.write_artifact(saved_model, spec=artifact.spec, weights=weights,
                                 input_schema=artifact.manifest["input_schema"])
    with pytest.raises(ArtifactError, match="'logits/W'.*\\(3, 3\\).*\\(64, 10\\)"):
        load_model(saved_model)


def test_a_model_is_not_a_checkpoint(saved_model):
    with pytest.raises(ArtifactError, match="not a checkpoint"):
        Trainer.resume(saved_model, small_digits())


def test_training_options_are_checked():
    with pytest.raises(EngineError, match="batch_size"):
        TrainConfig.from_dict({"batch_size": 0})
    with pytest.raises(EngineError, match="unknown training option"):
        TrainConfig.from_dict({"epoch": 3})


def test_graph_input_without_data_is_named():
    spec = zoo.load("softmax_regression")
    spec["inputs"]["pixels"] = spec["inputs"].pop("x")
    spec["nodes"][0]["inputs"]["x"] = "pixels"
    with pytest.raises(EngineError, match="'pixels'"):
        Trainer(spec, data.load_builtin("iris"), config=config())
