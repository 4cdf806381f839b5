"""The Keras optimizers a study trains with (``train.optimizer``, ``search.optimizers``) and
their arguments (``train.optimizer_args``), checked against Keras' signatures before anything runs.

Each optimizer is a thin subclass of Keras' own that keeps the hyperparameters the search
varies per trial in optimizer variables instead of Python floats:

- ``weight_decay`` (every optimizer: Keras applies it decoupled, ``w -= w * wd * lr``);
- SGD's ``momentum``, and its one-cycle cycling: with ``schedule: one_cycle`` and momentum,
  momentum falls from ``MOMENTUM_HIGH`` to ``MOMENTUM_LOW`` while the LR rises and returns
  while it anneals (cosine in both phases; Smith 2018, fastai's ``fit_one_cycle``), read
  from the optimizer's step count, so a run restored from a checkpoint continues exactly.

Variables, not floats, because a worker compiles one model per optimizer and reuses it for
every trial (``sweep.training.model_cache``): ``set_trial`` switches the compiled step to
another trial's values without retracing. They are the optimizer's own variables, so
checkpoints save and restore them with its slots, and the JAX trainer passes them into
its compiled step as state.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
from keras import ops

from sweep.config import MOMENTUM_OPTIMIZERS, Config
from sweep.errors import ConfigError
from sweep.training.params import TrialParams
from sweep.training.schedule_math import one_cycle, warmup_steps

DEFAULT_PCT_START = 0.3  # one_cycle's pct_start when a trial leaves it out (PyTorch's and schedule_math's)

MOMENTUM_HIGH, MOMENTUM_LOW = 0.95, 0.85  # fastai's moms=(0.95, 0.85, 0.95)
_NO_CYCLE = (("cycle", 0.0), ("cycle_warmup", 0.0), ("cycle_pct_start", 0.3), ("cycle_total", 1.0))
CYCLING_SCHEDULE = "one_cycle"
_NOT_ARGS = ("self", "learning_rate", "name", "kwargs")


class _TrialHyper:
    """Mixin: weight decay (and, for SGD, momentum) read from variables set per trial."""

    def __init__(self, *args: Any, momentum_cycle: dict | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        decay = kwargs.get("weight_decay", getattr(self, "weight_decay", None))
        hyper = {}
        for name, value in (("weight_decay", decay or 0.0), ("momentum", getattr(self, "momentum", 0.0) or 0.0),
                            *_NO_CYCLE):
            variable = keras.Variable(float(value), name=f"{self.name}_{name}", dtype="float32", trainable=False)
            self._track_variable(variable)  # saved, restored and reset with the optimizer's state
            hyper[name] = variable
        object.__setattr__(self, "_hyper", hyper)  # a plain dict: the tracker has them already
        self.momentum_cycle = None
        if momentum_cycle:
            self.set_cycle(**momentum_cycle)

    def set_cycle(self, warmup: int, pct_start: float, total: int) -> None:
        """Cycle momentum over a one-cycle run of ``total`` steps (``cycled_momentum``)."""
        self.momentum_cycle = {"warmup": int(warmup), "pct_start": float(pct_start), "total": int(total)}
        for name, value in (("cycle", 1.0), ("cycle_warmup", warmup), ("cycle_pct_start", pct_start),
                            ("cycle_total", total)):
            self._hyper[name].assign(float(value))

    def set_trial(self, weight_decay: float | None, momentum: float | None, cycle: dict | None) -> None:
        """Give the (reused) optimizer a trial's values; call after its state was reset."""
        if weight_decay is not None:
            self.weight_decay = float(weight_decay)
        self._hyper["weight_decay"].assign(float(self.weight_decay or 0.0))
        if momentum is not None and hasattr(self, "nesterov"):
            self.momentum = float(momentum)
        self._hyper["momentum"].assign(float(getattr(self, "momentum", 0.0) or 0.0))
        if cycle:
            self.set_cycle(**cycle)
        else:
            self.momentum_cycle = None
            for name, value in _NO_CYCLE:
                self._hyper[name].assign(value)

    def _apply_weight_decay(self, variables: list) -> None:
        if self.weight_decay is None:  # fixed when the optimizer is made: a key of the model cache
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                lr = ops.cast(self.learning_rate, variable.dtype)
                wd = ops.cast(self._hyper["weight_decay"], variable.dtype)
                variable.assign(variable - variable * wd * lr)

    def momentum_now(self) -> Any:
        """The momentum of the current step: fixed, or one-cycle's (``cycled_momentum``)."""
        cycled = cycled_momentum(self.iterations, self._hyper["cycle_warmup"], self._hyper["cycle_pct_start"],
                                 self._hyper["cycle_total"])
        return ops.where(self._hyper["cycle"] > 0.5, cycled, ops.convert_to_tensor(self._hyper["momentum"]))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum_cycle": self.momentum_cycle}


def cycled_momentum(step: Any, warmup: Any, pct_start: Any, total: Any) -> Any:
    """One-cycle momentum at optimizer ``step`` (``keras.ops``; numpy arrays work too).

    With ``p = clip((t - W) / (T - W), 0, 1)`` the progress after the warm-up's ``W`` steps
    (as one_cycle's LR, ``sweep.training.schedule_math``): ``m = L + (H - L) * c(p / pct_start)``
    while ``p < pct_start`` (falling while the LR rises), then
    ``m = H - (H - L) * c((p - pct_start) / (1 - pct_start))``, with ``c(x) = (1 + cos(pi x)) / 2``
    and ``H, L = MOMENTUM_HIGH, MOMENTUM_LOW``: ``H`` through the warm-up, ``L`` at the LR's peak,
    ``H`` again at the end (both phases cosine, as PyTorch's OneCycleLR and fastai).
    """
    step = ops.cast(step, "float32")
    warmup, pct_start = ops.cast(warmup, "float32"), ops.cast(pct_start, "float32")
    progress = ops.clip((step - warmup) / ops.maximum(ops.cast(total, "float32") - warmup, 1.0), 0.0, 1.0)
    return one_cycle(ops, progress, pct_start, MOMENTUM_HIGH, MOMENTUM_LOW, MOMENTUM_HIGH)


@keras.saving.register_keras_serializable(package="sweep")
class SweepSGD(_TrialHyper, keras.optimizers.SGD):
    """Keras SGD reading momentum from ``momentum_now`` (the update rule is Keras', with
    ``momentum`` a tensor): searched and cycled momentum without retracing."""

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.momentum == 0:  # no momentum slots were built: plain SGD
            return super().update_step(gradient, variable, learning_rate)
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        m = self.momentums[self._get_variable_index(variable)]
        momentum = ops.cast(self.momentum_now(), variable.dtype)
        self.assign(m, ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate)))
        if self.nesterov:
            self.assign_add(variable, ops.subtract(ops.multiply(m, momentum), ops.multiply(gradient, learning_rate)))
        else:
            self.assign_add(variable, m)


@keras.saving.register_keras_serializable(package="sweep")
class SweepScheduleFreeAdamW(_TrialHyper, keras.optimizers.ScheduleFreeAdamW):
    """Keras ScheduleFreeAdamW whose ``z`` sequence starts at the weights on the first step.

    Keras 3.15 copies the weights into ``z`` when the optimizer is built, but under
    ``model.fit`` (TensorFlow) that copy does not stick: ``z`` starts at zero and the first
    step replaces every weight by about ``-lr * sign(g)`` (measured: a Dense layer's
    kernel becomes +-0.001 after one step). Setting ``z`` from the variable while the step
    count is 0 restores the algorithm (Defazio et al. 2024: ``z_0 = x_0``), for a fresh
    model and a reused one alike; a resumed run (step > 0) keeps its ``z``.
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        z = self._momentums[self._get_variable_index(variable)]
        self.assign(z, ops.where(ops.equal(self.iterations, 0), ops.cast(variable, z.dtype), z))
        super().update_step(gradient, variable, learning_rate)


def _tuned(base: type) -> type:
    cls = type(f"Sweep{base.__name__}", (_TrialHyper, base), {"__doc__": f"Keras {base.__name__}, weight "
                                                                         "decay in a variable (_TrialHyper)."})
    return keras.saving.register_keras_serializable(package="sweep")(cls)


OPTIMIZER_CLASSES: dict[str, type] = {
    "adam": _tuned(keras.optimizers.Adam),
    "adamw": _tuned(keras.optimizers.AdamW),
    "sgd": SweepSGD,
    "nadam": _tuned(keras.optimizers.Nadam),
    "rmsprop": _tuned(keras.optimizers.RMSprop),
    "lion": _tuned(keras.optimizers.Lion),
    "schedule_free_adamw": SweepScheduleFreeAdamW,
}


def optimizer_keys(name: str) -> list[str]:
    """The keys ``train.optimizer_args`` may hold for optimizer ``name`` (Keras' signature)."""
    keras_class = OPTIMIZER_CLASSES[name].__mro__[2]
    return [p for p in inspect.signature(keras_class.__init__).parameters if p not in _NOT_ARGS]


def optimizer_args(config: Config, name: str) -> dict[str, Any]:
    """``train.optimizer_args`` for optimizer ``name``: the keys it takes (several searched
    optimizers share one mapping), integers given to float arguments as floats."""
    keras_class = OPTIMIZER_CLASSES[name].__mro__[2]
    defaults = {k: p.default for k, p in inspect.signature(keras_class.__init__).parameters.items()}
    args = {}
    for key, value in config.train.optimizer_args.items():
        if key in defaults:
            as_float = isinstance(defaults[key], float) or key in ("weight_decay", "clipnorm", "clipvalue")
            args[key] = float(value) if as_float and not isinstance(value, bool) else value
    return args


def check_optimizer_args(config: Config) -> None:
    """Refuse ``train.optimizer_args`` keys or values no trained optimizer takes (ConfigError,
    one line naming the valid keys), by building each optimizer once; no model is needed."""
    names = config.optimizers()
    valid = {key for name in names for key in optimizer_keys(name)}
    for key in config.train.optimizer_args:
        if key not in valid:
            keys = ", ".join(sorted(valid))
            raise ConfigError(f"train.optimizer_args: {key!r} is not an argument of {' or '.join(names)}; "
                              f"expected one of: {keys}")
    for name in names:
        try:
            OPTIMIZER_CLASSES[name](learning_rate=1e-3, **optimizer_args(config, name))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"train.optimizer_args for {name}: {str(exc).splitlines()[0]} "
                              f"(got {config.train.optimizer_args})") from None


def trial_optimizer(config: Config, params: TrialParams) -> str:
    return params.optimizer or config.train.optimizer


def momentum_cycle(config: Config, params: TrialParams, total_steps: int) -> dict | None:
    """``{"warmup", "pct_start", "total"}`` when momentum cycles (SGD with momentum, schedule one_cycle)."""
    name = trial_optimizer(config, params)
    momentum = params.momentum if params.momentum is not None else optimizer_args(config, name).get("momentum", 0.0)
    if name != "sgd" or not momentum or params.schedule != CYCLING_SCHEDULE:
        return None
    return {"warmup": warmup_steps(params.warmup_fraction, total_steps),
            "pct_start": float(getattr(params, "pct_start", None) or DEFAULT_PCT_START), "total": int(total_steps)}


def make_optimizer(config: Config, params: TrialParams, learning_rate: Any, total_steps: int) -> keras.Optimizer:
    """The trial's optimizer: ``train.optimizer`` (or the trial's searched one) with
    ``train.optimizer_args``, the trial's momentum and weight decay, and its LR schedule."""
    name = trial_optimizer(config, params)
    args = optimizer_args(config, name)
    if params.weight_decay is not None:
        args["weight_decay"] = float(params.weight_decay)
    if params.momentum is not None and name in MOMENTUM_OPTIMIZERS:
        args["momentum"] = float(params.momentum)
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        learning_rate = float(learning_rate)
    return OPTIMIZER_CLASSES[name](learning_rate=learning_rate, momentum_cycle=momentum_cycle(config, params, total_steps),
                                   **args)


def cache_key(config: Config, params: TrialParams) -> str:
    """What a compiled step bakes in of the optimizer: its class, fixed arguments, and whether
    weight decay and momentum slots exist at all (their values are variables)."""
    name = trial_optimizer(config, params)
    args = optimizer_args(config, name)
    decays = params.weight_decay is not None or args.get("weight_decay") is not None
    momentum = params.momentum if params.momentum is not None else args.get("momentum", 0.0)
    if name == "sgd":
        args.pop("momentum", None)
    elif params.momentum is not None:
        args["momentum"] = params.momentum  # RMSprop's momentum is a float in its step
    args.pop("weight_decay", None)
    return f"{name}|{sorted(args.items())}|decay={decays}|momentum={bool(momentum)}"


def reset_for_trial(optimizer: keras.Optimizer, config: Config, params: TrialParams,
                    total_steps: int) -> None:
    """A reused optimizer as a fresh one for this trial would be: zero state (step count
    included) and the trial's weight decay, momentum and momentum cycle."""
    for variable in optimizer.variables:  # schedule-free's z restarts from the weights at step 0
        variable.assign(ops.zeros(variable.shape, variable.dtype))
    args = optimizer_args(config, trial_optimizer(config, params))
    decay = params.weight_decay if params.weight_decay is not None else args.get("weight_decay")
    momentum = params.momentum if params.momentum is not None else args.get("momentum")
    optimizer.set_trial(decay, momentum, momentum_cycle(config, params, total_steps))
