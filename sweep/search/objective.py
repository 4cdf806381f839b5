"""One trial: Optuna trial -> parameters -> (resumed) training -> value, with per-epoch pruning.

Every epoch the objective reports the metric (Optuna's intermediate value), stores the
history in the trial's user attrs (so ``sweep status`` and reports see running trials)
and checkpoints the model, so an interrupted trial continues at its last epoch. A
diverging trial is recorded as PRUNED with ``prune_reason="diverged"`` rather than
FAIL: the sampler then learns that this region is bad instead of ignoring it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import keras
import optuna
from optuna.exceptions import UpdateFinishedTrialError

from sweep import attrs
from sweep.config import Config, StudyConfig
from sweep.errors import TrialTakenOver
from sweep.search.checkpoints import TrialCheckpoints
from sweep.search.space import suggest_params
from sweep.training.data import Dataset
from sweep.training.entry_points import load_entry_point
from sweep.training.model_cache import ModelCache
from sweep.training.trainer import EpochLog, is_diverged, total_steps, train

log = logging.getLogger(__name__)

# Median pruning compares against at least this many finished trials, and never on the
# first epoch alone (one epoch says little about a warmup or a decaying schedule).
# Optuna prunes at a step >= n_warmup_steps, so 2 means "from the second epoch on".
MEDIAN_STARTUP_TRIALS = 5
MEDIAN_FIRST_PRUNABLE_EPOCH = 2


def build_pruner(study: StudyConfig, epochs: int, n_validation: int | None = None) -> optuna.pruners.BasePruner:
    """The study's pruner; ``n_validation`` (validation images) sets the noise the halving
    pruner tolerates when it ranks accuracies."""
    if study.pruner == "halving":
        from sweep.search.priorband import NoiseTolerantHalvingPruner

        return NoiseTolerantHalvingPruner(max(epochs, 1), n_validation if study.metric == "val_accuracy" else None)
    if study.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=MEDIAN_FIRST_PRUNABLE_EPOCH)
    if study.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1), reduction_factor=3)
    return optuna.pruners.NopPruner()


def trial_seed(study_seed: int, root_trial: int) -> int:
    """The seed of a trial: fixed by the study seed and the (root) trial number, so a retried
    trial trains exactly as the original would have."""
    return (study_seed * 1_000_003 + root_trial) % 2**31


class Objective:
    """The objective of one worker: call it with a trial, get the trial's value.

    ``store`` is the study's artifact store (``sweep.storage.artifacts``), where each
    trial's epoch checkpoints go; ``study_uuid`` (``attrs.STUDY_UUID``) names the study
    in every checkpoint, and ``storage_key`` (``storage.database.storage_key``) the database
    it lives in; ``worker`` names this process (``host:pid``).
    """

    def __init__(self, config: Config, data: Dataset, space: dict[str, Any], store: Any, worker: str,
                 study_uuid: str, on_epoch: Callable[[int, EpochLog], None] | None = None,
                 storage_key: str | None = None):
        self.config = config
        self.data = data
        self.space = space
        self.store = store
        self.worker = worker
        self.study_uuid = study_uuid
        self.on_epoch = on_epoch  # (trial number, epoch): the Python API's progress and hooks
        self.labels = {"storage": storage_key}  # in each checkpoint: which storage's study it is of
        self.models = ModelCache()  # one compiled model for all of this worker's trials
        self.checkpoints: TrialCheckpoints | None = None  # the running (or last) trial's
        code = None
        if config.model.builder:
            # Import the user's module before a checkpoint is loaded: it registers any custom layers.
            code = load_entry_point(config.model.builder, config.study.code_dir, "model.builder").sha256
        self.model_identity = model_identity(config, data, code)

    def __call__(self, trial: optuna.Trial) -> float:
        config, study = self.config, self.config.study
        params = suggest_params(trial, self.space)
        # A retried trial inherits the user attrs of the trial it continues.
        root = int(trial.user_attrs.get(attrs.ROOT_TRIAL, trial.number))
        seed = trial_seed(study.seed, root)
        steps = total_steps(self.data.num_train, config.train.batch_size, config.train.epochs)
        for key, value in {attrs.ROOT_TRIAL: root, attrs.SEED: seed, attrs.TOTAL_STEPS: steps,
                           attrs.WORKER: self.worker}.items():
            trial.set_user_attr(key, value)

        # Whose a checkpoint is: only a retry of this root, in this study, with the same
        # parameters, step count, model and optimizer may continue it.
        identity = {"study": self.study_uuid, "root_trial": root, "params": trial.params, "total_steps": steps,
                    **self.model_identity}
        checkpoints = self.checkpoints = TrialCheckpoints(self.store, trial, identity, self.labels)
        resume = checkpoints.load() if root != trial.number else None
        history: list[EpochLog] = list(resume.history) if resume else []
        if root != trial.number:  # set on every retry: one inherits its predecessor's
            trial.set_user_attr(attrs.RESUMED_FROM_EPOCH, len(history))
        if resume is not None:
            log.info("trial %d continues trial %d from epoch %d", trial.number, root, len(history))

        # No checkpoint is removed here, whatever happens: the worker removes them once the
        # trial's final state is stored (``finish``); until then they are its only progress.
        result = train(config, params, self.data, seed=seed, resume=resume, models=self.models,
                       on_epoch=self._epoch_hook(trial.number, history),
                       callbacks=[_EpochEnd(trial, study.metric, history, checkpoints, self.data.chance_classes)])
        _record_history(trial, history)
        trial.set_user_attr(attrs.MODEL_PARAMETERS, result.model_parameters)
        if result.diverged:
            trial.set_user_attr(attrs.PRUNE_REASON, "diverged")
            raise optuna.TrialPruned(f"diverged at epoch {len(history)} (loss {history[-1].loss:.3g})")
        return result.value(study.metric, study.objective, study.direction)

    def finish(self) -> None:
        """The trial's final state is stored: nothing will continue it, so its checkpoints go."""
        if self.checkpoints is not None:
            self.checkpoints.remove()
            self.checkpoints = None

    def _epoch_hook(self, number: int, history: list[EpochLog]) -> Callable[[EpochLog], None]:
        if self.on_epoch is None:
            return history.append

        def record(entry: EpochLog) -> None:
            history.append(entry)
            self.on_epoch(number, entry)

        return record


class _EpochEnd(keras.callbacks.Callback):
    """After each epoch: checkpoint, store the history, report the metric, prune if the
    pruner says so. The checkpoint comes first, so the epochs a trial reports are always
    epochs its retry can continue from."""

    def __init__(self, trial: optuna.Trial, metric: str, history: list[EpochLog], checkpoints: TrialCheckpoints,
                 num_classes: int | None):
        super().__init__()
        self._num_classes = num_classes
        self._trial = trial
        self._metric = metric
        self._history = history
        self._checkpoints = checkpoints

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        entry = self._history[-1]
        diverged = is_diverged(entry.loss, self._num_classes) or not math.isfinite(entry.val_loss)
        try:
            # Not after the last epoch (the trial is about to finish) nor after divergence.
            if not diverged and entry.epoch < self.params["epochs"]:
                self._checkpoints.save(self.model, self._history)
            _record_history(self._trial, self._history)
            value = entry.value(self._metric)
            if math.isfinite(value):
                self._trial.report(value, entry.epoch)
        except UpdateFinishedTrialError:
            raise TrialTakenOver from None
        if diverged:
            return  # training stops by itself; the objective records the divergence
        if self._trial.should_prune():
            self._trial.set_user_attr(attrs.PRUNE_REASON, "pruned")
            raise optuna.TrialPruned(f"pruned at epoch {entry.epoch} ({self._metric} {value:.4f})")


def model_identity(config: Config, data: Dataset, builder_sha256: str | None) -> dict[str, Any]:
    """What a checkpoint's weights and optimizer state are of: the model (the built-in CNN's
    config, or the builder's spec and its file's hash), its parameter count, and every
    ``train`` field but the speed-only ``steps_per_execution`` (the optimizer and its
    arguments among them, so a field added there is part of it from the start)."""
    from sweep.training.model import make_model

    model = config.model.model_dump(mode="json")
    if builder_sha256 is not None:
        model["sha256"] = builder_sha256
    parameters = make_model(config, data.input_shape, data.num_classes, data.labels).count_params()  # built, not compiled
    return {"model": model, "parameters": int(parameters),
            "train": config.train.model_dump(mode="json", exclude={"steps_per_execution"})}


def _record_history(trial: optuna.Trial, history: list[EpochLog]) -> None:
    try:
        trial.set_user_attr(attrs.HISTORY, [e.to_dict() for e in history])
        trial.set_user_attr(attrs.EPOCHS_RUN, len(history))
        trial.set_user_attr(attrs.SECONDS, round(sum(e.seconds for e in history), 3))
    except UpdateFinishedTrialError:
        raise TrialTakenOver from None
