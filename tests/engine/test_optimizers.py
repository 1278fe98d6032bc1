"""Optimizers and learning-rate schedules: the published update rules, in place, with exact resume."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy
import pytest

from engine.errors import ArtifactError, EngineError
from engine.optimizers import OPTIMIZERS, Adam, make_optimizer
from engine.schedules import SCHEDULES, make_schedule

SHAPES = {"fc1/W": (4, 3), "fc1/b": (3,)}


def make_params(dtype="float64", seed=0) -> dict:
    rng = numpy.random.default_rng(seed)
    return {key: rng.normal(size=shape).astype(dtype) for key, shape in SHAPES.items()}


def gradient_sequence(steps: int, dtype="float64", seed=1) -> list[dict]:
    rng = numpy.random.default_rng(seed)
    return [{key: rng.normal(size=shape).astype(dtype) for key, shape in SHAPES.items()} for _ in range(steps)]


def reference_run(name: str, options: dict, params: dict, grads_per_step: list[dict]) -> dict:
    """The published formulas, one parameter at a time, in float64 and without any buffer reuse."""
    lr = options["lr"]
    weight_decay = options.get("weight_decay", 0.0)
    params = {key: value.astype(numpy.float64) for key, value in params.items()}
    state = {key: {"a": numpy.zeros_like(value), "b": numpy.zeros_like(value)} for key, value in params.items()}
    for t, grads in enumerate(grads_per_step, start=1):
        for key, p in params.items():
            g = grads[key].astype(numpy.float64)
            s = state[key]
            if name != "adamw":
                g = g + weight_decay * p
            if name == "sgd":
                p = p - lr * g
            elif name in ("momentum", "nesterov"):
                mu = options["momentum"]
                s["a"] = mu * s["a"] + g
                p = p - lr * (g + mu * s["a"] if name == "nesterov" else s["a"])
            elif name == "adagrad":
                s["a"] = s["a"] + g * g
                p = p - lr * g / (numpy.sqrt(s["a"]) + options["eps"])
            elif name == "rmsprop":
                alpha = options["alpha"]
                s["a"] = alpha * s["a"] + (1 - alpha) * g * g
                p = p - lr * g / (numpy.sqrt(s["a"]) + options["eps"])
            else:  # adam, adamw
                beta1, beta2, eps = options["beta1"], options["beta2"], options["eps"]
                if name == "adamw":
                    p = p * (1 - lr * weight_decay)
                s["a"] = beta1 * s["a"] + (1 - beta1) * g
                s["b"] = beta2 * s["b"] + (1 - beta2) * g * g
                m_hat = s["a"] / (1 - beta1**t)
                v_hat = s["b"] / (1 - beta2**t)
                p = p - lr * m_hat / (numpy.sqrt(v_hat) + eps)
            params[key] = p
    return params


OPTIONS = {
    "sgd": {"lr": 0.1},
    "momentum": {"lr": 0.05, "momentum": 0.9},
    "nesterov": {"lr": 0.05, "momentum": 0.8},
    "adagrad": {"lr": 0.1, "eps": 1e-10},
    "rmsprop": {"lr": 0.01, "alpha": 0.9, "eps": 1e-8},
    "adam": {"lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-8},
    "adamw": {"lr": 0.01, "beta1": 0.8, "beta2": 0.999, "eps": 1e-8},
}


def run_steps(optimizer, params: dict, grads_per_step: list[dict]) -> None:
    for grads in grads_per_step:
        optimizer.step(params, grads)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_update_matches_the_published_formula(name, weight_decay):
    options = {**OPTIONS[name], "weight_decay": weight_decay}
    params, grads = make_params(), gradient_sequence(6)
    expected = reference_run(name, options, params, grads)
    optimizer = make_optimizer({"name": name, **options})
    run_steps(optimizer, params, grads)
    assert optimizer.step_count == 6
    for key in SHAPES:
        numpy.testing.assert_allclose(params[key], expected[key], rtol=1e-12, atol=1e-12)


def test_adam_first_update_is_lr_whatever_the_gradient_scale():
    # Bias correction: with a constant gradient m_hat = g and v_hat = g^2 at every step, so each
    # update is lr * g / (|g| + eps), about lr; without correction the first would be lr * 0.1 / sqrt(0.001).
    optimizer = Adam(lr=0.01)
    params = {"w": numpy.zeros(3)}
    grads = {"w": numpy.array([0.5, -3.0, 100.0])}
    optimizer.step(params, grads)
    numpy.testing.assert_allclose(params["w"], [-0.01, 0.01, -0.01], rtol=1e-7)
    for step in range(2, 5):
        optimizer.step(params, grads)
        numpy.testing.assert_allclose(params["w"], [-0.01 * step, 0.01 * step, -0.01 * step], rtol=1e-7)


def test_adamw_decays_the_weights_directly_unlike_adam_with_l2():
    start = numpy.array([2.0, -4.0])
    zero_grad = {"w": numpy.zeros(2)}
    adamw_params, adam_params = {"w": start.copy()}, {"w": start.copy()}
    make_optimizer("adamw", lr=0.1, weight_decay=0.5).step(adamw_params, zero_grad)
    make_optimizer("adam", lr=0.1, weight_decay=0.5).step(adam_params, zero_grad)
    # AdamW shrinks by (1 - lr * decay) and the zero gradient adds nothing...
    numpy.testing.assert_allclose(adamw_params["w"], start * (1 - 0.1 * 0.5))
    # ...Adam normalises the L2 term like any gradient: a step of lr against the sign of w.
    numpy.testing.assert_allclose(adam_params["w"], start - 0.1 * numpy.sign(start), rtol=1e-7)


def test_clip_norm_scales_all_gradients_to_the_norm_without_touching_them():
    grads = {"a": numpy.array([3.0, 0.0]), "b": numpy.array([[4.0]])}  # global norm 5
    originals = {key: value.copy() for key, value in grads.items()}
    params = {"a": numpy.zeros(2), "b": numpy.zeros((1, 1))}
    make_optimizer({"name": "sgd", "lr": 1.0, "clip_norm": 1.0}).step(params, grads)
    scale = 1.0 / (5.0 + 1e-6)
    numpy.testing.assert_allclose(params["a"], [-3.0 * scale, 0.0])
    numpy.testing.assert_allclose(params["b"], [[-4.0 * scale]])
    total = math.sqrt(sum(float((value**2).sum()) for value in params.values()))
    assert total == pytest.approx(1.0, rel=1e-6)
    for key in grads:
        numpy.testing.assert_array_equal(grads[key], originals[key])

    small = {"a": numpy.zeros(2), "b": numpy.zeros((1, 1))}
    make_optimizer({"name": "sgd", "lr": 1.0, "clip_norm": 10.0}).step(small, grads)  # below the norm: unscaled
    numpy.testing.assert_array_equal(small["a"], [-3.0, 0.0])


def test_clipping_comes_before_weight_decay():
    params, grads = {"w": numpy.array([1.0])}, {"w": numpy.array([10.0])}
    make_optimizer("sgd", lr=1.0, clip_norm=2.0, weight_decay=0.5).step(params, grads)
    numpy.testing.assert_allclose(params["w"], [1.0 - (10.0 * 2.0 / (10.0 + 1e-6) + 0.5)])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_from_state_dict_is_bit_identical(name):
    config = {"name": name, **OPTIONS[name], "weight_decay": 0.01, "clip_norm": 2.0,
              "schedule": {"name": "warmup", "warmup_steps": 2, "then": {"name": "cosine", "total_steps": 6}}}
    grads = gradient_sequence(6, dtype="float32")

    straight = make_params("float32")
    run_steps(make_optimizer(config), straight, grads)

    resumed = make_params("float32")
    first = make_optimizer(config)
    run_steps(first, resumed, grads[:3])
    arrays, meta = first.state_dict()
    arrays = {key: numpy.array(value) for key, value in arrays.items()}  # as a checkpoint file returns them
    meta = json.loads(json.dumps(meta))
    second = make_optimizer(meta["config"])
    second.load_state_dict(arrays, meta)
    assert second.step_count == 3 and second.lr == first.lr
    run_steps(second, resumed, grads[3:])

    for key in SHAPES:
        numpy.testing.assert_array_equal(resumed[key], straight[key])


def test_state_dict_keys_slots_by_parameter_and_copies_them():
    optimizer = make_optimizer("adam")
    params = make_params("float32")
    optimizer.step(params, gradient_sequence(1, "float32")[0])
    arrays, meta = optimizer.state_dict()
    assert set(arrays) == {"fc1/W/m", "fc1/W/v", "fc1/b/m", "fc1/b/v"}
    assert meta["name"] == "adam" and meta["class"] == "Adam" and meta["step"] == 1
    assert meta["config"]["lr"] == 1e-3 and meta["params"]["fc1/W"] == {"steps": 1}
    before = arrays["fc1/W/m"].copy()
    optimizer.step(params, gradient_sequence(1, "float32")[0])
    numpy.testing.assert_array_equal(arrays["fc1/W/m"], before)  # a snapshot, not the live slot


def test_load_state_dict_rejects_mismatches_naming_the_slot():
    source = make_optimizer("adam")
    source.step(make_params(), gradient_sequence(1)[0])
    arrays, meta = source.state_dict()

    missing = {key: value for key, value in arrays.items() if key != "fc1/W/m"}
    with pytest.raises(ArtifactError, match="fc1/W/m"):
        make_optimizer("adam").load_state_dict(missing, meta)
    with pytest.raises(ArtifactError, match="fc1/W/velocity"):
        make_optimizer("adam").load_state_dict({**arrays, "fc1/W/velocity": arrays["fc1/W/m"]}, meta)
    with pytest.raises(ArtifactError, match="'adam'.*'sgd'"):
        make_optimizer("sgd").load_state_dict(arrays, meta)

    # The parameters are not known until the next step, which checks the slots' shapes.
    optimizer = make_optimizer("adam")
    optimizer.load_state_dict(arrays, meta)
    wrong = {"fc1/W": numpy.zeros((5, 3)), "fc1/b": numpy.zeros(3)}
    with pytest.raises(ArtifactError, match="fc1/W/m"):
        optimizer.step(wrong, {key: numpy.ones_like(value) for key, value in wrong.items()})


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_float32_parameters_are_updated_in_place_and_stay_float32(name):
    params = make_params("float32")
    objects = dict(params)
    optimizer = make_optimizer({"name": name, "weight_decay": 0.01, "clip_norm": 1.0})
    run_steps(optimizer, params, gradient_sequence(3, "float32"))
    for key, value in params.items():
        assert value is objects[key] and value.dtype == numpy.float32
    arrays, _ = optimizer.state_dict()
    assert all(array.dtype == numpy.float32 for array in arrays.values())


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_a_step_allocates_no_parameter_sized_arrays(name):
    params = {"w": numpy.zeros((256, 256), numpy.float32)}
    grads = {"w": numpy.ones((256, 256), numpy.float32)}
    optimizer = make_optimizer({"name": name, "weight_decay": 0.01, "clip_norm": 1.0})
    optimizer.step(params, grads)  # the first step allocates the slots and scratch buffers
    tracemalloc.start()
    try:
        optimizer.step(params, grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < params["w"].nbytes // 10


def test_parameters_without_a_gradient_are_skipped():
    params = make_params()
    frozen = params["fc1/b"].copy()
    optimizer = make_optimizer("momentum")
    optimizer.step(params, {"fc1/W": numpy.ones(SHAPES["fc1/W"])})
    optimizer.step(params, {"fc1/W": numpy.ones(SHAPES["fc1/W"]), "fc1/b": None})
    numpy.testing.assert_array_equal(params["fc1/b"], frozen)
    assert optimizer.step_count == 2
    assert set(optimizer.state_dict()[0]) == {"fc1/W/velocity"}


def test_gradient_shape_must_match_its_parameter():
    with pytest.raises(EngineError, match="fc1/b"):
        make_optimizer("sgd").step(make_params(), {"fc1/b": numpy.ones(4)})


def test_lr_follows_the_schedule_by_step_count():
    optimizer = make_optimizer({"name": "sgd", "lr": 1.0, "schedule": {"name": "step", "step_size": 2, "gamma": 0.5}})
    params = {"w": numpy.zeros(1)}
    rates = []
    for _ in range(5):
        rates.append(optimizer.lr)
        before = params["w"].copy()
        optimizer.step(params, {"w": numpy.ones(1)})
        assert before - params["w"] == pytest.approx(rates[-1])  # the update used that rate
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_config_round_trips_and_overrides_apply():
    optimizer = make_optimizer({"name": "adam", "lr": 0.1, "schedule": "exponential"}, lr=0.02, clip_norm=1.0)
    config = optimizer.to_config()
    assert config["lr"] == 0.02 and config["clip_norm"] == 1.0 and config["beta1"] == 0.9
    assert config["schedule"] == {"name": "exponential", "gamma": 0.999}
    assert make_optimizer(config).to_config() == config
    assert make_optimizer("adamw").weight_decay == 0.01  # torch's AdamW default
    assert type(make_optimizer("sgd", lr=numpy.float32(0.5)).base_lr) is float  # a Python float never upcasts


def test_unknown_or_invalid_options_name_the_valid_ones():
    with pytest.raises(EngineError, match="unknown optimizer 'adamax'.*sgd, momentum, nesterov"):
        make_optimizer("adamax")
    with pytest.raises(EngineError, match="'betas'.*valid options: lr, beta1, beta2"):
        make_optimizer({"name": "adam", "betas": [0.9, 0.99]})
    with pytest.raises(EngineError, match=r"optimizer\.lr must be > 0, got -1"):
        make_optimizer("sgd", lr=-1.0)
    with pytest.raises(EngineError, match=r"optimizer\.lr must be finite"):
        make_optimizer("sgd", lr=float("inf"))
    with pytest.raises(EngineError, match=r"optimizer\.beta2 must be in \[0, 1\), got 1"):
        make_optimizer("adam", beta2=1.0)
    with pytest.raises(EngineError, match=r"optimizer\.momentum must be a number, got 'high'"):
        make_optimizer("momentum", momentum="high")
    with pytest.raises(EngineError, match="unknown schedule 'linear'"):
        make_optimizer("sgd", schedule="linear")


# -- schedules ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("config", "expected"), [
    ("constant", {0: 1.0, 1000: 1.0}),
    ({"name": "step", "step_size": 10, "gamma": 0.5}, {0: 1.0, 9: 1.0, 10: 0.5, 25: 0.25}),
    ({"name": "exponential", "gamma": 0.9}, {0: 1.0, 3: 0.729}),
    ({"name": "cosine", "total_steps": 100, "min_lr": 0.1}, {0: 1.0, 50: 0.55, 100: 0.1, 150: 0.1}),
    ({"name": "warmup", "warmup_steps": 4}, {0: 0.25, 1: 0.5, 3: 1.0, 4: 1.0, 100: 1.0}),
    ({"name": "warmup", "warmup_steps": 4, "then": {"name": "cosine", "total_steps": 100, "min_lr": 0.1}},
     {0: 0.25, 2: 0.75, 4: 1.0, 54: 0.55, 104: 0.1}),
])
def test_schedule_values_at_known_steps(config, expected):
    schedule = make_schedule(config)
    for step, lr in expected.items():
        assert schedule(step, 1.0) == pytest.approx(lr), step
    assert make_schedule(schedule.to_config()) == schedule


def test_cosine_at_half_period_is_the_mean_of_base_and_minimum():
    schedule = make_schedule({"name": "cosine", "total_steps": 10, "min_lr": 1e-4})
    assert schedule(5, 3e-3) == pytest.approx((3e-3 + 1e-4) / 2)


def test_schedule_errors_name_the_valid_choices():
    with pytest.raises(EngineError, match="valid schedules: " + ", ".join(SCHEDULES)):
        make_schedule("onecycle")
    with pytest.raises(EngineError, match="'steps'.*valid options: total_steps, min_lr"):
        make_schedule({"name": "cosine", "total_steps": 10, "steps": 3})
    with pytest.raises(EngineError, match="missing required option.*'total_steps'"):
        make_schedule({"name": "cosine"})
    with pytest.raises(EngineError, match=r"schedule\.step_size must be an integer, got 2\.5"):
        make_schedule({"name": "step", "step_size": 2.5})


@pytest.mark.parametrize("name", ["adam", "adamw"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_compiled_adam_pass_gives_what_the_numpy_passes_give(name, dtype, monkeypatch):
    """Adam's one-pass kernel (engine/ops/_numba.py) against its ten NumPy passes, over several
    steps, a parameter split across two threads included."""
    from engine import optimizers, parallel  # noqa: PLC0415
    from engine.ops import _numba  # noqa: PLC0415

    pytest.importorskip("numba")
    assert optimizers._adam_kernel(numpy) is not None
    rng = numpy.random.default_rng(4)
    start = {"w": rng.normal(size=(300, 70)).astype(dtype), "b": rng.normal(size=70).astype(dtype)}
    gradients = [{key: rng.normal(size=value.shape).astype(dtype) for key, value in start.items()} for _ in range(4)]
    results = {}
    for fused in (True, False):
        monkeypatch.setattr(_numba, "ENABLED", fused)
        params = {key: value.copy() for key, value in start.items()}
        optimizer = make_optimizer({"name": name, "lr": 0.01, "weight_decay": 0.1})
        with parallel.threads(2, grain=1):  # the kernel's pieces really split
            for grads in gradients:
                optimizer.step(params, grads)
        results[fused] = params
    tolerance = 1e-6 if dtype == "float32" else 1e-13
    for key in start:
        assert results[True][key].dtype == numpy.dtype(dtype)
        numpy.testing.assert_allclose(results[True][key], results[False][key], rtol=tolerance, atol=tolerance)
        assert not numpy.allclose(results[True][key], start[key])
