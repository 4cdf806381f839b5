import math
import zipfile

import keras
import numpy as np
import pytest

from sweep.training.checkpoint import CheckpointRefused, read_checkpoint, read_owner, write_checkpoint
from sweep.training.data import load_dataset
from sweep.training.params import TrialParams
from sweep.training.schedule_math import learning_rates
from sweep.training.trainer import EpochLog, ResumePoint, steps_per_epoch, train

OWNER = {"study": "abc", "root_trial": 0, "params": {"initial_lr": 0.01, "schedule": "cosine"}, "total_steps": 30}


class _SaveEachEpoch(keras.callbacks.Callback):
    def __init__(self, path, history):
        super().__init__()
        self.path, self.history = path, history

    def on_epoch_end(self, epoch, logs=None):
        write_checkpoint(self.path, self.model, self.history, OWNER)
        if epoch == 1:
            raise KeyboardInterrupt  # what SIGTERM does in a worker


def test_resumed_training_continues_the_schedule_and_history(tiny_config, tmp_path):
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    data = load_dataset(config.data, 0)
    params = TrialParams(initial_lr=0.01, schedule="cosine", warmup_fraction=0.1)
    path = tmp_path / "checkpoint.zip"
    history = []
    try:
        train(config, params, data, seed=1, on_epoch=history.append, callbacks=[_SaveEachEpoch(path, history)])
    except KeyboardInterrupt:
        pass
    resume = read_checkpoint(path, dict(OWNER))
    assert [e.epoch for e in resume.history] == [1, 2]
    steps = steps_per_epoch(data.num_train, config.train.batch_size)
    assert int(resume.model.optimizer.iterations) == 2 * steps

    result = train(config, params, data, seed=1, resume=resume)
    assert [e.epoch for e in result.history] == [1, 2, 3]
    assert result.history[:2] == resume.history
    # The LR of the last step follows the schedule over the whole run, not a restarted one.
    expected = learning_rates(params.to_dict(), 3 * steps, np.array([3 * steps - 1]))[0]
    assert math.isclose(result.history[-1].lr, expected, rel_tol=1e-5, abs_tol=1e-9)


def test_a_reused_models_checkpoint_restores_its_optimizer_state_and_its_own_schedule(tiny_config, tmp_path):
    """The cached model's optimizer owns the schedule's variables (so that a compiled JAX step
    reads them); its checkpoint still holds the optimizer state a rebuilt optimizer restores,
    value for value, and the schedule of the trial that wrote it, not of the model's first."""
    from sweep.training.model_cache import ModelCache

    data = load_dataset(tiny_config.data, 0)
    cache = ModelCache()
    train(tiny_config, TrialParams(initial_lr=1e-2), data, seed=0, models=cache)  # the worker's first trial
    params = TrialParams(initial_lr=3e-3, schedule="cosine", warmup_fraction=0.1)
    saved = {}

    class Save(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            write_checkpoint(tmp_path / "c.zip", self.model, [], OWNER)
            saved["optimizer"] = [keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables]

    train(tiny_config, params, data, seed=1, models=cache, callbacks=[Save()])
    (kept, schedule), = cache._models.values()
    owned = schedule.variables
    assert [id(v) for v in kept.optimizer.variables[-len(owned):]] == [id(v) for v in owned], \
        "saving put the schedule's variables back where they were: the compiled step is not retraced"
    restored = read_checkpoint(tmp_path / "c.zip", OWNER).model.optimizer
    values = [keras.ops.convert_to_numpy(v) for v in restored.variables]
    assert len(values) == len(saved["optimizer"]) - len(owned)
    for got, want in zip(values, saved["optimizer"], strict=False):
        np.testing.assert_array_equal(got, want)
    assert int(values[0]) == steps_per_epoch(data.num_train, tiny_config.train.batch_size)  # the step count
    assert restored._learning_rate.params == params


def _saved(tiny_config, path):
    from sweep.training.model import build_model, compile_model

    model = compile_model(build_model(tiny_config.model), 0.001)
    logs = [EpochLog(epoch=i, loss=1.0, val_loss=1.0, lr=0.001, seconds=0.1, val_metrics={"val_accuracy": 0.5}) for i in (1, 2)]
    return write_checkpoint(path, model, logs, OWNER)


def test_a_checkpoint_is_loaded_only_by_its_owner(tiny_config, tmp_path):
    path = _saved(tiny_config, tmp_path / "c.zip")
    assert isinstance(read_checkpoint(path, OWNER), ResumePoint)
    for change in ({"study": "other"}, {"root_trial": 1}, {"total_steps": 31},
                   {"params": {"initial_lr": 0.001, "schedule": "cosine"}}, {"model": {"filters": [9]}},
                   {"train": {"optimizer": "sgd"}}):
        with pytest.raises(CheckpointRefused, match=f"another owner \\({next(iter(change))} ") as refused:
            read_checkpoint(path, {**OWNER, **change})
        assert "\n" not in str(refused.value)
    assert path.exists()  # reading never deletes


def test_a_torn_checkpoint_is_refused_as_unreadable_and_left_in_place(tiny_config, tmp_path):
    path = _saved(tiny_config, tmp_path / "c.zip")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short
    with pytest.raises(CheckpointRefused, match="unreadable"):
        read_checkpoint(path, OWNER)
    with zipfile.ZipFile(tmp_path / "foreign.zip", "w") as archive:
        archive.writestr("history.json", "[]")  # no owner at all
    with pytest.raises(CheckpointRefused, match="unreadable"):
        read_checkpoint(tmp_path / "foreign.zip", OWNER)
    assert path.exists() and not list(tmp_path.glob("tmp*")), "no scratch left behind"
    # Clean-up still tells whose a torn file is: its small leading entries are whole.
    assert read_owner(path) == {"study": "abc"} and read_owner(tmp_path / "foreign.zip") is None
