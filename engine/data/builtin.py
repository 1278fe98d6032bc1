"""Built-in datasets: scikit-learn's bundled tables and seeded generators; nothing is downloaded.

Features come as float32 (category ids as int64), class labels as int64, regression targets as
float32. Features are left unscaled: the trainer standardizes them on its training split.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import numpy
import scipy.special

from engine.data.dataset import Dataset
from engine.data.standardizer import dataset_channel_statistics
from engine.errors import DataError


@dataclasses.dataclass(frozen=True)
class Builtin:
    name: str
    task: str
    description: str
    shapes: dict[str, list[int]]  # per-row shape of each array, with the default options
    make: Callable[..., Dataset]

    def options(self) -> dict:
        """The loader's options and their defaults (``seed`` aside)."""
        parameters = inspect.signature(self.make).parameters.values()
        return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY and p.name != "seed"}


_BUILTINS: dict[str, Builtin] = {}


def _builtin(name: str, task: str, description: str, shapes: dict[str, list[int]]):
    def register(make):
        _BUILTINS[name] = Builtin(name, task, description, shapes, make)
        return make

    return register


def names() -> list[str]:
    return list(_BUILTINS)


def list_builtin() -> list[dict]:
    """One JSON-ready row per built-in dataset: name, task, description, shapes, options."""
    return [
        {"name": b.name, "task": b.task, "description": b.description, "shapes": b.shapes, "options": b.options()}
        for b in _BUILTINS.values()
    ]


def load_builtin(name: str, *, seed: int = 0, **options) -> Dataset:
    """A built-in dataset by name; generated ones are drawn from ``seed`` (bundled tables ignore it)."""
    builtin = _BUILTINS.get(name)
    if builtin is None:
        raise DataError(f"unknown built-in dataset '{name}'; the built-in datasets are {', '.join(_BUILTINS)}")
    if not isinstance(seed, int | numpy.integer) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"dataset '{name}': seed must be an integer >= 0, got {seed!r}")
    accepted = builtin.options()
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(f"{key}={value!r}" for key, value in accepted.items()) or "none"
        raise DataError(f"dataset '{name}' has no option(s) {unknown}; its options are: {listed}")
    for key, value in options.items():
        _check_option(name, key, value, accepted[key])
    dataset = builtin.make(seed=seed, **options)
    # For per-channel normalization, as a conversion measures them; one channel's hold for any
    # single-channel image view of flat pixels (digits' 64 columns as 1 x 8 x 8).
    dataset.channel_statistics = dataset_channel_statistics(dataset)
    return dataset


def _check_option(dataset: str, key: str, value, default) -> None:
    """Options take the type of their default; counts are positive, noise is not negative."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int | numpy.integer) and not isinstance(value, bool) and value >= 1
    else:
        ok = isinstance(value, int | float | numpy.number) and not isinstance(value, bool) and value >= 0
    if not ok:
        kind = "true or false" if isinstance(default, bool) else (
            "a positive integer" if isinstance(default, int) else "a number >= 0")
        raise DataError(f"dataset '{dataset}': option {key} must be {kind}, got {value!r}")


# -- scikit-learn's bundled tables --------------------------------------------------------------------

def _from_sklearn(name: str, bunch, task: str, description: str, *, label_names=None) -> Dataset:
    x = numpy.asarray(bunch.data, dtype=numpy.float32)
    if task == "regression":
        y = numpy.asarray(bunch.target, dtype=numpy.float32)
        num_classes = None
    else:
        y = numpy.asarray(bunch.target, dtype=numpy.int64)
        label_names = label_names or [str(n) for n in bunch.target_names]
        num_classes = len(label_names)
    return Dataset(arrays={"x": x, "y": y}, task=task, name=name, num_classes=num_classes, label_names=label_names,
                   feature_names=[str(n) for n in bunch.feature_names], description=description)


@_builtin("digits", "classification", "8x8 handwritten digits 0-9 (1,797 images, pixel values 0-16)",
          {"x": [64], "y": []})
def digits(*, seed: int = 0, image: bool = False) -> Dataset:
    """``image=True`` gives x of shape (N, 1, 8, 8) (one channel) for convolutional graphs."""
    from sklearn.datasets import load_digits  # noqa: PLC0415 - scikit-learn loads on first use

    layout = "images of shape (1, 8, 8)" if image else "64 pixel columns"
    dataset = _from_sklearn("digits", load_digits(), "classification",
                            f"8x8 handwritten digits 0-9 as {layout}, pixel values 0-16 (scikit-learn's copy of UCI)")
    if image:
        dataset.arrays["x"] = dataset.arrays["x"].reshape(-1, 1, 8, 8)
        dataset.feature_names = None
    return dataset


@_builtin("iris", "classification", "Iris flowers: 4 measurements, 3 species (150 rows)", {"x": [4], "y": []})
def iris(*, seed: int = 0) -> Dataset:
    from sklearn.datasets import load_iris  # noqa: PLC0415

    return _from_sklearn("iris", load_iris(), "classification", "Iris flowers: 4 measurements in cm, 3 species")


@_builtin("wine", "classification", "Wines: 13 chemical measurements, 3 cultivars (178 rows)", {"x": [13], "y": []})
def wine(*, seed: int = 0) -> Dataset:
    from sklearn.datasets import load_wine  # noqa: PLC0415

    return _from_sklearn("wine", load_wine(), "classification", "Wines: 13 chemical measurements, 3 cultivars")


@_builtin("breast_cancer", "binary", "Breast tumours: 30 cell-nucleus features, malignant (0) or benign (1)",
          {"x": [30], "y": []})
def breast_cancer(*, seed: int = 0) -> Dataset:
    from sklearn.datasets import load_breast_cancer  # noqa: PLC0415

    return _from_sklearn("breast_cancer", load_breast_cancer(), "binary",
                         "Wisconsin breast tumours: 30 cell-nucleus features; 0 malignant, 1 benign (569 rows)")


@_builtin("diabetes", "regression", "Diabetes progression after one year from 10 baseline measurements (442 rows)",
          {"x": [10], "y": []})
def diabetes(*, seed: int = 0) -> Dataset:
    from sklearn.datasets import load_diabetes  # noqa: PLC0415

    return _from_sklearn("diabetes", load_diabetes(scaled=False), "regression",
                         "Diabetes progression after one year from age, sex, BMI, blood pressure and 6 blood serum "
                         "measurements (unscaled)")


# -- generated two-dimensional toys ---------------------------------------------------------------------

def _points(name: str, x, y, task: str, description: str, num_classes: int, rng) -> Dataset:
    order = rng.permutation(len(y))  # classes are generated in blocks; interleave them
    return Dataset(
        arrays={"x": numpy.asarray(x, dtype=numpy.float32)[order], "y": numpy.asarray(y, dtype=numpy.int64)[order]},
        task=task, name=name, num_classes=num_classes, label_names=[str(k) for k in range(num_classes)],
        feature_names=["x1", "x2"], description=description,
    )


def _class_sizes(n_samples: int, classes: int) -> list[int]:
    return [n_samples // classes + (1 if k < n_samples % classes else 0) for k in range(classes)]


@_builtin("moons", "binary", "Two interleaving half circles in the plane", {"x": [2], "y": []})
def moons(*, seed: int = 0, n_samples: int = 1000, noise: float = 0.1) -> Dataset:
    rng = numpy.random.default_rng(seed)
    outer, inner = _class_sizes(n_samples, 2)
    angle_outer, angle_inner = rng.uniform(0, numpy.pi, outer), rng.uniform(0, numpy.pi, inner)
    x = numpy.concatenate([
        numpy.stack([numpy.cos(angle_outer), numpy.sin(angle_outer)], axis=1),
        numpy.stack([1 - numpy.cos(angle_inner), 0.5 - numpy.sin(angle_inner)], axis=1),
    ])
    x += rng.normal(0.0, noise, x.shape)
    y = numpy.repeat([0, 1], [outer, inner])
    return _points("moons", x, y, "binary", f"Two interleaving half circles, Gaussian noise {noise}", 2, rng)


@_builtin("circles", "binary", "A small circle (class 1) inside a large one (class 0)", {"x": [2], "y": []})
def circles(*, seed: int = 0, n_samples: int = 1000, noise: float = 0.05, factor: float = 0.5) -> Dataset:
    rng = numpy.random.default_rng(seed)
    sizes = _class_sizes(n_samples, 2)
    angles = rng.uniform(0, 2 * numpy.pi, n_samples)
    radius = numpy.repeat([1.0, factor], sizes)
    x = radius[:, None] * numpy.stack([numpy.cos(angles), numpy.sin(angles)], axis=1)
    x += rng.normal(0.0, noise, x.shape)
    y = numpy.repeat([0, 1], sizes)
    return _points("circles", x, y, "binary",
                   f"Concentric circles of radius 1 and {factor}, Gaussian noise {noise}", 2, rng)


@_builtin("spirals", "classification", "Interleaved spiral arms in the plane, one class per arm (3 by default)",
          {"x": [2], "y": []})
def spirals(*, seed: int = 0, n_samples: int = 1000, arms: int = 3, noise: float = 0.2,
            turns: float = 0.75) -> Dataset:
    """Arm k: radius t in [0, 1], angle 2 pi (k / arms + turns t) plus Gaussian noise (radians)."""
    if arms < 2:
        raise DataError(f"dataset 'spirals': arms must be at least 2, got {arms}")
    rng = numpy.random.default_rng(seed)
    y = numpy.repeat(numpy.arange(arms), _class_sizes(n_samples, arms))
    radius = rng.uniform(0.0, 1.0, n_samples)
    angle = 2 * numpy.pi * (y / arms + turns * radius) + rng.normal(0.0, noise, n_samples)
    x = radius[:, None] * numpy.stack([numpy.sin(angle), numpy.cos(angle)], axis=1)
    return _points("spirals", x, y, "classification",
                   f"{arms} spiral arms of {turns} turn(s), angle noise {noise} rad", arms, rng)


@_builtin("xor", "binary", "Points in [-1, 1]^2 labelled by the sign of x1 * x2 (1 when the signs differ)",
          {"x": [2], "y": []})
def xor(*, seed: int = 0, n_samples: int = 1000, noise: float = 0.1) -> Dataset:
    """Labels come from the clean points; the noise is added afterwards, so it blurs the axes."""
    rng = numpy.random.default_rng(seed)
    clean = rng.uniform(-1.0, 1.0, (n_samples, 2))
    y = (clean[:, 0] > 0) != (clean[:, 1] > 0)
    x = clean + rng.normal(0.0, noise, clean.shape)
    return _points("xor", x, y, "binary", f"XOR of the signs of two uniform coordinates, Gaussian noise {noise}",
                   2, rng)


# -- generated regression ---------------------------------------------------------------------------------

def _regression(name: str, x, y, description: str, *, feature_names=None, metadata=None) -> Dataset:
    return Dataset(arrays={"x": numpy.asarray(x, dtype=numpy.float32), "y": numpy.asarray(y, dtype=numpy.float32)},
                   task="regression", name=name, feature_names=feature_names, description=description,
                   metadata=metadata or {})


@_builtin("linear", "regression", "y = x . w + b + noise with 5 standard normal features", {"x": [5], "y": []})
def linear(*, seed: int = 0, n_samples: int = 1000, n_features: int = 5, noise: float = 0.1) -> Dataset:
    """The true coefficients and intercept are in ``metadata``."""
    rng = numpy.random.default_rng(seed)
    coefficients = rng.normal(0.0, 1.0, n_features)
    intercept = float(rng.normal(0.0, 1.0))
    x = rng.normal(0.0, 1.0, (n_samples, n_features))
    y = x @ coefficients + intercept + rng.normal(0.0, noise, n_samples)
    return _regression("linear", x, y, f"A linear function of {n_features} features plus Gaussian noise {noise}",
                       feature_names=[f"x{i + 1}" for i in range(n_features)],
                       metadata={"coefficients": coefficients.tolist(), "intercept": intercept})


@_builtin("sine", "regression", "y = sin(x) + noise for x uniform in [-pi, pi]", {"x": [1], "y": []})
def sine(*, seed: int = 0, n_samples: int = 1000, noise: float = 0.1) -> Dataset:
    rng = numpy.random.default_rng(seed)
    x = rng.uniform(-numpy.pi, numpy.pi, (n_samples, 1))
    y = numpy.sin(x[:, 0]) + rng.normal(0.0, noise, n_samples)
    return _regression("sine", x, y, f"sin(x) for x uniform in [-pi, pi], Gaussian noise {noise}", feature_names=["x"])


# -- generated sequences ------------------------------------------------------------------------------------

@_builtin("sequence_memory", "classification",
          "Noise sequences (20 steps x 8 features) whose class (1 of 4) shows only in the first 2 steps",
          {"x": [20, 8], "y": []})
def sequence_memory(*, seed: int = 0, n_samples: int = 1000, steps: int = 20, features: int = 8, classes: int = 4,
                    signal_steps: int = 2, signal: float = 2.5, noise: float = 1.0) -> Dataset:
    """x is Gaussian noise; in the first ``signal_steps`` steps, feature ``label`` is raised by
    ``signal``. The later steps carry nothing, so a model must remember the start of the sequence."""
    if classes > features or classes < 2:
        raise DataError(f"dataset 'sequence_memory': classes must be between 2 and features ({features}), "
                        f"got {classes}")
    if signal_steps > steps:
        raise DataError(f"dataset 'sequence_memory': signal_steps ({signal_steps}) exceeds steps ({steps})")
    rng = numpy.random.default_rng(seed)
    y = rng.integers(0, classes, n_samples)
    x = rng.normal(0.0, noise, (n_samples, steps, features))
    x[numpy.arange(n_samples), :signal_steps, y] += signal
    return Dataset(arrays={"x": x.astype(numpy.float32), "y": y.astype(numpy.int64)}, task="classification",
                   name="sequence_memory", num_classes=classes, label_names=[str(k) for k in range(classes)],
                   description=f"{steps} steps of {features} noise features; the class raises feature <class> "
                               f"by {signal} in the first {signal_steps} step(s) only",
                   metadata={"signal_steps": signal_steps})


@_builtin("sequence_sum", "regression", "Sequences of 20 uniform numbers in [-1, 1]; the target is their sum",
          {"x": [20, 1], "y": []})
def sequence_sum(*, seed: int = 0, n_samples: int = 1000, steps: int = 20) -> Dataset:
    rng = numpy.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n_samples, steps, 1))
    return _regression("sequence_sum", x, x.sum(axis=(1, 2)),
                       f"{steps} uniform numbers in [-1, 1] per row, one feature per step; the target is their sum")


# -- generated click-through data ------------------------------------------------------------------------------

@dataclasses.dataclass
class ClickModel:
    """The factorization machine that generates ``synthetic_ctr``:
    logit = bias + sum_f w[id_f] + sum_{f<g} <v[id_f], v[id_g]>, over global ids."""

    field_sizes: list[int]
    bias: float
    weights: numpy.ndarray  # (V,)
    factors: numpy.ndarray  # (V, k)

    @property
    def field_offsets(self) -> numpy.ndarray:
        return numpy.concatenate([[0], numpy.cumsum(self.field_sizes)[:-1]]).astype(numpy.int64)

    @property
    def vocab_size(self) -> int:
        return int(sum(self.field_sizes))

    def logits(self, ids: numpy.ndarray) -> numpy.ndarray:
        """True logits of rows of global ids, shape (N, fields)."""
        embedded = self.factors[ids]  # (N, F, k)
        # sum over pairs f < g of <v_f, v_g> = ((sum v)^2 - sum v^2) / 2, per factor
        pairwise = 0.5 * (numpy.square(embedded.sum(axis=1)) - numpy.square(embedded).sum(axis=1)).sum(axis=1)
        return self.bias + self.weights[ids].sum(axis=1) + pairwise


def click_model(*, seed: int = 0, fields: int = 8, min_cardinality: int = 10, max_cardinality: int = 20,
                factors: int = 4) -> ClickModel:
    """The generating model of ``synthetic_ctr`` for a seed (independent of the number of rows)."""
    rng = numpy.random.default_rng([seed, 0])
    field_sizes = rng.integers(min_cardinality, max_cardinality + 1, fields)
    vocab_size = int(field_sizes.sum())
    # Scales chosen so the true logits separate clicks with ROC-AUC about 0.97, while first-order
    # weights alone reach only about 0.7: the pairwise interactions matter.
    weights = rng.normal(0.0, 1.0, vocab_size)
    latent = rng.normal(0.0, 0.75, (vocab_size, factors))
    model = ClickModel([int(s) for s in field_sizes], 0.0, weights, latent)
    # Centre the logits (over every possible row, estimated on a fixed sample) for about half clicks.
    reference = _draw_ids(numpy.random.default_rng([seed, 2]), model, 20_000)
    model.bias = -float(numpy.mean(model.logits(reference)))
    return model


def _draw_ids(rng, model: ClickModel, rows: int) -> numpy.ndarray:
    values = rng.integers(0, model.field_sizes, (rows, len(model.field_sizes)))
    return values + model.field_offsets


@_builtin("synthetic_ctr", "binary",
          "Click-through-style rows of 8 categorical fields (global ids into one vocabulary), clicks drawn from "
          "a factorization machine with pairwise interactions",
          {"x": [8], "y": []})
def synthetic_ctr(*, seed: int = 0, n_samples: int = 20000, fields: int = 8, min_cardinality: int = 10,
                  max_cardinality: int = 20, factors: int = 4) -> Dataset:
    """x holds int64 global ids (field offset + value) for embedding lookups; ``metadata`` gives
    ``vocab_size``, ``field_sizes`` and ``field_offsets``. ``click_model(seed=...)`` is the truth."""
    if min_cardinality > max_cardinality:
        raise DataError(f"dataset 'synthetic_ctr': min_cardinality ({min_cardinality}) exceeds "
                        f"max_cardinality ({max_cardinality})")
    model = click_model(seed=seed, fields=fields, min_cardinality=min_cardinality, max_cardinality=max_cardinality,
                        factors=factors)
    rng = numpy.random.default_rng([seed, 1])
    ids = _draw_ids(rng, model, n_samples)
    probability = scipy.special.expit(model.logits(ids))
    clicks = (rng.random(n_samples) < probability).astype(numpy.int64)
    return Dataset(
        arrays={"x": ids, "y": clicks}, task="binary", name="synthetic_ctr", num_classes=2,
        label_names=["no click", "click"], feature_names=[f"field_{f + 1}" for f in range(fields)],
        description=f"{fields} categorical fields of {min_cardinality}-{max_cardinality} values as global ids; "
                    f"clicks from a factorization machine (first-order weights and rank-{factors} pairwise "
                    "interactions)",
        metadata={"vocab_size": model.vocab_size, "field_sizes": model.field_sizes,
                  "field_offsets": model.field_offsets.tolist(), "factors": factors},
    )
