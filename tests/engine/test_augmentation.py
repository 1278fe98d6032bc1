"""Image augmentation and per-channel normalization (engine/data/augment.py and the trainer's
random_crop_padding, horizontal_flip and normalize options): what a crop and a flip do to a tiny
image, draws that depend only on (seed, epoch, step), exact resume with augmentation on, and the
refusal of image options for a graph that takes no images."""

from __future__ import annotations

import numpy
import pytest

from engine import data
from engine.data.augment import AugmentationDraws, augment_images, batch_generator, draw_augmentation
from engine.data.store import open_store, read_manifest, write_store
from engine.errors import DataError
from engine.graph import GraphBuilder
from engine.option_schema import TrainingOptionsError
from engine.trainer import TrainConfig, Trainer

AUGMENTED = {"random_crop_padding": 2, "horizontal_flip": True, "normalize": "per_channel"}


def image_digits():
    dataset = data.load_builtin("digits", seed=0, image=True)  # x (N, 1, 8, 8)
    return dataset.subset(numpy.arange(300))


def image_mlp() -> dict:
    g = GraphBuilder()
    x = g.input("x", [None, 1, 8, 8])
    y = g.input("y", [None], dtype="int64")
    hidden = g.relu(g.dense(g.flatten(x, id="flat"), units=16, id="hidden"), id="act")
    g.loss(g.softmax_cross_entropy(g.dense(hidden, units=10, id="logits"), y, id="loss"))
    return g.to_spec()


def config(**overrides) -> TrainConfig:
    values = {"epochs": 3, "batch_size": 32, "optimizer": {"name": "adam", "lr": 2e-3}, "seed": 5, **AUGMENTED}
    values.update(overrides)
    return TrainConfig(**values)


def test_a_crop_takes_the_window_at_each_samples_offset_of_the_zero_padded_image():
    images = numpy.arange(2 * 2 * 3 * 3, dtype=numpy.float32).reshape(2, 2, 3, 3)
    draws = AugmentationDraws(padding=1, offsets=numpy.array([[0, 0], [2, 1]]), flips=None)
    cropped = augment_images(images, draws)
    padded = numpy.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))
    assert numpy.array_equal(cropped[0], padded[0, :, 0:3, 0:3])  # moved down and right by one
    assert numpy.array_equal(cropped[1], padded[1, :, 2:5, 1:4])  # moved up by one
    assert cropped[0, 0, 0, 0] == 0 and cropped[0, 0, 1, 1] == images[0, 0, 0, 0]
    assert numpy.array_equal(augment_images(images, AugmentationDraws(1, numpy.ones((2, 2), int), None)), images)


def test_a_flip_mirrors_only_the_drawn_samples_left_to_right():
    images = numpy.arange(3 * 1 * 2 * 3, dtype=numpy.float32).reshape(3, 1, 2, 3)
    flipped = augment_images(images, AugmentationDraws(0, None, numpy.array([True, False, True])))
    assert numpy.array_equal(flipped[0, 0], [[2, 1, 0], [5, 4, 3]])
    assert numpy.array_equal(flipped[1], images[1])
    assert numpy.array_equal(flipped[2], images[2, :, :, ::-1])
    assert numpy.array_equal(images[0, 0], [[0, 1, 2], [3, 4, 5]])  # the input is left as it was


def test_draws_depend_only_on_seed_epoch_and_step_and_a_share_is_its_rows_of_them():
    def draws(seed, epoch, step):
        return draw_augmentation(batch_generator(seed=seed, epoch=epoch, step=step), rows=64, padding=3, flip=True)

    first, again = draws(1, 2, 30), draws(1, 2, 30)
    assert numpy.array_equal(first.offsets, again.offsets) and numpy.array_equal(first.flips, again.flips)
    assert not numpy.array_equal(first.offsets, draws(1, 2, 31).offsets)
    assert not numpy.array_equal(first.offsets, draws(2, 2, 30).offsets)
    assert first.offsets.min() >= 0 and first.offsets.max() <= 6 and 10 < first.flips.sum() < 54
    share = first.share(16, 40)
    assert numpy.array_equal(share.offsets, first.offsets[16:40]) and numpy.array_equal(share.flips, first.flips[16:40])


def test_a_non_image_batch_is_refused():
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        augment_images(numpy.zeros((4, 64), numpy.float32), AugmentationDraws(1, numpy.zeros((4, 2), int), None))


def test_resume_with_augmentation_equals_an_uninterrupted_run(tmp_path):
    dataset = image_digits()
    straight = Trainer(image_mlp(), dataset, config=config(epochs=3))
    straight.run()

    first = Trainer(image_mlp(), dataset, config=config(epochs=1, checkpoint_dir=str(tmp_path / "ckpt")))
    first.run()
    resumed = Trainer.resume(tmp_path / "ckpt", dataset, epochs=3)
    assert resumed.epoch == 1 and resumed.config.horizontal_flip and resumed.config.random_crop_padding == 2
    resumed.run()
    for key, value in straight.model.state_arrays().items():
        assert numpy.array_equal(value, resumed.model.state_arrays()[key]), key
    assert [r["loss"] for r in straight.history] == [r["loss"] for r in resumed.history]
    # and augmentation changed what was learned: without it the weights differ
    plain = Trainer(image_mlp(), dataset, config=config(random_crop_padding=0, horizontal_flip=False))
    plain.run()
    assert not numpy.array_equal(plain.model.state_arrays()["hidden/W"], straight.model.state_arrays()["hidden/W"])


def test_validation_batches_are_not_augmented():
    dataset = image_digits()
    trainer = Trainer(image_mlp(), dataset, config=config(epochs=1))
    trainer.run()
    plain = Trainer(image_mlp(), dataset, config=config(epochs=1, random_crop_padding=0, horizontal_flip=False))
    plain.model.load_state_arrays(trainer.model.state_arrays())
    assert trainer.evaluate(trainer.validation_data) == plain.evaluate(plain.validation_data)


def test_per_channel_normalization_uses_the_statistics_measured_at_conversion(tmp_path):
    dataset = image_digits()
    write_store(dataset, tmp_path / "store")
    stored = read_manifest(tmp_path / "store")["channel_statistics"]["x"]
    pixels = dataset.arrays["x"].astype(numpy.float64)
    assert numpy.allclose(stored["mean"], [pixels.mean()]) and numpy.allclose(stored["std"], [pixels.std()])
    assert "channel_statistics" not in open_store(tmp_path / "store").schema()  # not part of the data's schema

    trainer = Trainer(image_mlp(), open_store(tmp_path / "store"), config=config(epochs=1))
    standardizer = trainer.standardizers["x"]
    assert standardizer.mean.shape == (1, 1, 1)
    assert numpy.allclose(standardizer.mean.ravel(), stored["mean"])
    assert numpy.allclose(standardizer.std.ravel(), stored["std"])
    assert trainer.run().status == "succeeded"
    # a built-in image dataset measures them when it is loaded
    loaded = data.load_builtin("digits", image=True)
    assert numpy.allclose(loaded.channel_statistics["x"]["mean"], stored["mean"], rtol=0.05)


def test_per_channel_statistics_are_measured_on_the_training_split_when_the_dataset_has_none():
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(200, 3, 4, 4)).astype(numpy.float32) * numpy.array([1, 2, 3], numpy.float32)[:, None, None]
    dataset = data.from_arrays(x + numpy.array([0, 10, -5], numpy.float32)[:, None, None], rng.integers(0, 2, 200),
                               task="classification")
    g = GraphBuilder()
    inputs, labels = g.input("x", [None, 3, 4, 4]), g.input("y", [None], dtype="int64")
    g.loss(g.softmax_cross_entropy(g.dense(g.flatten(inputs), units=2), labels))
    trainer = Trainer(g.to_spec(), dataset, config=config(epochs=1, random_crop_padding=1))
    training = numpy.asarray(trainer.train_data.arrays["x"], dtype=numpy.float64)
    standardizer = trainer.standardizers["x"]
    assert standardizer.mean.shape == (3, 1, 1)
    assert numpy.allclose(standardizer.mean.ravel(), training.mean(axis=(0, 2, 3)))
    assert numpy.allclose(standardizer.std.ravel(), training.std(axis=(0, 2, 3)))


@pytest.mark.parametrize("option",
                         [{"random_crop_padding": 4}, {"horizontal_flip": True}, {"normalize": "per_channel"}])
def test_an_image_option_for_a_graph_without_image_inputs_is_refused_naming_it(option):
    flat = data.load_builtin("digits", seed=0).subset(numpy.arange(100))  # x (N, 64)
    g = GraphBuilder()
    x, y = g.input("x", [None, 64]), g.input("y", [None], dtype="int64")
    g.loss(g.softmax_cross_entropy(g.dense(x, units=10), y))
    with pytest.raises(TrainingOptionsError) as raised:
        Trainer(g.to_spec(), flat, config={"epochs": 1, **option})
    (name,) = option
    assert list(raised.value.errors) == [name]
    assert f"{name} applies to image inputs" in raised.value.errors[name] and "'x' [64]" in raised.value.errors[name]
