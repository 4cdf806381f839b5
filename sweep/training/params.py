"""One training configuration: the trial parameters that the search varies.

The names are the Optuna parameter names (GUIDE §1), so a trial's ``params`` dict, a
``best_config.yaml`` and ``sweep train --params`` all speak the same language.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sweep.config import (FAMILY_PARAMS, MAX_INITIAL_LR, MOMENTUM_OPTIMIZERS, OPTIONAL_PARAMS, SCHEDULE_PARAMS,
                          DecayShape, OptimizerName, ScheduleName)
from sweep.errors import ConfigError


class TrialParams(BaseModel):
    """The learning-rate parameters of one training run."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    initial_lr: float = Field(gt=0, le=MAX_INITIAL_LR)
    schedule: ScheduleName = "constant"
    warmup_fraction: float = Field(default=0.0, ge=0, lt=1)
    # Each family's own parameters (sweep.config.families.FAMILY_PARAMS); None where it has none.
    decay_rate: float | None = Field(default=None, gt=0, le=1)
    decay_steps: int | None = Field(default=None, ge=1)
    pct_start: float | None = Field(default=None, gt=0, lt=1)
    decay_fraction: float | None = Field(default=None, gt=0, le=1)
    decay_shape: DecayShape | None = None
    restart_fraction: float | None = Field(default=None, gt=0, le=1)
    t_mul: float | None = Field(default=None, ge=1, le=10)
    m_mul: float | None = Field(default=None, gt=0, le=1)
    power: float | None = Field(default=None, gt=0, le=100)
    min_lr_ratio: float | None = Field(default=None, ge=0, lt=1)

    # Set only where the study searches them (search.optimizers, search.momentum,
    # search.weight_decay); otherwise train.optimizer and train.optimizer_args apply.
    optimizer: OptimizerName | None = None
    momentum: float | None = Field(default=None, ge=0, le=1)
    weight_decay: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _params_match_schedule(self) -> TrialParams:
        required = FAMILY_PARAMS[self.schedule]
        missing = [name for name in required if getattr(self, name) is None]
        if missing:
            raise ValueError(f"schedule {self.schedule!r} needs {' and '.join(required)}")
        allowed = set(required) | set(OPTIONAL_PARAMS[self.schedule])
        for name in SCHEDULE_PARAMS:
            if getattr(self, name) is not None and name not in allowed:
                users = [s for s in FAMILY_PARAMS if name in FAMILY_PARAMS[s] or name in OPTIONAL_PARAMS[s]]
                where = (f"only to {' and '.join(users)}" if len(users) < 4
                         else f"to every schedule but {', '.join(s for s in FAMILY_PARAMS if s not in users)}")
                raise ValueError(f"{name} applies {where}, not to {self.schedule!r}")
        if self.momentum is not None and self.optimizer is not None and self.optimizer not in MOMENTUM_OPTIMIZERS:
            raise ValueError(f"momentum applies only to {' and '.join(MOMENTUM_OPTIMIZERS)}, not {self.optimizer!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The Optuna-style params dict: a family's keys only where the schedule uses them."""
        return self.model_dump(exclude_none=True)


def params_from_dict(raw: Any, source: str = "params") -> TrialParams:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a JSON object of trial parameters, got {type(raw).__name__}")
    try:
        return TrialParams.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in error["loc"]) or "params"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown parameter; expected {', '.join(TrialParams.model_fields)}"
        received = raw.get(error["loc"][0]) if error["loc"] else None
        got = f" (got {received!r})" if error["loc"] and error["type"] != "extra_forbidden" else ""
        raise ConfigError(f"{source}: {loc}: {message}{got}") from None


def parse_params(text_or_path: str) -> TrialParams:
    """Read ``--params``: inline JSON, or the path of a JSON or YAML file holding it."""
    return params_from_dict(*read_params(text_or_path))


def read_params(text_or_path: str) -> tuple[Any, str]:
    """``--params`` as read, not yet validated, and where it came from (for messages)."""
    text = text_or_path.strip()
    if text.startswith("{"):
        source = "--params"
    else:
        path = Path(text_or_path)
        if not path.is_file():
            raise ConfigError(f"--params {text_or_path!r}: neither a JSON object nor an existing file")
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot be read ({exc})") from None
        if path.suffix in (".yaml", ".yml"):
            from sweep.config import parse_yaml

            raw = parse_yaml(text, source)
            # best_config.yaml holds a whole config with the parameters under "params".
            if isinstance(raw, dict) and "params" in raw:
                raw = raw["params"]
            return raw, source
    try:
        return json.loads(text), source
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON: {exc.msg} at column {exc.colno}") from None
