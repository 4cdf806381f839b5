import math

import keras
import numpy as np

from sweep.training.checkpoint import TrialCheckpoint
from sweep.training.data import load_dataset
from sweep.training.params import TrialParams
from sweep.training.schedule_math import learning_rates
from sweep.training.trainer import ResumePoint, steps_per_epoch, train


def test_resumed_training_continues_the_schedule_and_history(tiny_config, tmp_path):
    config = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": 3})})
    data = load_dataset(config.data, 0)
    params = TrialParams(initial_lr=0.01, schedule="cosine", warmup_fraction=0.1)
    checkpoint = TrialCheckpoint(tmp_path / "trial-0")
    history = []

    class StopAfterTwo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt  # what SIGTERM does in a worker

    try:
        train(config, params, data, seed=1, on_epoch=history.append,
              callbacks=[checkpoint.callback(history), StopAfterTwo()])
    except KeyboardInterrupt:
        pass
    resume = checkpoint.load()
    assert [e.epoch for e in resume.history] == [1, 2]
    steps = steps_per_epoch(data.num_train, config.train.batch_size)
    assert int(resume.model.optimizer.iterations) == 2 * steps

    result = train(config, params, data, seed=1, resume=resume)
    assert [e.epoch for e in result.history] == [1, 2, 3]
    assert result.history[:2] == resume.history
    # The LR of the last step follows the schedule over the whole run, not a restarted one.
    expected = learning_rates(params.to_dict(), 3 * steps, np.array([3 * steps - 1]))[0]
    assert math.isclose(result.history[-1].lr, expected, rel_tol=1e-5, abs_tol=1e-9)


def test_only_the_newest_complete_checkpoint_is_kept_and_torn_ones_are_skipped(tiny_config, tmp_path):
    from sweep.training.model import build_model, compile_model
    from sweep.training.trainer import EpochLog

    checkpoint = TrialCheckpoint(tmp_path / "trial-3")
    model = compile_model(build_model(tiny_config.model), 0.001, "adam")
    logs = [EpochLog(epoch=i, loss=1.0, val_loss=1.0, val_accuracy=0.5, lr=0.001, seconds=0.1) for i in (1, 2)]
    checkpoint.save(model, logs[:1])
    checkpoint.save(model, logs)
    assert sorted(p.name for p in checkpoint.directory.iterdir()) == ["epoch-0002"]
    # A kill during a save leaves a temporary folder and a torn newer one: both ignored.
    (checkpoint.directory / ".tmp-epoch-0003").mkdir()
    (checkpoint.directory / "epoch-0003").mkdir()
    (checkpoint.directory / "epoch-0003" / "model.keras").write_bytes(b"torn")
    (checkpoint.directory / "epoch-0003" / "history.json").write_text("[]")
    resume = checkpoint.load()
    assert isinstance(resume, ResumePoint) and len(resume.history) == 2
    checkpoint.remove()
    assert not checkpoint.directory.exists() and checkpoint.load() is None
