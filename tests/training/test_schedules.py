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
    return np.array([float(keras.ops.convert_to_numpy(schedule(t))) for t in range(total + 1)])


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
]


@pytest.mark.parametrize("params", ALL_PARAMS, ids=lambda p: f"{p.schedule}-w{p.warmup_fraction}")
def test_keras_schedule_matches_the_formulas(params):
    np.testing.assert_allclose(keras_curve(params), learning_rates(params.to_dict(), T), rtol=2e-5, atol=1e-9)


def test_staircase_example_from_the_seeds():
    lr = keras_curve(TrialParams(initial_lr=0.1, schedule="step", decay_rate=0.95, decay_steps=95))
    np.testing.assert_allclose(lr[0:95], 0.1, rtol=1e-6)
    np.testing.assert_allclose(lr[95:190], 0.095, rtol=1e-6)
    np.testing.assert_allclose(lr[190:285], 0.09025, rtol=1e-6)


def test_exponential_closed_form():
    lr = keras_curve(TrialParams(initial_lr=0.05, schedule="exponential", decay_rate=0.96, decay_steps=10))
    assert lr[5] == pytest.approx(0.05 * 0.96 ** (5.0 / 10.0), rel=1e-6)
    assert lr[250] == pytest.approx(0.05 * 0.96 ** 25.0, rel=1e-5)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "linear"])
def test_warmup_is_linear_and_reaches_initial_lr_when_it_ends(schedule):
    params = TrialParams(initial_lr=0.02, schedule=schedule, warmup_fraction=0.1)
    w = warmup_steps(0.1, T)
    lr = keras_curve(params)
    assert w == 30
    assert lr[0] == 0.0
    assert lr[15] == pytest.approx(0.01, rel=1e-6)
    assert lr[w] == pytest.approx(0.02, rel=1e-6)
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
        for t in (0, 17, 150, T):
            assert float(restored(t)) == pytest.approx(float(schedule(t)), rel=1e-6)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="total_steps"):
        build_schedule(TrialParams(initial_lr=0.1), 0)


def test_assign_switches_one_schedule_object_to_every_other_curve():
    """What lets one compiled model serve every trial: the same object, any curve."""
    schedule = build_schedule(ALL_PARAMS[-1], 50)
    for params in ALL_PARAMS:
        schedule.assign(params, T)
        np.testing.assert_allclose(
            [float(schedule(t)) for t in range(0, T + 1, 7)],
            learning_rates(params.to_dict(), T, range(0, T + 1, 7)), rtol=2e-5, atol=1e-9,
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
