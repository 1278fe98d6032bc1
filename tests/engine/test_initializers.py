"""Initializers: the documented distributions, reproducible by seed, float64 draws cast last."""

from __future__ import annotations

import math

import numpy
import pytest

from engine.errors import EngineError
from engine.initializers import INITIALIZER_NAMES, INITIALIZERS, initialize

FAN_IN, FAN_OUT = 800, 400
LARGE = (FAN_IN, FAN_OUT)


def draw(config, shape=LARGE, seed=0, **options):
    rng = numpy.random.default_rng(seed)
    return initialize(config, shape, fan_in=FAN_IN, fan_out=FAN_OUT, rng=rng, **options)


@pytest.mark.parametrize(("name", "std"), [
    ("glorot_uniform", math.sqrt(2.0 / (FAN_IN + FAN_OUT))),
    ("glorot_normal", math.sqrt(2.0 / (FAN_IN + FAN_OUT))),
    ("he_uniform", math.sqrt(2.0 / FAN_IN)),
    ("he_normal", math.sqrt(2.0 / FAN_IN)),
    ("lecun_normal", math.sqrt(1.0 / FAN_IN)),
])
def test_scaled_initializers_have_the_published_standard_deviation(name, std):
    values = draw(name).astype(numpy.float64)
    assert values.std() == pytest.approx(std, rel=0.01)
    assert abs(values.mean()) < 5 * std / math.sqrt(values.size)


@pytest.mark.parametrize(("name", "limit"), [
    ("glorot_uniform", math.sqrt(6.0 / (FAN_IN + FAN_OUT))),
    ("he_uniform", math.sqrt(6.0 / FAN_IN)),
])
def test_uniform_initializers_stay_within_their_limit(name, limit):
    values = draw(name)
    assert values.min() >= -limit and values.max() <= limit
    assert values.max() > 0.99 * limit  # and use the whole range


def test_options_set_the_distribution():
    values = draw({"name": "uniform", "low": 2.0, "high": 3.0})
    assert values.min() >= 2.0 and values.max() <= 3.0 and values.mean() == pytest.approx(2.5, abs=0.01)
    values = draw({"name": "normal", "mean": 1.0, "std": 0.5}).astype(numpy.float64)
    assert values.mean() == pytest.approx(1.0, abs=0.01) and values.std() == pytest.approx(0.5, rel=0.01)
    numpy.testing.assert_array_equal(draw({"name": "constant", "value": 0.25}, (2, 3)), numpy.full((2, 3), 0.25))
    numpy.testing.assert_array_equal(draw("zeros", (3,)), numpy.zeros(3))
    numpy.testing.assert_array_equal(draw("ones", (3,)), numpy.ones(3))


def test_same_seed_same_weights_and_every_dtype_casts_the_same_draw():
    first, again, other = draw("he_normal", (64, 32)), draw("he_normal", (64, 32)), draw("he_normal", (64, 32), seed=1)
    numpy.testing.assert_array_equal(first, again)
    assert not numpy.array_equal(first, other)
    wide = draw("he_normal", (64, 32), dtype="float64")
    assert first.dtype == numpy.float32 and wide.dtype == numpy.float64
    numpy.testing.assert_array_equal(first, wide.astype(numpy.float32))


def test_array_module_and_shape():
    values = draw("glorot_uniform", (2, 3, 4), xp=numpy)
    assert isinstance(values, numpy.ndarray) and values.shape == (2, 3, 4)
    assert draw("zeros", ()).shape == ()


def test_names_for_the_op_catalog():
    assert INITIALIZER_NAMES == tuple(INITIALIZERS)
    assert {"zeros", "ones", "constant", "normal", "uniform", "glorot_uniform", "glorot_normal",
            "he_uniform", "he_normal"} <= set(INITIALIZER_NAMES)


def test_errors_say_what_is_valid():
    with pytest.raises(EngineError, match="unknown initializer 'xavier'.*glorot_uniform"):
        draw("xavier")
    with pytest.raises(EngineError, match="'stddev'.*valid options: mean, std"):
        draw({"name": "normal", "stddev": 1.0})
    with pytest.raises(EngineError, match="'std' must be >= 0"):
        draw({"name": "normal", "std": -1.0})
    with pytest.raises(EngineError, match="'low'.*must be <= 'high'"):
        draw({"name": "uniform", "low": 1.0, "high": 0.0})
    with pytest.raises(EngineError, match="'value' must be a finite number"):
        draw({"name": "constant", "value": "one"})
    with pytest.raises(EngineError, match="fan_in and fan_out must be >= 1"):
        initialize("he_normal", (3,), fan_in=0, fan_out=3, rng=numpy.random.default_rng(0))
