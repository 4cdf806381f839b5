"""Loading the user's code named in a config: ``model.builder`` and ``data.loader``.

A config names code as ``"module:function"``, and a study stores its config in the
database, where ``sweep resume`` and every worker joining through PostgreSQL read it.
So a study database must not be a way to run code: an entry point is imported only
from a Python file under the working directory or ``study.code_dir`` (the config
file's folder), never from the standard library or installed packages, and anything
else is refused (``ConfigError``, one line) before any of its code runs. Each module
of the dotted path is located with ``importlib.util.find_spec`` (which runs no code
of the module it finds) and checked before it is imported.

``EntryPoint.sha256`` is the hash of the file that defines the function: a study
stores it, so a changed model file is a change the user must acknowledge on resume.
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
from pathlib import Path
from typing import Any

from sweep.errors import ConfigError, exception_summary

# Hashes of the files behind modules imported here: a module whose file changed since
# (a user editing their model between two runs in one process) is imported afresh.
_LOADED: dict[str, str] = {}


@dataclass(frozen=True)
class EntryPoint:
    spec: str  # "module:function"
    file: Path  # the file that defines the function
    sha256: str
    function: Callable[..., Any]

    def describe(self) -> dict[str, str]:
        """What a study stores about it: the spec, the defining file and its hash."""
        return {"entry_point": self.spec, "file": str(self.file), "sha256": self.sha256}


def search_roots(code_dir: str | None) -> list[Path]:
    """Where entry-point modules may live: ``code_dir`` (the config's folder), then the working directory."""
    roots = [Path(code_dir)] if code_dir else []
    roots.append(Path.cwd())
    return list(dict.fromkeys(root.resolve() for root in roots))


def load_entry_point(spec: str, code_dir: str | None, field: str) -> EntryPoint:
    """Import ``spec`` ("module:function") from user code under ``code_dir`` or the working
    directory and return the function, uncalled. ``field`` names the config key in errors."""
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
    _check_located(module_name, roots, field, spec, where)
    module = _import(module_name, field, spec)
    function = getattr(module, function_name, None)
    if function is None:
        raise ConfigError(f"{field}: module {module_name!r} ({module.__file__}) has no function {function_name!r}")
    if not inspect.isfunction(function):
        raise ConfigError(f"{field}: {spec!r} is a {type(function).__name__}, expected a Python function")
    defined_in = inspect.getsourcefile(function) or "no source file"
    source = Path(defined_in).resolve()
    if not (Path(defined_in).is_file() and _is_user_file(source, roots)):
        raise ConfigError(f"{field}: {spec!r} is defined in {defined_in}, outside {where}; "
                          "entry points must be functions defined in your own modules")
    return EntryPoint(spec, source, file_sha256(source), function)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _check_located(module_name: str, roots: list[Path], field: str, spec: str, where: str) -> None:
    """Find each module of the dotted path without running it; refuse any not in user code."""
    _add_to_path(roots)
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        try:
            found = importlib.util.find_spec(name)  # imports the parents, already checked
        except (ImportError, ValueError) as exc:
            found, error = None, exc
        else:
            error = None
        if found is None:
            reason = f" ({exception_summary(error)})" if error is not None else ""
            raise ConfigError(f"{field}: no module {name!r} under {where}{reason}; expected a .py file there")
        origins = [found.origin] if found.origin not in (None, "namespace") else []
        origins += [] if origins else list(found.submodule_search_locations or [])
        for origin in origins:
            if not _is_user_file(Path(origin).resolve(), roots):
                raise ConfigError(f"{field}: {spec!r}: module {name!r} is {origin}, not a file under {where}; "
                                  "entry points are imported only from your own modules (rename yours if it "
                                  "clashes with an installed one)")
        if found.origin not in (None, "namespace") and not str(found.origin).endswith(".py"):
            raise ConfigError(f"{field}: module {name!r} is {found.origin}; expected Python source (.py)")


def _import(module_name: str, field: str, spec: str) -> Any:
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module is not None and file and _LOADED.get(module_name) != file_sha256(Path(file)):
        for name in [n for n in sys.modules if n == module_name or n.startswith(module_name + ".")]:
            del sys.modules[name]  # the file changed since it was imported here: import it again
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any error in the user's module is the user's to fix
        raise ConfigError(f"{field}: module {module_name!r} of {spec!r} does not import: {exception_summary(exc)}") from None
    if getattr(module, "__file__", None):
        _LOADED[module_name] = file_sha256(Path(module.__file__))
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

