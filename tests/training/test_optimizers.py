"""train.optimizer and optimizer_args: checked before anything runs, reused per optimizer across
trials exactly, checkpointed with every piece of state, and SGD's one-cycle momentum."""

import math

import keras
import numpy as np
import pytest

from sweep.cli import main
from sweep.config import config_from_dict
from sweep.errors import ConfigError
from sweep.training.checkpoint import read_checkpoint, write_checkpoint
from sweep.training.data import Dataset
from sweep.training.model_cache import ModelCache
from sweep.training.optimizers import (MOMENTUM_HIGH, MOMENTUM_LOW, OPTIMIZER_CLASSES, check_optimizer_args,
                                       cycled_momentum, make_optimizer)
from sweep.training.params import TrialParams
from sweep.training.trainer import train

OWNER = {"study": "s", "root_trial": 0}


def config(optimizer="sgd", args=None, **search):
    return config_from_dict({
        "study": {"name": "opt"},
        "data": {"source": "synthetic"},
        "model": {"filters": [4], "dense_units": 16, "dropout": 0.0},
        "train": {"epochs": 1, "batch_size": 32, "optimizer": optimizer, "optimizer_args": args or {}},
        "search": search,
    })


def images(n=192, seed=0):
    from sweep.training.data import synthetic_images

    x, y = synthetic_images(n, seed)
    x = (x.astype("float32") / 255.0).reshape(-1, 28, 28, 1)
    return Dataset(x[:160], y[:160], x[160:], y[160:])


def test_every_optimizer_is_a_keras_optimizer_that_takes_its_args():
    assert set(OPTIMIZER_CLASSES) == {"adam", "adamw", "sgd", "nadam", "rmsprop", "lion", "schedule_free_adamw"}
    optimizer = make_optimizer(config("sgd", {"momentum": 0.9, "nesterov": True}), TrialParams(initial_lr=0.1), 0.1, 10)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov and optimizer.momentum == 0.9
    free = make_optimizer(config("schedule_free_adamw", {"beta_1": 0.8}), TrialParams(initial_lr=1e-3), 1e-3, 10)
    assert isinstance(free, keras.optimizers.ScheduleFreeAdamW) and free.beta_1 == 0.8
    # An integer given to a float argument is what YAML reads from "momentum: 1"
    assert make_optimizer(config("sgd", {"momentum": 1}), TrialParams(initial_lr=0.1), 0.1, 10).momentum == 1.0


@pytest.mark.parametrize("args, message", [
    ({"momentun": 0.9}, r"'momentun' is not an argument of sgd; expected one of: clipnorm, .*momentum, nesterov"),
    ({"momentum": 2.0}, r"optimizer_args for sgd: `momentum` must be a float between \[0, 1\]"),
])
def test_a_wrong_optimizer_arg_is_one_line(args, message):
    with pytest.raises(ConfigError, match=message) as info:
        check_optimizer_args(config("sgd", args))
    assert "\n" not in str(info.value)


def test_sweep_train_refuses_a_misspelt_arg_with_exit_2_before_loading_data(write_config, capsys):
    path = write_config("study: {name: t}\ndata: {source: idx, path: /nonexistent}\n"
                        "train: {optimizer: adamw, optimizer_args: {weight_decy: 1.0e-4}}\n")
    assert main(["train", str(path), "--params", '{"initial_lr": 0.001}']) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'weight_decy' is not an argument of adamw; expected one of: " in err
    assert "weight_decay" in err


def test_sweep_train_trains_the_cnn_with_adamw_and_weight_decay(write_config, capsys):
    path = write_config("study: {name: t}\ndata: {source: synthetic, limit: 300}\n"
                        "model: {filters: [4], dense_units: 16}\n"
                        "train: {epochs: 1, optimizer: adamw, optimizer_args: {weight_decay: 1.0e-4}}\n")
    assert main(["train", str(path), "--params", '{"initial_lr": 0.003, "schedule": "cosine"}']) == 0
    out = capsys.readouterr().out
    assert "epoch   1/1" in out and "val_accuracy" in out and "best val_accuracy" in out


def test_searched_optimizers_share_args_each_takes():
    # nesterov is SGD's alone: fine when SGD is among the searched optimizers, refused otherwise.
    check_optimizer_args(config("adam", {"nesterov": True}, optimizers=["sgd", "adamw"]))
    with pytest.raises(ConfigError, match="not an argument of adamw or nadam"):
        check_optimizer_args(config("adam", {"nesterov": True}, optimizers=["adamw", "nadam"]))


def test_one_cycle_momentum_closed_form():
    # W = 10 warm-up steps, T = 110, pct_start 0.25: the LR peaks at step 10 + 25 = 35.
    steps = np.array([0, 10, 22.5, 35, 35 + 75 / 4, 110])
    got = keras.ops.convert_to_numpy(cycled_momentum(steps, 10, 0.25, 110))
    span = MOMENTUM_HIGH - MOMENTUM_LOW
    expected = [MOMENTUM_HIGH, MOMENTUM_HIGH, MOMENTUM_HIGH - span / 2, MOMENTUM_LOW,
                MOMENTUM_HIGH - span * (1 + math.cos(math.pi / 4)) / 2, MOMENTUM_HIGH]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_sgd_reads_its_momentum_from_the_step_count():
    optimizer = make_optimizer(config("sgd", {"momentum": 0.9}), TrialParams(initial_lr=0.1), 0.1, 100)
    assert float(optimizer.momentum_now()) == pytest.approx(0.9)
    optimizer.set_cycle(warmup=0, pct_start=0.2, total=100)
    for step, expected in ((0, MOMENTUM_HIGH), (20, MOMENTUM_LOW), (100, MOMENTUM_HIGH)):
        optimizer.iterations.assign(step)
        assert float(optimizer.momentum_now()) == pytest.approx(expected, abs=1e-6)
    # One SGD step with momentum m from a zero velocity is w -= lr * g; the second adds m * (velocity).
    w = keras.Variable(np.ones(1, "float32"))
    plain = make_optimizer(config("sgd", {"momentum": 0.5}), TrialParams(initial_lr=0.1), 0.1, 10)
    plain.apply_gradients([(np.ones(1, "float32"), w)])
    plain.apply_gradients([(np.ones(1, "float32"), w)])
    assert float(w.numpy()[0]) == pytest.approx(1 - 0.1 - (0.5 * 0.1 + 0.1))


@pytest.mark.parametrize("optimizer, args, params", [
    ("sgd", {"momentum": 0.9, "nesterov": True}, {}),
    ("adamw", {}, {"weight_decay": 1e-3}),
    ("schedule_free_adamw", {}, {}),
])
def test_a_reused_compiled_model_trains_as_a_fresh_one_for_each_optimizer(optimizer, args, params):
    """The cache resets the optimizer (schedule-free's z sequence included) and sets the trial's
    weight decay: trial B after A on one compiled model gives B's fresh history."""
    cfg, data, cache = config(optimizer, args), images(), ModelCache()
    a = TrialParams(initial_lr=0.05 if optimizer == "sgd" else 3e-3, schedule="cosine", **params)
    b_values = {**params, "weight_decay": 1e-4} if params else {}
    b = TrialParams(initial_lr=0.02 if optimizer == "sgd" else 1e-3, schedule="linear", **b_values)
    train(cfg, a, data, seed=1, models=cache)
    reused = train(cfg, b, data, seed=2, models=cache)
    assert len(cache._models) == 1  # one compiled model served both
    fresh = train(cfg, b, data, seed=2)
    for r, f in zip(reused.history, fresh.history, strict=True):
        assert (r.loss, r.val_loss, r.val_accuracy) == pytest.approx((f.loss, f.val_loss, f.val_accuracy), rel=1e-4)


def test_a_worker_keeps_one_compiled_model_per_optimizer():
    cfg, data, cache = config("adam", {}, optimizers=["sgd", "adamw"]), images(96), ModelCache()
    for name in ("sgd", "adamw", "sgd"):
        train(cfg, TrialParams(initial_lr=1e-2, optimizer=name), data, seed=0, models=cache)
    assert sorted(type(m.optimizer).__name__ for m, _ in cache._models.values()) == ["SweepAdamW", "SweepSGD"]


class _Stop(keras.callbacks.Callback):
    def __init__(self, path, state):
        super().__init__()
        self.path, self.state = path, state

    def on_epoch_end(self, epoch, logs=None):
        write_checkpoint(self.path, self.model, [], OWNER)
        self.state.extend(keras.ops.convert_to_numpy(v).copy() for v in self.model.optimizer.variables)
        raise KeyboardInterrupt


@pytest.mark.parametrize("optimizer, args, params", [
    ("sgd", {"momentum": 0.9, "nesterov": True}, {"schedule": "one_cycle", "pct_start": 0.3}),
    ("adamw", {"weight_decay": 1e-3}, {"schedule": "linear"}),
    ("schedule_free_adamw", {}, {"schedule": "constant"}),
])
def test_a_checkpoint_restores_every_optimizer_state_exactly(tmp_path, optimizer, args, params):
    cfg, data, state = config(optimizer, args), images(), []
    path = tmp_path / "c.zip"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, TrialParams(initial_lr=0.01, **params), data, seed=0, callbacks=[_Stop(path, state)])
    restored = read_checkpoint(path, OWNER).model.optimizer
    assert type(restored).__name__ == f"Sweep{type(restored).__mro__[2].__name__}"
    # The schedule's variables ride last in a live optimizer; its config restores them, not the archive.
    assert len(restored.variables) < len(state) and int(restored.iterations) == 5  # 160 images / 32
    for saved, loaded in zip(state, restored.variables, strict=False):
        np.testing.assert_array_equal(saved, keras.ops.convert_to_numpy(loaded))
    if optimizer == "sgd":  # the one-cycle momentum continues where it stopped: step 5 of 5 epochs' 5
        assert restored.momentum_cycle == {"warmup": 0, "pct_start": 0.3, "total": 5}
        assert float(restored.momentum_now()) == pytest.approx(MOMENTUM_HIGH, abs=1e-6)


def test_sgd_momentum_cycles_with_one_cycle_during_training():
    cfg, data, seen = config("sgd", {"momentum": 0.9}), images(), []

    class Watch(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append((int(self.model.optimizer.iterations), float(self.model.optimizer.momentum_now())))

    train(cfg, TrialParams(initial_lr=0.05, schedule="one_cycle", pct_start=0.4), data, seed=0, callbacks=[Watch()])
    steps, momenta = zip(*seen)
    expected = keras.ops.convert_to_numpy(cycled_momentum(np.array(steps), 0, 0.4, 5))
    np.testing.assert_allclose(momenta, expected, atol=1e-6)
    assert momenta[0] == pytest.approx(MOMENTUM_HIGH) and min(momenta) < 0.87  # down towards 0.85 at the LR's peak
    # Another schedule on the same optimizer: the configured momentum, fixed.
    seen.clear()
    train(cfg, TrialParams(initial_lr=0.05, schedule="cosine"), data, seed=0, callbacks=[Watch()])
    assert {round(m, 6) for _, m in seen} == {0.9}


def test_schedule_free_starts_its_z_sequence_at_the_weights_under_fit():
    """Keras 3.15's own ScheduleFreeAdamW starts z at zero under fit, so its first step
    replaces every weight by about -lr * sign(g); sweep's sets z from the weights at step 0."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=make_optimizer(config("schedule_free_adamw"), TrialParams(initial_lr=1e-3), 1e-3, 1),
                  loss="mse")
    before = keras.ops.convert_to_numpy(model.trainable_variables[0]).copy()
    model.fit(np.ones((4, 3)), np.ones((4, 2)), batch_size=4, verbose=0)
    after = keras.ops.convert_to_numpy(model.trainable_variables[0])
    np.testing.assert_allclose(after, before, atol=2e-3)  # one small step, not a reset
