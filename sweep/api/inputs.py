"""The API's inputs as a ``Config``: a YAML path, a dict in the YAML's shape or a ``Config``,
keyword overrides, and the caller's model and arrays (``sweep.training.in_memory``).

Overrides go through the same code as ``--set`` (``sweep.config.apply_overrides``), and a
dict through the same validation as a YAML file, so every mistake is the CLI's one-line
``ConfigError``, raised as an exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from sweep.config import Config, apply_overrides, config_from_dict, load_config
from sweep.errors import ConfigError

DICT_SOURCE = "config"  # how errors name a dict config (a file is named by its path)


def resolve(config: str | Path | Mapping | Config | None, overrides: Mapping[str, Any], *,
            model: Callable[..., Any] | None = None, data: Any = None) -> Config:
    """The config the API runs: ``config`` with ``overrides`` (``train__epochs=3``,
    ``**{"train.epochs": 3}`` or ``train={"epochs": 3}``), the caller's ``model`` as
    ``model.builder`` and ``data`` as the study's data."""
    items = [f"{key}={_yaml_value(value)}" for key, value in _dotted(overrides)]
    if isinstance(config, (str, Path)):
        resolved = load_config(config, items)
    elif isinstance(config, Config):
        resolved = config_from_dict(apply_overrides(config.to_dict(), items, "override"), DICT_SOURCE)
    elif config is None or isinstance(config, Mapping):
        resolved = config_from_dict(apply_overrides(_plain(config or {}), items, "override"), DICT_SOURCE)
    else:
        raise ConfigError(f"config: expected a YAML file path, a dict or a sweep Config, got {type(config).__name__}")
    return with_model_and_data(resolved, model, data)


def with_model_and_data(config: Config, model: Callable[..., Any] | None, data: Any) -> Config:
    """``config`` naming the caller's builder and arrays (registered in this process)."""
    from sweep.training.in_memory import register_arrays, register_builder

    raw = config.to_dict()
    if model is not None:
        raw["model"]["builder"] = register_builder(model)
    if data is not None:
        spec = register_arrays(arrays_of(data), config.data.num_classes)
        raw["data"].update(source="python", loader=spec, path=None)
    return config_from_dict(raw, DICT_SOURCE) if model is not None or data is not None else config


def arrays_of(data: Any) -> Mapping[str, Any]:
    """``(x, y)``, ``(x, y, x_test, y_test)`` or a mapping with the keys an .npz holds."""
    if isinstance(data, Mapping):
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        return dict(zip(("x_train", "y_train", "x_test", "y_test"), data))
    raise ConfigError(f"data: expected (x, y), (x, y, x_test, y_test) or a dict with x_train and y_train, "
                      f"got {_describe(data)}")


def _describe(data: Any) -> str:
    if isinstance(data, (tuple, list)):
        return f"a {type(data).__name__} of {len(data)}"
    return f"a {type(data).__name__}"


def _dotted(overrides: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``train__epochs=3`` and ``train={"epochs": 3}`` as ``("train.epochs", 3)``."""
    items: list[tuple[str, Any]] = []
    for key, value in overrides.items():
        dotted = prefix + key.replace("__", ".")
        if isinstance(value, Mapping) and "." not in dotted and value:
            items += _dotted(value, dotted + ".")
        else:
            items.append((dotted, value))
    return items


def _yaml_value(value: Any) -> str:
    """A Python value as the YAML text ``--set`` reads back to the same value."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # refused by validation, in its words
    if isinstance(value, Path):
        value = str(value)
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=1 << 30)
    return text.removesuffix("\n...\n").strip()


def _plain(value: Any) -> Any:
    """Mappings and sequences as dicts and lists (a dict from anywhere, tuples from Python)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()  # a numpy scalar, as the Python number YAML knows
    return value
