"""One compiled model per worker, reset for each trial instead of rebuilt.

Building and compiling the CNN and tracing its train step cost about 1.1 s a trial, and
Keras keeps about 15 MB of every compiled model even after ``clear_session()`` (GUIDE §4,
``benchmarks/levers.py``). So a worker compiles once and, before each trial, gives that
model what a fresh build would have given it: every variable of a model built under the
trial's seed (weights, batch-normalisation statistics, the seed state of dropout and
other random layers; building without compiling costs 0.05 s), a reset optimizer
(``optimizers.reset_for_trial``: zeroed state, so schedule-free's sequence restarts from the
new weights, and the trial's weight decay and momentum) and the trial's schedule parameters
(``TrialSchedule.assign``). A worker keeps one compiled model per optimizer configuration
(``optimizers.cache_key``: a study searching ``[sgd, adamw]`` holds two). The traced
step serves every trial, and a trial trains as it would in a fresh process (a test holds
the histories equal).

TensorFlow and JAX. JAX's trainer compiles a pure step whose state is the model's, the
optimizer's and the metrics' variables; any other variable it reads (the schedule's) is a
constant of the trace, so a reused model would train every trial on the first one's curve.
So the optimizer owns the schedule's variables (``own_schedule``): they travel in its state
and ``assign`` reaches the compiled step. Keras saves and restores an optimizer's variables
by position, and an optimizer rebuilt from a checkpoint's config does not own them (the
schedule's config already holds its parameters), so a save leaves them out
(``schedule_left_out``). PyTorch (not installed here, untested) builds a model per trial.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras

from sweep.config import Config
from sweep.training.data import IMAGE_SHAPE, NUM_CLASSES
from sweep.training.model import compile_model, make_model
from sweep.training.optimizers import cache_key, make_optimizer, optimizer_args, reset_for_trial, trial_optimizer
from sweep.training.params import TrialParams
from sweep.training.schedules import TrialSchedule

REUSABLE_ON = ("tensorflow", "jax")


class ModelCache:
    """Hands out a compiled model for a trial; call ``model_for`` after seeding Keras."""

    def __init__(self) -> None:
        self._models: dict[str, tuple[keras.Model, TrialSchedule]] = {}  # cache key -> model, its schedule

    def model_for(self, config: Config, params: TrialParams, total_steps: int,
                  input_shape: tuple[int, ...] = IMAGE_SHAPE, num_classes: int = NUM_CLASSES,
                  labels: str = "classes") -> keras.Model:
        """The compiled model for a trial on samples of ``input_shape`` (default: Fashion-MNIST's)."""
        fresh = make_model(config, input_shape, num_classes, labels)  # draws the trial's initial weights and seeds
        key = (f"{config.model.model_dump_json()}|{cache_key(config, params)}|{config.train.steps_per_execution}|"
               f"{input_shape}|{num_classes}|{labels}")
        # EMA weights start as copies of the model's, which a reset would zero: compiled afresh.
        reusable = (keras.backend.backend() in REUSABLE_ON
                    and not optimizer_args(config, trial_optimizer(config, params)).get("use_ema"))
        kept = self._models.get(key)
        if not reusable or kept is None or not _same_variables(kept[0], fresh):
            schedule = TrialSchedule(params, total_steps)
            model = compile_model(fresh, make_optimizer(config, params, schedule, total_steps), config, labels)
            _build_for_fit(model, input_shape, labels, num_classes)
            own_schedule(model, schedule)
            if reusable:
                self._models[key] = model, schedule
            return model
        model, schedule = kept
        for kept_var, drawn in zip(model.variables, fresh.variables, strict=True):
            kept_var.assign(drawn.value)
        reset_for_trial(model.optimizer, config, params, total_steps)  # the schedule's variables too: assigned next
        schedule.assign(params, total_steps)
        return model


def _build_for_fit(model: keras.Model, input_shape: tuple[int, ...], labels: str = "classes",
                   num_classes: int = NUM_CLASSES) -> None:
    """Build the loss, metrics and optimizer state that ``fit`` would build on its first call.
    Keras builds them from a batch it draws from the data, and under JAX that draw takes a
    shuffle from NumPy's generator: a fresh model's first epoch would then see another order
    than a reused model's. Built here from a zero sample, ``fit`` draws nothing extra."""
    import numpy as np

    target = np.zeros((1,), "int32") if labels == "classes" else np.zeros((1, num_classes), "float32")
    sample = (np.zeros((1, *input_shape), "float32"), target)
    model._symbolic_build(data_batch=sample)  # noqa: SLF001 - what fit calls; no public form


def own_schedule(model: keras.Model, schedule: TrialSchedule) -> None:
    """Make ``model``'s optimizer own ``schedule``'s variables, after its own (it is built here), so
    that ``schedule_left_out`` can take them out and put them back in the same places."""
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    for variable in schedule.variables:
        optimizer._track_variable(variable)  # noqa: SLF001 - Keras' own way to add a variable to its state


@contextmanager
def schedule_left_out(model: keras.Model) -> Iterator[None]:
    """``model`` with its optimizer's variables as Keras would rebuild them from its config (for
    ``model.save``): without the schedule's, which the schedule's config restores."""
    optimizer = getattr(model, "optimizer", None)
    schedule = getattr(optimizer, "_learning_rate", None)
    owned = [v for v in getattr(schedule, "variables", []) if any(v is o for o in optimizer.variables)] \
        if isinstance(schedule, TrialSchedule) else []
    for variable in owned:
        optimizer._untrack_variable(variable)  # noqa: SLF001
    try:
        yield
    finally:
        for variable in owned:
            optimizer._track_variable(variable)  # noqa: SLF001


def _same_variables(kept: keras.Model, fresh: keras.Model) -> bool:
    """Whether ``fresh`` has the variables of ``kept``, in order. ``model.variables`` holds every
    layer's weights and state, nested models and seed generators included (not the optimizer's or
    the metrics'); a builder that draws its architecture at random gets a compiled model per trial."""
    kept_vars, fresh_vars = kept.variables, fresh.variables
    return len(kept_vars) == len(fresh_vars) and all(
        a.shape == b.shape and a.dtype == b.dtype for a, b in zip(kept_vars, fresh_vars)
    )
