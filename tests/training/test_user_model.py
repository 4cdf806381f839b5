"""model.builder: the user's model, checked before it trains, and reused across trials exactly."""

import keras
import numpy as np
import pytest

from sweep.config import config_from_dict
from sweep.errors import ConfigError
from sweep.training.data import Dataset
from sweep.training.model import compile_model, make_model
from sweep.training.model_cache import ModelCache
from sweep.training.params import TrialParams
from sweep.training.trainer import train
from tests.conftest import BN_DROPOUT_BUILDER


def config_for(builder, tmp_path, **model):
    return config_from_dict({
        "study": {"name": "own", "code_dir": str(tmp_path)},
        "data": {"source": "npz", "path": "unused.npz"},
        "model": {"builder": builder, **model},
        "train": {"epochs": 2, "batch_size": 16},
    })


def vectors(n=160, features=12, classes=3, seed=0):
    """Learnable vectors: each class shifts a different feature."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(0, 1, (n, features)).astype("float32")
    x[np.arange(n), y] += 4.0
    split = n * 3 // 4
    return Dataset(x[:split], y[:split], x[split:], y[split:], classes)


def test_a_builder_gets_the_datas_shape_and_classes(tmp_path, user_module):
    name = user_module("import keras\ndef build(shape, classes):\n"
                       "    return keras.Sequential([keras.Input(shape), keras.layers.Dense(classes, 'softmax')])\n")
    model = make_model(config_for(f"{name}:build", tmp_path), (12,), 3)
    assert model.input_shape == (None, 12) and model.output_shape == (None, 3) and model.count_params() == 39


@pytest.mark.parametrize(
    "body, message",
    [
        ("def build(shape, classes):\n    raise ValueError('bad width')\n", r"\(\(12,\), 3\) raised ValueError: bad width"),
        ("def build(shape, classes):\n    return [1]\n", "returned a list; expected an uncompiled keras.Model"),
        ("import keras\ndef build(shape, classes):\n"
         "    return keras.Sequential([keras.Input(shape), keras.layers.Dense(5, 'softmax')])\n",
         r"output has shape \(None, 5\); expected \(None, 3\)"),
        ("import keras\ndef build(shape, classes):\n"
         "    return keras.Sequential([keras.Input((7,)), keras.layers.Dense(classes, 'softmax')])\n",
         r"does not accept samples of shape \(12,\)"),
        ("import keras\ndef build(shape, classes):\n"
         "    return keras.Sequential([keras.Input(shape), keras.layers.Dense(classes, bias_initializer='ones')])\n",
         "not class probabilities .*set model.from_logits: true"),
    ],
)
def test_a_wrong_builder_is_a_one_line_config_error(tmp_path, user_module, body, message):
    name = user_module(body)
    with pytest.raises(ConfigError, match=message) as info:
        make_model(config_for(f"{name}:build", tmp_path), (12,), 3)
    assert "\n" not in str(info.value) and str(info.value).startswith("model.builder: ")


def test_logits_models_compile_a_matching_loss(tmp_path, user_module):
    name = user_module("import keras\ndef build(shape, classes):\n"
                       "    return keras.Sequential([keras.Input(shape), keras.layers.Dense(classes)])\n")
    config = config_for(f"{name}:build", tmp_path, from_logits=True)
    model = compile_model(make_model(config, (12,), 3), 1e-3, config)
    assert model.loss.get_config()["from_logits"] is True
    result = train(config, TrialParams(initial_lr=3e-2), vectors(), seed=0)
    assert result.history[-1].val_accuracy > 0.6 and result.model_parameters == 39


def test_the_built_in_cnn_takes_any_image_size_but_not_vectors(tiny_config):
    from sweep.training.model import build_model

    assert build_model(tiny_config.model, 4, (12, 9)).output_shape == (None, 4)
    with pytest.raises(ConfigError, match=r"built-in CNN needs images .*got samples of shape \(784,\)"):
        build_model(tiny_config.model, 10, (784,))


def test_a_reused_batchnorm_dropout_model_trains_exactly_as_a_fresh_one(tmp_path, user_module):
    """The model cache resets every variable: BatchNormalization's moving statistics and
    Dropout's seed state included. Trial B after a diverged A and a pruned B on the same
    compiled model gives the history of B in a fresh process."""
    config = config_for(f"{user_module(BN_DROPOUT_BUILDER)}:build", tmp_path)
    data = vectors()
    cache = ModelCache()
    assert train(config, TrialParams(initial_lr=1e3), data, seed=1, models=cache).diverged

    class PrunedMidway(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("pruned")

    b = TrialParams(initial_lr=3e-2, schedule="cosine", warmup_fraction=0.1)
    with pytest.raises(RuntimeError, match="pruned"):
        train(config, b, data, seed=5, models=cache, callbacks=[PrunedMidway()])
    (kept, _), = cache._models.values()
    moving = [v for v in kept.variables if "moving" in v.path]
    assert len(moving) == 2 and not np.allclose(keras.ops.convert_to_numpy(moving[0]), 0.0)  # A and B moved them

    reused = train(config, b, data, seed=2, models=cache)
    assert [m for m, _ in cache._models.values()] == [kept]  # the same compiled model served it
    fresh = train(config, b, data, seed=2)
    assert not reused.diverged and len(reused.history) == 2
    for r, f in zip(reused.history, fresh.history, strict=True):
        assert (r.loss, r.val_loss, r.val_accuracy, r.lr) == pytest.approx((f.loss, f.val_loss, f.val_accuracy, f.lr),
                                                                            rel=1e-5)
    other_seed = train(config, b, data, seed=3, models=cache)
    assert other_seed.history[0].loss != pytest.approx(reused.history[0].loss, rel=1e-5)  # the seed matters


def test_a_user_model_checkpoint_restores_its_statistics_optimizer_and_logits_loss(tmp_path, user_module):
    """An interrupted trial of a BatchNormalization model returning logits continues from its
    checkpoint: the same weights, moving statistics, optimizer step and loss."""
    from sweep.training.checkpoint import read_checkpoint, write_checkpoint

    source = BN_DROPOUT_BUILDER.replace('activation="softmax"', "")  # logits
    config = config_for(f"{user_module(source)}:build", tmp_path, from_logits=True)
    data = vectors()
    history, saved = [], []
    owner = {"trial": 0}

    class CheckpointAndStop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            write_checkpoint(tmp_path / "ckpt.zip", self.model, history, owner)
            saved.append([keras.ops.convert_to_numpy(v).copy() for v in self.model.weights])
            raise KeyboardInterrupt  # what SIGTERM does in a worker

    with pytest.raises(KeyboardInterrupt):
        train(config, TrialParams(initial_lr=1e-2), data, seed=1, on_epoch=history.append,
              callbacks=[CheckpointAndStop()])
    resume = read_checkpoint(tmp_path / "ckpt.zip", owner)
    assert [e.epoch for e in resume.history] == [1]
    assert int(resume.model.optimizer.iterations) == 8  # 120 samples in batches of 16
    assert resume.model.loss.get_config()["from_logits"] is True
    # Weights and moving statistics (Keras does not save dropout's seed state: a resumed
    # trial's dropout masks differ from an uninterrupted one's, for any model).
    assert sum("moving" in v.path for v in resume.model.weights) == 2
    for before, restored in zip(saved[0], resume.model.weights, strict=True):
        np.testing.assert_array_equal(before, keras.ops.convert_to_numpy(restored))
    result = train(config, TrialParams(initial_lr=1e-2), data, seed=1, resume=resume)
    assert [e.epoch for e in result.history] == [1, 2] and result.history[1].val_accuracy > 0.6
