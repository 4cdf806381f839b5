import math

import keras
import pytest

from sweep.training.data import load_dataset
from sweep.training.params import TrialParams
from sweep.training.model_cache import ModelCache
from sweep.training.trainer import EpochLog, TrainResult, total_steps, train


def test_one_epoch_on_synthetic_data_learns_and_records(tiny_config):
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 2})})
    data = load_dataset(config.data, seed=0)
    seen = []
    result = train(config, TrialParams(initial_lr=3e-3, schedule="step", decay_rate=0.9, decay_steps=5), data, seed=0, on_epoch=seen.append)
    assert [e.epoch for e in result.history] == [1, 2] and seen == result.history
    assert not result.diverged
    assert result.history[-1].val_accuracy > 0.25  # 10 classes: chance is 0.1
    assert result.history[-1].lr < result.history[0].lr  # step decay
    assert result.value() == max(e.val_accuracy for e in result.history)


def test_training_is_reproducible_with_a_seed(tiny_config):
    data = load_dataset(tiny_config.data, seed=0)
    a = train(tiny_config, TrialParams(initial_lr=1e-3), data, seed=7)
    b = train(tiny_config, TrialParams(initial_lr=1e-3), data, seed=7)
    assert a.history[0].loss == pytest.approx(b.history[0].loss, rel=1e-5)


def test_a_huge_learning_rate_diverges_and_stops(tiny_config):
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    data = load_dataset(config.data, seed=0)
    result = train(config, TrialParams(initial_lr=1e3), data, seed=0)
    assert result.diverged
    assert len(result.history) == 1
    assert math.isnan(result.value()) or result.value() <= 0.2


def test_value_best_or_last_and_metric_direction():
    def log(epoch, acc, loss):
        return EpochLog(epoch, 1.0, loss, 0.1, 1.0, {"val_accuracy": acc})

    result = TrainResult(history=[log(1, 0.5, 0.9), log(2, 0.8, 0.4), log(3, 0.7, 0.6)])
    assert result.value("val_accuracy", "best") == 0.8
    assert result.value("val_accuracy", "last") == 0.7
    assert result.value("val_loss", "best") == 0.4
    assert math.isnan(TrainResult().value())


def test_value_mean_of_the_last_three_epochs():
    def log(epoch, acc, loss):
        return EpochLog(epoch, 1.0, loss, 0.1, 1.0, {"val_accuracy": acc})

    # A lucky peak at epoch 2 wins "best" but not the mean of the last three.
    result = TrainResult(history=[log(1, 0.5, 0.9), log(2, 0.9, 0.3), log(3, 0.6, 0.6), log(4, 0.7, 0.5),
                                  log(5, 0.8, 0.4)])
    assert result.value("val_accuracy", "mean_last3") == pytest.approx((0.6 + 0.7 + 0.8) / 3)
    assert result.value("val_loss", "mean_last3") == pytest.approx((0.6 + 0.5 + 0.4) / 3)
    assert result.value("val_accuracy", "best") == 0.9
    # Shorter runs (a pruned or diverged trial) average what they have.
    short = TrainResult(history=[log(1, 0.5, 0.9), log(2, 0.7, 0.4)])
    assert short.value("val_accuracy", "mean_last3") == pytest.approx(0.6)
    assert math.isnan(TrainResult().value("val_accuracy", "mean_last3"))
    # A non-finite epoch among the last three makes the mean non-finite (a diverged run has no score).
    broken = TrainResult(history=[log(1, 0.5, 0.9), log(2, math.nan, math.nan)])
    assert math.isnan(broken.value("val_loss", "mean_last3"))


def test_value_rejects_an_unknown_objective():
    with pytest.raises(ValueError, match="objective must be one of"):
        TrainResult(history=[EpochLog(1, 1.0, 0.5, 0.1, 1.0, {"val_accuracy": 0.5})]).value("val_accuracy", "median")


def test_total_steps():
    assert total_steps(2700, 64, 10) == 43 * 10


def test_steps_per_execution_trains_the_same_model_and_still_catches_divergence(tiny_config):
    def with_spe(spe, epochs=2):
        return tiny_config.model_copy(
            update={"train": tiny_config.train.model_copy(update={"epochs": epochs, "steps_per_execution": spe})}
        )

    data = load_dataset(tiny_config.data, seed=0)
    params = TrialParams(initial_lr=3e-3, schedule="cosine", warmup_fraction=0.2)
    one = train(with_spe(1), params, data, seed=3)
    four = train(with_spe(4), params, data, seed=3)
    for a, b in zip(one.history, four.history, strict=True):
        assert (b.loss, b.val_loss, b.lr) == pytest.approx((a.loss, a.val_loss, a.lr), rel=1e-4)
    assert train(with_spe(4, epochs=3), TrialParams(initial_lr=1e3), data, seed=0).diverged


def test_a_reused_compiled_model_trains_exactly_as_a_fresh_one(tiny_config):
    """The worker's model cache is a speed-up only: trial B after trial A on the same
    compiled model gives B's fresh-process history, whatever A did to the weights."""
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 2})})
    data = load_dataset(config.data, seed=0)
    a = TrialParams(initial_lr=1e3)  # diverges: NaN weights and optimizer state left behind
    b = TrialParams(initial_lr=3e-3, schedule="exponential", decay_rate=0.7, decay_steps=3, warmup_fraction=0.1)
    cache = ModelCache()
    assert train(config, a, data, seed=1, models=cache).diverged

    class PrunedMidway(keras.callbacks.Callback):  # as the pruner does: an exception out of fit
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("pruned")

    with pytest.raises(RuntimeError, match="pruned"):
        train(config, b, data, seed=5, models=cache, callbacks=[PrunedMidway()])
    keras.backend.clear_session()  # evaluate and older workers call it between runs
    reused = train(config, b, data, seed=2, models=cache)
    fresh = train(config, b, data, seed=2)
    assert not reused.diverged and len(reused.history) == 2
    for r, f in zip(reused.history, fresh.history, strict=True):
        assert (r.loss, r.val_loss, r.val_accuracy, r.lr) == pytest.approx((f.loss, f.val_loss, f.val_accuracy, f.lr), rel=1e-5)


def test_the_model_cache_compiles_once_per_architecture(tiny_config):
    cache = ModelCache()
    params = TrialParams(initial_lr=1e-3)
    shape = (28, 28, 1)
    first = cache.model_for(tiny_config, params, 10, shape, 10)
    assert cache.model_for(tiny_config, TrialParams(initial_lr=1e-2, schedule="cosine"), 20, shape, 10) is first
    wider = tiny_config.model_copy(update={"model": tiny_config.model.model_copy(update={"dense_units": 7})})
    other = cache.model_for(wider, params, 10, shape, 10)
    assert other is not first and other.layers[-3].units == 7
    assert cache.model_for(wider, params, 10, shape, 10) is other
    fewer_classes = cache.model_for(wider, params, 10, shape, 3)  # other data: another model
    assert fewer_classes is not other and fewer_classes.output_shape == (None, 3)
