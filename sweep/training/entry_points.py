"""Loading the user's code named in a config: ``model.builder`` and ``data.loader``.

A config names code as ``"module:function"``, and a study stores its config in the
database, where ``sweep resume`` and every worker joining through PostgreSQL read it.
So a study database must not be a way to run code:

- an entry point is imported only from a Python file under a folder the invocation chose
  (``sweep.config.code_dirs``: the working directory, the config file's folder,
  ``--code-dir``); a ``study.code_dir`` outside them is refused before anything else;
- never from the standard library, installed packages or sweep itself;
- each module of the dotted path is *located* with ``importlib.machinery.PathFinder``,
  which runs no code (not even a parent package's ``__init__``), and checked;
- the defining file's bytes are read and hashed (``Located.sha256``) *before* anything is
  imported, so a caller can compare the hash with a study's record and refuse a changed
  file unexecuted (``sweep.study.code``); the module is then executed from exactly those
  bytes, so what was hashed is what runs.

Anything refused is one ``ConfigError`` line, and none of its code has run.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import site
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any

from sweep.config.code_dirs import check_code_dir, trusted_dirs
from sweep.errors import ConfigError, exception_summary

# Hashes of the files behind modules imported here: a module whose file changed since
# (a user editing their model between two runs in one process) is imported afresh.
_LOADED: dict[str, str] = {}
# Specs of functions and arrays handed to the Python API: never a module to import.
IN_MEMORY_PREFIX = "__memory__."


@dataclass(frozen=True)
class EntryPoint:
    spec: str  # "module:function"
    file: Path  # the file of the module the spec names
    sha256: str
    function: Callable[..., Any]

    def describe(self) -> dict[str, str]:
        """What a study stores about it: the spec, the module's file and its hash."""
        return {"entry_point": self.spec, "file": str(self.file), "sha256": self.sha256}


@dataclass(frozen=True)
class Located:
    """An entry point found and hashed, none of its code run yet."""

    spec: str
    field: str
    module_name: str
    function_name: str
    file: Path
    source: bytes = dataclass_field(repr=False)
    search_locations: tuple[str, ...] | None  # set when the module is a package's __init__.py

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source).hexdigest()


# Functions and arrays handed to the Python API in this process (``sweep.training.in_memory``),
# by spec: the caller's own code, found here and never imported from anywhere.
_IN_MEMORY: dict[str, tuple[Located, EntryPoint]] = {}


def is_in_memory(spec: str | None) -> bool:
    """Whether ``spec`` names a function or arrays handed to the Python API (``sweep.training.in_memory``)."""
    return bool(spec) and spec.startswith(IN_MEMORY_PREFIX)


def search_roots(code_dir: str | None) -> list[Path]:
    """Where entry-point modules may live: ``code_dir``, then the folders this run trusts
    (``ConfigError`` when ``code_dir`` is not one of them or inside one)."""
    check_code_dir(code_dir)
    roots = [Path(code_dir)] if code_dir else []
    roots += trusted_dirs()
    return list(dict.fromkeys(root.resolve() for root in roots))


def load_entry_point(spec: str, code_dir: str | None, field: str) -> EntryPoint:
    """Import ``spec`` ("module:function") from the user's code and return the function,
    uncalled. ``field`` names the config key in errors."""
    return import_located(locate_entry_point(spec, code_dir, field))


def locate_entry_point(spec: str, code_dir: str | None, field: str) -> Located:
    """Find and hash the module ``spec`` names, running none of its code (nor its parents')."""
    if is_in_memory(spec):
        return _in_memory(spec, field)[0]
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ConfigError(f"{field}: expected 'module:function', got {spec!r}")
    roots = search_roots(code_dir)
    where = " or ".join(str(root) for root in roots)
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names or top == "sweep":
        kind = "sweep's own" if top == "sweep" else "the standard library"
        raise ConfigError(f"{field}: {spec!r} names {kind} module {top!r}; "
                          f"entry points must be your own modules under {where}")
    found = _find(module_name, roots, field, spec, where)
    file = Path(found.origin).resolve()
    try:
        source = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{field}: {file} cannot be read ({exc.strerror})") from None
    locations = tuple(found.submodule_search_locations) if found.submodule_search_locations is not None else None
    return Located(spec, field, module_name, function_name, file, source, locations)


def import_located(located: Located) -> EntryPoint:
    """Run the located module (from the bytes that were hashed) and return its function, uncalled."""
    spec, field, module_name, function_name = located.spec, located.field, located.module_name, located.function_name
    if is_in_memory(spec):
        return _in_memory(spec, field)[1]
    module = _import(located)
    function = getattr(module, function_name, None)
    if function is None:
        raise ConfigError(f"{field}: module {module_name!r} ({located.file}) has no function {function_name!r}")
    if not inspect.isfunction(function):
        raise ConfigError(f"{field}: {spec!r} is a {type(function).__name__}, expected a Python function")
    defined_in = inspect.getsourcefile(function) or "no source file"
    roots = search_roots(None) + [located.file.parent]
    if not (Path(defined_in).is_file() and _is_user_file(Path(defined_in).resolve(), roots)):
        raise ConfigError(f"{field}: {spec!r} is defined in {defined_in}, outside {located.file.parent}; "
                          "entry points must be functions defined in your own modules")
    return EntryPoint(spec, located.file, located.sha256, function)


def _in_memory(spec: str, field: str) -> tuple[Located, EntryPoint]:
    if spec in _IN_MEMORY:
        return _IN_MEMORY[spec]
    what, exists, them, keep = (
        ("arrays", "exist", "them", "save them with numpy.savez and set data.source: npz, data.path: FILE")
        if field == "data.loader" else
        ("a function", "exists", "it", f"put it in a module file and set {field}: module:function"))
    raise ConfigError(f"{field}: the study was run with {what} handed to sweep.run in a notebook or script "
                      f"({spec}), which {exists} only in that Python process; pass {them} to sweep.run again, "
                      f"or, to continue from the command line or another machine, {keep} "
                      "(sweep run CONFIG --force)")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _find(module_name: str, roots: list[Path], field: str, spec: str, where: str) -> ModuleSpec:
    """Locate each module of the dotted path without running any of it; refuse any not in user code.

    The top module is searched on ``sys.path`` with the roots last, so a user module named
    like an installed one is found as the installed one, and refused, never shadowing it."""
    _add_to_path(roots)
    parts = module_name.split(".")
    found: ModuleSpec | None = None
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        loaded = sys.modules.get(name)
        if loaded is not None and getattr(loaded, "__spec__", None) is not None:
            found = loaded.__spec__  # imported before (stdlib and installed ones are refused below)
        else:
            path = sys.path if found is None else list(found.submodule_search_locations or [])
            try:
                found = PathFinder.find_spec(name, path)
            except (ImportError, ValueError):
                found = None
        if found is None:
            raise ConfigError(f"{field}: no module {name!r} under {where}; expected a .py file there")
        origins = [found.origin] if found.origin not in (None, "namespace") else []
        origins += [] if origins else list(found.submodule_search_locations or [])
        for origin in origins:
            if not _is_user_file(Path(origin).resolve(), roots):
                raise ConfigError(f"{field}: {spec!r}: module {name!r} is {origin}, not a file under {where}; "
                                  "entry points are imported only from your own modules (rename yours if it "
                                  "clashes with an installed one)")
        if depth < len(parts) and found.submodule_search_locations is None:
            raise ConfigError(f"{field}: no module {'.'.join(parts[:depth + 1])!r} under {where}; "
                              f"{name!r} is not a package")
    if found.origin in (None, "namespace") or not str(found.origin).endswith(".py"):
        raise ConfigError(f"{field}: module {module_name!r} is {found.origin}; expected Python source (.py)")
    return found


def _import(located: Located) -> Any:
    """The module, executed from ``located.source``; reused while its file is unchanged."""
    name = located.module_name
    module = sys.modules.get(name)
    if module is not None and _LOADED.get(name) == located.sha256:
        return module
    if "." in name:
        parent = name.rpartition(".")[0]
        try:
            importlib.import_module(parent)  # located and checked as user code by _find
        except Exception as exc:  # noqa: BLE001 - any error in the user's module is the user's to fix
            raise ConfigError(f"{located.field}: package {parent!r} of {located.spec!r} does not import: "
                              f"{exception_summary(exc)}") from None
    spec = importlib.util.spec_from_file_location(name, located.file,
                                                  submodule_search_locations=located.search_locations)
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        exec(compile(located.source, str(located.file), "exec"), module.__dict__)  # noqa: S102 - the hashed bytes
    except Exception as exc:  # noqa: BLE001 - any error in the user's module is the user's to fix
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
        raise ConfigError(f"{located.field}: module {name!r} of {located.spec!r} does not import: "
                          f"{exception_summary(exc)}") from None
    if "." in name:
        setattr(sys.modules[name.rpartition(".")[0]], name.rpartition(".")[2], module)
    _LOADED[name] = located.sha256
    return module


def _add_to_path(roots: list[Path]) -> None:
    # Appended, not prepended: the user's folder never shadows an installed or standard module
    # (a clash is refused by _check_located instead).
    for root in roots:
        if str(root) not in sys.path:
            sys.path.append(str(root))


def _is_user_file(path: Path, roots: list[Path]) -> bool:
    """Under one of ``roots`` and not inside the standard library, site-packages or the interpreter's prefix."""
    if not any(path.is_relative_to(root) for root in roots):
        return False
    return not any(path.is_relative_to(system) for system in _system_dirs())


def _system_dirs() -> list[Path]:
    paths = sysconfig.get_paths()
    dirs = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    dirs += site.getsitepackages() + [site.getusersitepackages()]
    return [Path(d).resolve() for d in dirs if d]

