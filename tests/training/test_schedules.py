"""Closed-form tests of the schedules, Keras against the numpy formulas, and the LR used in fit."""

import math

import keras
import numpy as np
import pytest

from sweep.training.params import TrialParams
from sweep.training.schedule_math import learning_rates, warmup_steps
from sweep.training.schedules import TrialSchedule, build_schedule

T = 300


def keras_curve(params: TrialParams, total: int = T) -> np.ndarray:
    schedule = build_schedule(params, total)
    # The formulas are elementwise: every step in one call (the fit test below calls it per step).
    return keras.ops.convert_to_numpy(schedule(np.arange(total + 1))).astype(np.float64)


ALL_PARAMS = [
    TrialParams(initial_lr=0.01),
    TrialParams(initial_lr=0.01, warmup_fraction=0.1),
    TrialParams(initial_lr=0.1, schedule="exponential", decay_rate=0.9, decay_steps=40),
    TrialParams(initial_lr=0.1, schedule="exponential", decay_rate=0.5, decay_steps=50, warmup_fraction=0.2),
    TrialParams(initial_lr=0.1, schedule="step", decay_rate=0.95, decay_steps=95),
    TrialParams(initial_lr=0.1, schedule="step", decay_rate=0.7, decay_steps=33, warmup_fraction=0.05),
    TrialParams(initial_lr=0.003, schedule="cosine"),
    TrialParams(initial_lr=0.003, schedule="cosine", warmup_fraction=0.3),
    TrialParams(initial_lr=0.003, schedule="linear"),
    TrialParams(initial_lr=0.003, schedule="linear", warmup_fraction=0.25),
    TrialParams(initial_lr=0.1, schedule="exponential", decay_rate=0.5, decay_steps=50, min_lr_ratio=0.1),
    TrialParams(initial_lr=0.003, schedule="cosine", warmup_fraction=0.1, min_lr_ratio=0.0316),
    TrialParams(initial_lr=0.003, schedule="linear", min_lr_ratio=0.01),
    TrialParams(initial_lr=0.01, schedule="one_cycle", pct_start=0.3),
    TrialParams(initial_lr=0.01, schedule="one_cycle", pct_start=0.1, warmup_fraction=0.1, min_lr_ratio=0.01),
    TrialParams(initial_lr=0.01, schedule="wsd", decay_fraction=0.2, decay_shape="linear"),
    TrialParams(initial_lr=0.01, schedule="wsd", decay_fraction=0.5, decay_shape="cosine", min_lr_ratio=0.1),
    TrialParams(initial_lr=0.01, schedule="wsd", decay_fraction=0.3, decay_shape="sqrt", warmup_fraction=0.1),
    TrialParams(initial_lr=0.01, schedule="cosine_restarts", restart_fraction=0.2),
    TrialParams(initial_lr=0.01, schedule="cosine_restarts", restart_fraction=0.15, t_mul=1.0, m_mul=0.7,
                min_lr_ratio=0.01, warmup_fraction=0.05),
    TrialParams(initial_lr=0.01, schedule="cosine_restarts", restart_fraction=0.1, t_mul=1.5, m_mul=0.9),
    TrialParams(initial_lr=0.01, schedule="polynomial", power=2.0),
    TrialParams(initial_lr=0.01, schedule="polynomial", power=0.5, min_lr_ratio=0.001, warmup_fraction=0.2),
]


def tolerance(params: TrialParams) -> dict:
    """float32 against float64: relative, with an absolute floor a millionth of the peak."""
    return {"rtol": 2e-5, "atol": 1e-6 * params.initial_lr}


@pytest.mark.parametrize("params", ALL_PARAMS, ids=lambda p: f"{p.schedule}-w{p.warmup_fraction}-r{p.min_lr_ratio}")
def test_keras_schedule_matches_the_formulas(params):
    np.testing.assert_allclose(keras_curve(params), learning_rates(params.to_dict(), T), **tolerance(params))


def keras_reference(params: TrialParams, span: int):
    """Keras' own schedule class for ``params`` (without warm-up) over ``span`` steps."""
    s = keras.optimizers.schedules
    lr0, floor = params.initial_lr, params.min_lr_ratio or 0.0
    if params.schedule == "exponential":
        assert floor == 0.0
        return s.ExponentialDecay(lr0, params.decay_steps, params.decay_rate)
    if params.schedule == "cosine":
        return s.CosineDecay(lr0, span, alpha=floor)
    if params.schedule in ("linear", "polynomial"):
        return s.PolynomialDecay(lr0, span, end_learning_rate=floor * lr0, power=params.power or 1.0)
    assert params.schedule == "cosine_restarts"
    return s.CosineDecayRestarts(lr0, params.restart_fraction * span, t_mul=params.t_mul or 2.0,
                                 m_mul=params.m_mul or 1.0, alpha=floor)


@pytest.mark.parametrize("params", [
    TrialParams(initial_lr=0.1, schedule="exponential", decay_rate=0.9, decay_steps=40),
    TrialParams(initial_lr=0.003, schedule="cosine", min_lr_ratio=0.1, warmup_fraction=0.1),
    TrialParams(initial_lr=0.003, schedule="linear", min_lr_ratio=0.01),
    TrialParams(initial_lr=0.01, schedule="polynomial", power=2.0, min_lr_ratio=0.0316, warmup_fraction=0.2),
    TrialParams(initial_lr=0.01, schedule="polynomial", power=0.5),
    # first periods of 61.8 and 27.9 steps: Keras' float32 restart index is exact between boundaries
    TrialParams(initial_lr=0.01, schedule="cosine_restarts", restart_fraction=0.206),
    TrialParams(initial_lr=0.01, schedule="cosine_restarts", restart_fraction=0.31, t_mul=1.0, m_mul=0.8,
                min_lr_ratio=0.01, warmup_fraction=0.1),
    TrialParams(initial_lr=0.01, schedule="cosine_restarts", restart_fraction=0.093, t_mul=1.5, m_mul=0.9,
                min_lr_ratio=0.1),
], ids=lambda p: f"{p.schedule}-w{p.warmup_fraction}")
def test_each_family_is_the_keras_schedule_it_names_after_warmup(params):
    w = warmup_steps(params.warmup_fraction, T)
    reference = keras_reference(params, T - w)
    expected = keras.ops.convert_to_numpy(reference(np.arange(T + 1 - w))).astype(np.float64)
    np.testing.assert_allclose(keras_curve(params)[w:], expected, **tolerance(params))
    np.testing.assert_allclose(learning_rates(params.to_dict(), T)[w:], expected, **tolerance(params))


def test_one_cycle_closed_form():
    lr = keras_curve(TrialParams(initial_lr=0.01, schedule="one_cycle", pct_start=0.3))
    assert lr[0] == pytest.approx(0.01 / 25, rel=1e-6)  # div_factor 25
    assert lr[45] == pytest.approx(0.01 / 25 + (0.01 - 0.01 / 25) / 2, rel=1e-5)  # half way up the cosine
    assert lr[90] == pytest.approx(0.01, rel=1e-6) and lr.argmax() == 90
    assert lr[195] == pytest.approx((0.01 + 1e-6) / 2, rel=1e-5)  # half way down
    assert lr[T] == pytest.approx(0.01 / 1e4, rel=1e-4)  # final_div 1e4
    assert np.all(np.diff(lr[:91]) > 0) and np.all(np.diff(lr[90:]) < 0)
    floored = keras_curve(TrialParams(initial_lr=0.01, schedule="one_cycle", pct_start=0.3, min_lr_ratio=0.1))
    assert floored[T] == pytest.approx(0.001, rel=1e-5) and floored[90] == pytest.approx(0.01, rel=1e-6)


@pytest.mark.parametrize("shape, at_270", [("linear", 0.5), ("cosine", 0.5), ("sqrt", 1 - math.sqrt(0.5))])
def test_wsd_closed_form(shape, at_270):
    lr = keras_curve(TrialParams(initial_lr=0.02, schedule="wsd", decay_fraction=0.2, decay_shape=shape))
    np.testing.assert_allclose(lr[:241], 0.02, rtol=1e-6)  # stable until the last fifth
    assert lr[270] == pytest.approx(0.02 * at_270, rel=1e-5)
    assert lr[T] == pytest.approx(0.0, abs=1e-9)
    floored = keras_curve(TrialParams(initial_lr=0.02, schedule="wsd", decay_fraction=0.2, decay_shape=shape,
                                      min_lr_ratio=0.1))
    assert floored[270] == pytest.approx(0.02 * (0.1 + 0.9 * at_270), rel=1e-5) and floored[T] == pytest.approx(0.002)


def test_cosine_restarts_closed_form():
    lr = keras_curve(TrialParams(initial_lr=0.01, schedule="cosine_restarts", restart_fraction=0.2, m_mul=0.5))
    # periods of 60, 120 and 240 steps (t_mul 2), peaks 0.01, 0.005, 0.0025 (m_mul 0.5)
    assert lr[0] == pytest.approx(0.01) and lr[30] == pytest.approx(0.005, rel=1e-5)
    assert lr[60] == pytest.approx(0.005, rel=1e-5) and lr[59] < 1e-4
    assert lr[120] == pytest.approx(0.0025, rel=1e-5) and lr[180] == pytest.approx(0.0025, rel=1e-5)
    assert lr[179] < 1e-4 and lr[T] == pytest.approx(0.0025 * math.cos(math.pi / 4) ** 2, rel=1e-5)


def test_polynomial_and_floors_closed_form():
    lr = keras_curve(TrialParams(initial_lr=0.01, schedule="polynomial", power=2.0, min_lr_ratio=0.1))
    assert lr[150] == pytest.approx(0.01 * (0.1 + 0.9 * 0.25), rel=1e-5) and lr[T] == pytest.approx(0.001, rel=1e-5)
    step = keras_curve(TrialParams(initial_lr=0.1, schedule="step", decay_rate=0.5, decay_steps=100, min_lr_ratio=0.2))
    assert step[250] == pytest.approx(0.1 * (0.2 + 0.8 * 0.25), rel=1e-5)


def test_staircase_example_from_the_seeds():
    lr = keras_curve(TrialParams(initial_lr=0.1, schedule="step", decay_rate=0.95, decay_steps=95))
    np.testing.assert_allclose(lr[0:95], 0.1, rtol=1e-6)
    np.testing.assert_allclose(lr[95:190], 0.095, rtol=1e-6)
    np.testing.assert_allclose(lr[190:285], 0.09025, rtol=1e-6)


def test_exponential_closed_form():
    lr = keras_curve(TrialParams(initial_lr=0.05, schedule="exponential", decay_rate=0.96, decay_steps=10))
    assert lr[5] == pytest.approx(0.05 * 0.96 ** (5.0 / 10.0), rel=1e-6)
    assert lr[250] == pytest.approx(0.05 * 0.96 ** 25.0, rel=1e-5)


@pytest.mark.parametrize("params", [p for p in ALL_PARAMS if p.warmup_fraction == 0],
                         ids=lambda p: f"{p.schedule}-r{p.min_lr_ratio}")
def test_warmup_is_linear_and_reaches_where_the_curve_starts(params):
    """Every family warms up: 0 to the curve's first value (initial_lr; one_cycle's initial_lr / 25)."""
    start = keras_curve(params)[0]
    assert start == pytest.approx(params.initial_lr / (25 if params.schedule == "one_cycle" else 1), rel=1e-6)
    lr = keras_curve(params.model_copy(update={"warmup_fraction": 0.1}))
    w = warmup_steps(0.1, T)
    assert w == 30
    assert lr[0] == 0.0
    assert lr[15] == pytest.approx(start / 2, rel=1e-6)
    assert lr[w] == pytest.approx(start, rel=1e-6)
    assert lr[w - 1] < lr[w]


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
@pytest.mark.parametrize("warmup", [0.0, 0.2])
def test_cosine_and_linear_decay_to_zero_at_the_end_of_training(schedule, warmup):
    lr = keras_curve(TrialParams(initial_lr=0.02, schedule=schedule, warmup_fraction=warmup))
    w = warmup_steps(warmup, T)
    assert lr[w] == pytest.approx(0.02, rel=1e-6)
    assert lr[T] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(lr[w:]) <= 1e-12)
    midpoint = w + (T - w) // 2
    assert lr[midpoint] == pytest.approx(0.01, rel=1e-2)


def test_schedules_serialize_and_come_back_equal():
    for params in ALL_PARAMS:
        schedule = build_schedule(params, T)
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
        assert isinstance(restored, TrialSchedule)
        steps = np.array([0, 17, 150, T])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(steps)),
                                   keras.ops.convert_to_numpy(schedule(steps)), rtol=1e-6)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="total_steps"):
        build_schedule(TrialParams(initial_lr=0.1), 0)


def test_assign_switches_one_schedule_object_to_every_other_curve():
    """What lets one compiled model serve every trial: the same object, any curve."""
    schedule = build_schedule(ALL_PARAMS[-1], 50)
    for params in ALL_PARAMS:
        schedule.assign(params, T)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(schedule(np.arange(0, T + 1, 7))),
            learning_rates(params.to_dict(), T, range(0, T + 1, 7)), **tolerance(params),
        )


def test_the_optimizer_uses_the_schedule_during_fit():
    """Record the LR Adam applies at each batch of a real fit and compare with the formula."""
    from sweep.config import ModelConfig
    from sweep.training.model import build_model, compile_model

    params = TrialParams(initial_lr=0.01, schedule="step", decay_rate=0.5, decay_steps=4, warmup_fraction=0.2)
    x = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    y = np.arange(64) % 10
    steps = 2 * math.ceil(64 / 8)
    model = compile_model(build_model(ModelConfig(filters=[2], dense_units=4)), build_schedule(params, steps))
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            opt = self.model.optimizer
            seen.append((int(keras.ops.convert_to_numpy(opt.iterations)),
                         float(keras.ops.convert_to_numpy(opt.learning_rate))))

    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False, callbacks=[Spy()])
    iterations = [i for i, _ in seen]
    assert iterations == list(range(steps))
    np.testing.assert_allclose([lr for _, lr in seen], learning_rates(params.to_dict(), steps, iterations), rtol=1e-5)


def test_one_traced_step_serves_every_family_without_retracing():
    """The design the model cache relies on: ``assign`` reaches a step traced once, whatever the family."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function is TensorFlow's; tests/test_jax_backend.py covers JAX's compiled step")
    import tensorflow as tf

    schedule = build_schedule(ALL_PARAMS[0], T)
    traced = tf.function(lambda steps: schedule(steps))
    steps = np.arange(0, T + 1, 7)
    for params in ALL_PARAMS:
        schedule.assign(params, T)
        np.testing.assert_allclose(traced(tf.constant(steps)).numpy(), learning_rates(params.to_dict(), T, steps),
                                   **tolerance(params))
    assert traced.experimental_get_tracing_count() == 1
