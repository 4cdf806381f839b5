"""Reading configs: strict YAML, ``--set`` overrides, and errors that name the field.

``load_config`` and ``config_from_dict`` turn text or a dict into the frozen ``Config``
of ``sweep.config.schema``; a ``ValidationError`` becomes one ``ConfigError`` line that
names the file, the field path, the value received and what is expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sweep.config.schema import PARAMS_KEY, Config
from sweep.config.code_dirs import trust
from sweep.errors import ConfigError


# --- YAML -------------------------------------------------------------------------------


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader (no object construction) that refuses duplicate keys and reads 1e-5 as a float."""


def _construct_mapping(loader: _StrictSafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictSafeLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)
# YAML 1.1 reads "1e-5" (no dot) as a string; YAML 1.2 and every user read it as a number.
_StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{source}: invalid YAML: nested too deeply; expected a config of a few levels") from None


# --- overrides --------------------------------------------------------------------------


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``dotted.key=value`` applied (values parsed as YAML).

    A section the config leaves out starts from its defaults, so that
    ``search.initial_lr.high=0.5`` keeps the default ``low``.
    """
    result = _deep_copy(raw)
    defaults = Config().to_dict()
    for item in overrides:
        key, sep, value_text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not key.strip() or any(not p for p in parts):
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. train.epochs=3")
        value = parse_yaml(value_text, f"--set {item!r}") if value_text.strip() else None
        node = result
        default_node: Any = defaults
        for depth, part in enumerate(parts[:-1]):
            default_node = default_node.get(part) if isinstance(default_node, dict) else None
            if part not in node:
                node[part] = _deep_copy(default_node) if isinstance(default_node, dict) else {}
            child = node[part]
            if not isinstance(child, dict):
                path = ".".join(parts[: depth + 1])
                raise ConfigError(f"--set {item!r}: {path} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in raw.items()}


# --- loading ----------------------------------------------------------------------------


def config_from_dict(raw: Any, source: str = "config") -> Config:
    """Validate a plain dict (from YAML, or stored in a study) into a Config."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (study, data, ...), got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc, raw)}") from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read, override and validate a YAML config file."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise ConfigError(f"{source}: no such file; expected a YAML config such as configs/quickstart.yaml")
    if not path.is_file():
        raise ConfigError(f"{source}: is not a file; expected a YAML config file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start}); expected a YAML config file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read ({exc.strerror})") from None
    raw = parse_yaml(text, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (study, data, ...), got {type(raw).__name__}")
    # A report's best_config.yaml is a config plus the best trial's parameters under
    # "params" (read by `sweep train --params`); the config part is a config like any other.
    raw.pop(PARAMS_KEY, None)
    config = config_from_dict(apply_overrides(raw, list(overrides), source), source)
    config = _with_code_dir(config, path.resolve().parent)
    # The file is this run's own input: its folder (and the code folder it names) may hold code.
    trust(path.resolve().parent, *([config.study.code_dir] if config.study.code_dir else []))
    return config


def _with_code_dir(config: Config, config_folder: Path) -> Config:
    """Record where entry-point modules live: the config file's folder, or ``study.code_dir``
    made absolute against it. Only configs that name code carry it."""
    if not (config.model.builder or config.data.loader or ":" in (config.model.loss or "")):
        return config
    folder = config_folder / config.study.code_dir if config.study.code_dir else config_folder
    study = config.study.model_copy(update={"code_dir": str(folder.resolve())})
    return config.model_copy(update={"study": study})


def _describe(exc: ValidationError, raw: Any) -> str:
    """One line for the first validation error: field path, value received, what is expected."""
    error = exc.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        expected = _known_keys(error["loc"][:-1])
        return f"{loc}: unknown key; expected one of: {', '.join(expected)}"
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if not loc:  # a check across sections: its message names the fields
        return message
    received = _lookup(raw, error["loc"])
    got = "" if received is _MISSING or repr(received) in message else f" (got {received!r})"
    return f"{loc}: {message}{got}"


_MISSING = object()


def _lookup(raw: Any, loc: tuple[Any, ...]) -> Any:
    node = raw
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return node


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
