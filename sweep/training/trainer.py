"""Train one configuration: params -> schedule -> compiled model -> ``fit`` -> per-epoch history.

Knows nothing of the search: the objective adds pruning and checkpoint callbacks,
the CLI adds printing through ``on_epoch``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import keras

from sweep.config import OBJECTIVES, Config, default_direction
from sweep.training.data import NUM_CLASSES, Dataset
from sweep.training.model_cache import ModelCache
from sweep.training.params import TrialParams
from sweep.training.schedule_math import learning_rates

log = logging.getLogger(__name__)

# Keras clips softmax outputs, so cross-entropy rarely turns NaN even when training has
# blown up: it saturates at a confidently-wrong model's loss instead. Chance level is
# ln(C) (2.3 for 10 classes); a training loss three times that means the run has diverged.
DIVERGED_FACTOR = 3.0

# A trial's value (study.objective). The names live in config.OBJECTIVES; the epoch
# count of the mean is part of its name so that a stored study says what it optimised.
MEAN_LAST_K = 3
MEAN_LAST = f"mean_last{MEAN_LAST_K}"


def is_diverged(loss: float, num_classes: int | None = NUM_CLASSES) -> bool:
    """A non-finite loss, or (with ``num_classes``: a classifier's cross-entropy) one far above chance.
    A regression's loss has no chance level: only a non-finite one counts."""
    if not math.isfinite(loss):
        return True
    return num_classes is not None and loss > DIVERGED_FACTOR * math.log(num_classes)


_FIXED = ("epoch", "loss", "val_loss", "lr", "seconds")


@dataclass(frozen=True)
class EpochLog:
    epoch: int  # 1-based
    loss: float
    val_loss: float
    lr: float  # the learning rate of the epoch's last optimizer step
    seconds: float
    val_metrics: dict[str, float] = field(default_factory=dict)  # val_<m> for each compiled metric m

    def value(self, metric: str) -> float:
        """``val_loss`` or a ``val_<metric>`` of the epoch (NaN when it was not logged)."""
        return self.val_loss if metric == "val_loss" else self.val_metrics.get(metric, math.nan)

    @property
    def val_accuracy(self) -> float:
        return self.value("val_accuracy")

    def to_dict(self) -> dict[str, float]:
        """``{"epoch", "loss", "val_loss", "val_<m>"..., "lr", "seconds"}`` (the history a trial stores)."""
        fixed = {k: getattr(self, k) for k in _FIXED}
        return {**{k: fixed[k] for k in _FIXED[:3]}, **self.val_metrics, "lr": self.lr, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, raw: dict[str, float]) -> EpochLog:
        return cls(**{k: raw[k] for k in _FIXED},
                   val_metrics={k: v for k, v in raw.items() if k.startswith("val_") and k != "val_loss"})


@dataclass
class TrainResult:
    history: list[EpochLog] = field(default_factory=list)
    diverged: bool = False
    seconds: float = 0.0
    model_parameters: int = 0  # the trained model's parameter count (weights, trainable or not)

    def value(self, metric: str = "val_accuracy", objective: str = "best", direction: str | None = None) -> float:
        """The run's score by ``objective`` (``OBJECTIVES``): the best epoch's ``metric``,
        the last epoch's, or the mean of the last ``MEAN_LAST_K`` epochs (all of them when
        the run is shorter). The mean is the final model's score with the noise of one
        validation epoch averaged down, where ``best`` is a maximum over noisy epochs.
        ``direction`` (default: by the metric's name, ``default_direction``) says which epoch is best."""
        values = [e.value(metric) for e in self.history]
        if not values:
            return math.nan
        if objective == "last":
            return values[-1]
        if objective == MEAN_LAST:
            return sum(values[-MEAN_LAST_K:]) / len(values[-MEAN_LAST_K:])  # nan if any is nan
        if objective != "best":
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return math.nan
        return max(finite) if (direction or default_direction(metric)) == "maximize" else min(finite)


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run continues: its model after the last completed epoch
    (weights and optimizer state, so the schedule continues from ``optimizer.iterations``)
    and the history of the epochs before it."""

    model: keras.Model
    history: list[EpochLog]


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    return math.ceil(num_train / batch_size)


def total_steps(num_train: int, batch_size: int, epochs: int) -> int:
    """T, the number of optimizer steps of a whole run; schedules are laid out over it."""
    return steps_per_epoch(num_train, batch_size) * epochs


class _EpochRecorder(keras.callbacks.Callback):
    """Turns Keras' epoch logs into ``EpochLog`` entries and stops training on divergence."""

    def __init__(
        self, params: TrialParams, total_steps: int, result: TrainResult, on_epoch: Callable[[EpochLog], None] | None,
        num_classes: int | None = NUM_CLASSES,
    ):
        super().__init__()
        self._num_classes = num_classes
        self._params = params.to_dict()
        self._total_steps = total_steps
        self._result = result
        self._on_epoch = on_epoch
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        # The batch logs hold the epoch's running mean: a blow-up shows in it at once.
        loss = (logs or {}).get("loss")
        if loss is not None and is_diverged(float(loss), self._num_classes):
            self._result.diverged = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) - 1
        entry = EpochLog(
            epoch=epoch + 1,
            loss=float(logs.get("loss", math.nan)),
            val_loss=float(logs.get("val_loss", math.nan)),
            lr=float(learning_rates(self._params, self._total_steps, [max(step, 0)])[0]),
            seconds=time.perf_counter() - self._epoch_start,
            val_metrics={k: float(v) for k, v in logs.items() if k.startswith("val_") and k != "val_loss"},
        )
        if is_diverged(entry.loss, self._num_classes) or not math.isfinite(entry.val_loss):
            self._result.diverged = True
            self.model.stop_training = True
        self._result.history.append(entry)
        if self._on_epoch is not None:
            self._on_epoch(entry)


def train(
    config: Config,
    params: TrialParams,
    data: Dataset,
    *,
    seed: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    on_epoch: Callable[[EpochLog], None] | None = None,
    resume: ResumePoint | None = None,
    models: ModelCache | None = None,
) -> TrainResult:
    """Train the config's model with ``params`` for ``config.train.epochs`` epochs.

    ``callbacks`` run after the history recorder, so a pruning callback sees the
    epoch already recorded. Divergence (a non-finite training loss, or one
    far above chance: ``is_diverged``) stops training at once and sets ``diverged``.
    With ``resume``, training continues its model after its last epoch and the
    result's history starts with the epochs run before. With ``models`` (one per
    worker), a fresh run reuses the worker's compiled model (``sweep.training.model_cache``).
    """
    keras.utils.set_random_seed(seed)
    epochs, batch_size = config.train.epochs, config.train.batch_size
    steps = total_steps(data.num_train, batch_size, epochs)
    if resume is None:
        models = models or ModelCache()
        model = models.model_for(config, params, steps, data.input_shape, data.num_classes, data.labels)
        result = TrainResult()
    else:
        model = resume.model
        result = TrainResult(history=list(resume.history))
    started = time.perf_counter()
    model.fit(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        initial_epoch=len(result.history),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[_EpochRecorder(params, steps, result, on_epoch, data.chance_classes), *callbacks],
    )
    result.model_parameters = int(model.count_params())
    result.seconds = time.perf_counter() - started
    log.debug("trained %s for %d epochs in %.1fs", params.to_dict(), len(result.history), result.seconds)
    return result
