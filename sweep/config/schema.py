"""The config's schema: six typed sections that refuse unknown keys, and the frozen ``Config``.

Unknown keys, wrong types, non-finite numbers and inconsistent ranges are refused
with a ``ConfigError`` whose one-line message names the file, the field path, the
value received and what is expected.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from sweep.config.families import DEFAULT_SCHEDULES, DecayShape, ScheduleName

OBJECTIVES = ("best", "last", "mean_last3")  # study.objective: what of a trial's epochs is its value
PARAMS_KEY = "params"  # best_config.yaml: trial parameters beside the config sections
STUDY_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
MAX_TRIALS = 1_000_000  # a study's budget; also bounds --n-trials
MAX_WORKERS = 64  # worker processes on one machine; also bounds --workers
MAX_INITIAL_LR = 1e3  # beyond any useful LR; TrialParams refuses more, so the search range must too
# model.builder and data.loader: "module:function", a dotted module path and a function name.
ENTRY_POINT_PATTERN = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", re.ASCII)

# train.optimizer and search.optimizers: Keras optimizers by these names (sweep.training.optimizers).
OPTIMIZERS = ("adam", "adamw", "sgd", "nadam", "rmsprop", "lion", "schedule_free_adamw")
OptimizerName = Literal["adam", "adamw", "sgd", "nadam", "rmsprop", "lion", "schedule_free_adamw"]
# The optimizers with a momentum coefficient (search.momentum applies to them alone); every
# Keras optimizer takes weight_decay (applied decoupled, as AdamW's), so search.weight_decay applies to all.
MOMENTUM_OPTIMIZERS = ("sgd", "rmsprop")
OPTIMIZER_ARGS_MAX = 16
# study.metric names that are minimised unless study.direction says otherwise (a loss, an error).
_MINIMIZED_METRIC = re.compile(r"loss|error|mae|mse|mape|msle|rmse|hinge|crossentropy|divergence|poisson|cosh",
                               re.IGNORECASE)
METRIC_PATTERN = re.compile(r"val_[A-Za-z_][A-Za-z0-9_]{0,63}", re.ASCII)


_ACRONYMS = {"mae", "mse", "rmse", "mape", "msle", "auc", "ce"}


def metric_label(metric: str, split: str = "") -> str:
    """How a metric is named to people: ``val_mae`` -> "MAE", ``val_accuracy`` -> "accuracy",
    with ``split`` ("test", "validation") in front when given."""
    name = metric.removeprefix("val_")
    name = name.upper() if name in _ACRONYMS else name.replace("_", " ")
    return f"{split} {name}" if split else name


def default_direction(metric: str) -> str:
    """``minimize`` for a loss- or error-like metric name (val_loss, val_mae, val_mse, ...), else ``maximize``."""
    return "minimize" if _MINIMIZED_METRIC.search(metric) else "maximize"


def validate_study_name(name: object) -> str:
    """Return ``name`` if it is a safe study name, else raise ValueError.

    Names become file names (``studies/<name>.db``), so only ASCII letters, digits,
    ``_`` and ``-`` are allowed: no separators, dots, spaces or look-alike unicode.
    """
    if not isinstance(name, str) or not STUDY_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"study name must match [A-Za-z0-9_-]{{1,64}}, got {name!r}")
    return name


class _Section(BaseModel):
    # strict: no silent coercion of "3" or true into numbers; YAML already types values.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class _Range(_Section):
    """A search range; subclasses give ``low`` and ``high`` their types and bounds."""

    @model_validator(mode="after")
    def _ordered(self) -> _Range:
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got low={self.low}, high={self.high}")
        return self


class FloatRange(_Range):
    low: float
    high: float


class PositiveFloatRange(FloatRange):
    low: float = Field(gt=0)
    high: float = Field(gt=0)


class IntRange(_Range):
    low: int = Field(ge=1)
    high: int = Field(ge=1)


class StudyConfig(_Section):
    name: str = "sweep"
    storage: str | None = Field(default=None, min_length=1)  # "" is a mistake, not "the default"
    n_trials: int = Field(default=40, ge=1, le=MAX_TRIALS)
    timeout_s: float | None = Field(default=None, gt=0)
    # val_loss or val_<m> for a metric m of model.metrics (what Keras logs as it validates).
    metric: str = "val_accuracy"
    # maximize | minimize; null when read: set from the metric's name (default_direction), and
    # stored stated in the study's config.
    direction: Literal["maximize", "minimize"] = None  # type: ignore[assignment]
    # best epoch | last epoch | mean of the last 3 epochs (sweep.training.trainer.TrainResult.value)
    objective: Literal["best", "last", "mean_last3"] = "best"
    seed: int = Field(default=0, ge=0, lt=2**31)
    sampler: Literal["tpe", "random", "priorband"] = "tpe"  # priorband: sweep.search.priorband
    pruner: Literal["median", "hyperband", "halving", "none"] = "median"  # halving: noise-tolerant, 1-epoch rungs
    workers: int = Field(default=1, ge=1, le=MAX_WORKERS)
    # Where model.builder and data.loader modules are looked for besides the working directory.
    # load_config sets it to the config file's folder, so that `sweep resume` (which reads the
    # config from the database) finds them too; it may differ between machines.
    code_dir: str | None = Field(default=None, min_length=1)
    # Where epoch checkpoints go (sweep.storage.artifacts): null = studies/NAME/ on this
    # machine; a folder every machine mounts, or s3://bucket/prefix, lets a trial
    # interrupted on one machine continue from its last epoch on another.
    checkpoint_store: str | None = Field(default=None, min_length=1)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return validate_study_name(value)

    @model_validator(mode="before")
    @classmethod
    def _state_direction(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("direction") is None:
            metric = raw.get("metric", "val_accuracy")
            if isinstance(metric, str):
                raw = {**raw, "direction": default_direction(metric)}
        return raw

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not METRIC_PATTERN.fullmatch(value):
            raise ValueError(f"metric must be val_loss or val_<metric> for a metric of model.metrics, got {value!r}")
        return value

    @field_validator("checkpoint_store")
    @classmethod
    def _store_location(cls, value: str | None) -> str | None:
        if value is not None and "://" in value and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,62}(/.*)?", value):
            raise ValueError(f"expected a folder path or s3://bucket/prefix, got {value!r}")
        return value


def _entry_point(value: str | None, field: str) -> str | None:
    if value is not None and not ENTRY_POINT_PATTERN.fullmatch(value):
        raise ValueError(f"{field} must be 'module:function' (e.g. mymodel:build), got {value!r}")
    return value


class DataConfig(_Section):
    source: Literal["keras", "idx", "synthetic", "npz", "python"] = "keras"
    path: str | None = None  # idx: a folder of IDX files; npz: a .npz file
    loader: str | None = None  # python: "module:function" returning the arrays an npz holds
    num_classes: int | None = Field(default=None, ge=2, le=100_000)  # npz/python: None infers max label + 1
    limit: int | None = Field(default=None, ge=20)
    validation_fraction: float = Field(default=0.1, gt=0, lt=1)

    @field_validator("loader")
    @classmethod
    def _loader_entry_point(cls, value: str | None) -> str | None:
        return _entry_point(value, "data.loader")

    @model_validator(mode="after")
    def _source_needs(self) -> DataConfig:
        if self.source == "idx" and not self.path:
            raise ValueError("source 'idx' needs data.path, the folder holding the IDX files")
        if self.source == "npz" and not self.path:
            raise ValueError("source 'npz' needs data.path, a .npz file with x_train and y_train")
        if self.source == "python" and not self.loader:
            raise ValueError("source 'python' needs data.loader, 'module:function' returning x_train and y_train")
        if self.loader and self.source != "python":
            raise ValueError(f"data.loader is read only with source 'python', not {self.source!r}")
        if self.num_classes is not None and self.source not in ("npz", "python"):
            raise ValueError(f"data.num_classes applies to sources npz and python; {self.source!r} has 10")
        return self


class ModelConfig(_Section):
    # "module:function" called as function(input_shape, num_outputs) -> an uncompiled keras.Model
    # (num_outputs: the number of classes, or of real-valued targets for a regressor);
    # None is the built-in CNN below (filters, dense_units, dropout apply to it alone).
    builder: str | None = None
    from_logits: bool = False  # the builder's model outputs logits, not probabilities
    # A Keras loss name (mse, huber, binary_crossentropy, ...) or "module:function"(y_true, y_pred);
    # null: cross-entropy for class labels (sparse for integers, categorical for one-hot rows),
    # mean squared error for real-valued targets.
    loss: str | None = Field(default=None, min_length=1, max_length=200)
    # Keras metric names, compiled and logged on the validation split as val_<name>.
    metrics: list[str] = Field(default=["accuracy"], max_length=8)
    filters: list[int] = Field(default=[32], min_length=1, max_length=4)
    dense_units: int = Field(default=128, ge=1, le=8192)
    dropout: float = Field(default=0.1, ge=0, lt=1)

    @field_validator("builder")
    @classmethod
    def _builder_entry_point(cls, value: str | None) -> str | None:
        return _entry_point(value, "model.builder")

    @field_validator("loss")
    @classmethod
    def _loss_name(cls, value: str | None) -> str | None:
        if value is not None and ":" in value:
            return _entry_point(value, "model.loss")
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"loss must be a Keras loss name (e.g. mse) or 'module:function', got {value!r}")
        return value

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,59}", name):
                raise ValueError(f"metrics must be Keras metric names (e.g. accuracy, mae, auc), got {name!r}")
        if len(set(value)) != len(value):
            raise ValueError(f"metrics must not repeat, got {value}")
        return value

    @field_validator("filters")
    @classmethod
    def _positive_filters(cls, value: list[int]) -> list[int]:
        if any(not 1 <= f <= 1024 for f in value):
            raise ValueError(f"every filter count must be between 1 and 1024, got {value}")
        return value


class TrainConfig(_Section):
    epochs: int = Field(default=10, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1, le=65_536)
    optimizer: OptimizerName = "adam"
    # Passed to the Keras optimizer (momentum, nesterov, weight_decay, beta_1, ...); the keys are
    # checked against its signature before anything runs (sweep.training.optimizers).
    optimizer_args: dict[str, float | int | bool] = Field(default_factory=dict, max_length=OPTIMIZER_ARGS_MAX)
    # Batches per compiled call. The same updates, fewer Python round trips: it pays where
    # per-step overhead dominates (a GPU, small batches); 1 keeps per-batch callbacks exact.
    steps_per_execution: int = Field(default=1, ge=1, le=1000)


class SearchConfig(_Section):
    initial_lr: PositiveFloatRange = PositiveFloatRange(low=1.0e-5, high=1.0)
    schedules: list[ScheduleName] = Field(default=list(DEFAULT_SCHEDULES), min_length=1)
    decay_rate: FloatRange = FloatRange(low=0.5, high=0.99)
    decay_steps: IntRange = IntRange(low=50, high=5000)
    warmup_fraction: FloatRange = FloatRange(low=0.0, high=0.3)
    # The families' own parameters (sweep.config.families), each searched only for its family.
    pct_start: FloatRange = FloatRange(low=0.1, high=0.5)  # one_cycle; PyTorch 0.3, fastai 0.25
    decay_fraction: FloatRange = FloatRange(low=0.1, high=0.5)  # wsd: the cool-down's share
    decay_shapes: list[DecayShape] = Field(default=["linear", "cosine", "sqrt"], min_length=1)  # wsd
    restart_fraction: FloatRange = FloatRange(low=0.1, high=0.5)  # cosine_restarts: the first period
    t_mul: float | FloatRange = 2.0  # cosine_restarts: a number is fixed, {low, high} searched
    m_mul: float | FloatRange = 1.0
    power: PositiveFloatRange = PositiveFloatRange(low=0.5, high=3.0)  # polynomial; 1 is linear
    # Every decaying family's floor as a fraction of initial_lr (Keras' alpha), searched over 0 and
    # a half-decade grid from low to high (families.min_lr_ratio_choices); null: no floor.
    min_lr_ratio: FloatRange | None = FloatRange(low=1.0e-3, high=0.1)
    # Searched optimizers (trial parameter "optimizer"); null: train.optimizer alone, not searched.
    optimizers: list[OptimizerName] | None = Field(default=None, min_length=1)
    # Searched momentum (trial parameter "momentum", for MOMENTUM_OPTIMIZERS only); null: not searched.
    momentum: FloatRange | None = None
    # Searched weight decay, log scale (trial parameter "weight_decay"); null: not searched.
    weight_decay: PositiveFloatRange | None = None

    @field_validator("optimizers")
    @classmethod
    def _unique_optimizers(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError(f"optimizers must not repeat, got {value}")
        return value

    @field_validator("momentum")
    @classmethod
    def _momentum_in_unit_interval(cls, value: FloatRange | None) -> FloatRange | None:
        if value is not None and not (0 <= value.low and value.high <= 1):
            raise ValueError(f"momentum must lie in [0, 1], got [{value.low}, {value.high}]")
        return value

    @field_validator("schedules", "decay_shapes")
    @classmethod
    def _unique(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"{info.field_name} must not repeat, got {value}")
        return value

    @field_validator("pct_start", "decay_fraction", "restart_fraction", "t_mul", "m_mul", "min_lr_ratio")
    @classmethod
    def _family_bounds(cls, value: float | FloatRange | None, info: ValidationInfo) -> float | FloatRange | None:
        if value is None:
            return value
        low, high = (value, value) if isinstance(value, float) else (value.low, value.high)
        lo, hi, interval = _FAMILY_BOUNDS[info.field_name]
        if not (lo(low) and hi(high)):
            raise ValueError(f"{info.field_name} must lie in {interval}, got {value if isinstance(value, float) else [low, high]}")
        return value

    @field_validator("initial_lr")
    @classmethod
    def _initial_lr_trainable(cls, value: PositiveFloatRange) -> PositiveFloatRange:
        if value.high > MAX_INITIAL_LR:
            raise ValueError(f"initial_lr.high must be at most {MAX_INITIAL_LR:g}, got {value.high:g}")
        return value

    @field_validator("decay_rate")
    @classmethod
    def _decay_rate_in_unit_interval(cls, value: FloatRange) -> FloatRange:
        if not (0 < value.low and value.high <= 1):
            raise ValueError(f"decay_rate must lie in (0, 1], got [{value.low}, {value.high}]")
        return value

    @field_validator("warmup_fraction")
    @classmethod
    def _warmup_below_one(cls, value: FloatRange) -> FloatRange:
        if not (0 <= value.low and value.high < 1):
            raise ValueError(f"warmup_fraction must lie in [0, 1), got [{value.low}, {value.high}]")
        return value


_FAMILY_BOUNDS = {  # (low ok, high ok, the interval in words)
    "pct_start": (lambda v: v > 0, lambda v: v < 1, "(0, 1)"),
    "decay_fraction": (lambda v: v > 0, lambda v: v <= 1, "(0, 1]"),
    "restart_fraction": (lambda v: v > 0, lambda v: v <= 1, "(0, 1]"),
    "t_mul": (lambda v: v >= 1, lambda v: v <= 10, "[1, 10]"),
    "m_mul": (lambda v: v > 0, lambda v: v <= 1, "(0, 1]"),
    "min_lr_ratio": (lambda v: v > 0, lambda v: v < 1, "(0, 1) (0 itself is always searched)"),
}


class LRFinderConfig(_Section):
    enabled: bool = True
    start_lr: float = Field(default=1.0e-7, gt=0)
    end_lr: float = Field(default=10.0, gt=0)
    # 100, not 300: on the 2,700-image sample 300 steps cost 3.1 epochs and put the suggestion
    # below the accuracy plateau; 100 cost 1.2 and land on it (benchmarks/README.md).
    num_steps: int = Field(default=100, ge=10, le=100_000)
    smoothing: float = Field(default=0.98, ge=0, lt=1)
    diverge_factor: float = Field(default=4.0, gt=1)
    suggestion: Literal["valley", "steep", "minimum"] = "steep"  # measured: benchmarks/README.md
    narrow: bool = True
    seed_trials: int = Field(default=3, ge=0, le=3)
    # The seed trials' schedule (or, when the search leaves it out, the closest one it allows).
    # Cosine, not constant: over 5 seeds it lifted the best of 20 trials from -0.005 to +0.001
    # against the baseline (constant seeds pull TPE toward constant LRs; benchmarks/README.md).
    seed_schedule: ScheduleName = "cosine"

    @model_validator(mode="after")
    def _ordered(self) -> LRFinderConfig:
        if not self.start_lr < self.end_lr:
            raise ValueError(
                f"start_lr must be below end_lr, got start_lr={self.start_lr}, end_lr={self.end_lr}"
            )
        return self


class Config(_Section):
    study: StudyConfig = StudyConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    search: SearchConfig = SearchConfig()
    lr_finder: LRFinderConfig = LRFinderConfig()

    @model_validator(mode="after")
    def _metric_compiled(self) -> Config:
        metric = self.study.metric
        if metric != "val_loss" and metric.removeprefix("val_") not in self.model.metrics:
            names = ", ".join(["val_loss", *(f"val_{m}" for m in self.model.metrics)])
            raise ValueError(f"study.metric {metric!r} is not logged: expected one of {names} "
                             f"(model.metrics compiles {self.model.metrics or 'none'})")
        searched = self.search.optimizers or [self.train.optimizer]
        if self.search.momentum is not None and not set(searched) & set(MOMENTUM_OPTIMIZERS):
            raise ValueError(f"search.momentum applies to {' and '.join(MOMENTUM_OPTIMIZERS)}; the study trains "
                             f"{', '.join(searched)}")
        return self

    def optimizers(self) -> list[str]:
        """The optimizers trials train with: the searched ones, or train.optimizer."""
        return list(self.search.optimizers or [self.train.optimizer])

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON- and YAML-serialisable dict that ``config_from_dict`` reads back."""
        return self.model_dump(mode="json")
