"""Functions and arrays handed to the Python API (``sweep.run(model=build, data=(x, y))``).

A builder defined in a notebook or script is the caller's own code in the caller's
process: it is never imported from anywhere. It is registered here under a spec
(``__memory__.<module>:<name>``) that the config names as ``model.builder``, and
``sweep.training.entry_points.load_entry_point`` finds it in this process only. Its
qualified name and the hash of its source are the study's code record, so a later run
with another function (another spec: a config change) or an edited one (another hash)
is refused unless forced, as for a module file. A builder that is already a function of
the user's own module file is named as a plain ``module:function`` instead, so the study
continues from the command line too.

Arrays become a ``data.source: python`` loader under ``__memory__.data:arrays_<hash>``:
from there the data path is the one files take (checks, the seeded split, the study's
data fingerprint). Worker processes receive ``entries()`` once and ``install`` them.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sweep.errors import ConfigError
from sweep.training.entry_points import (_IN_MEMORY, _LOADED, IN_MEMORY_PREFIX, EntryPoint, Located, file_sha256,
                                         is_in_memory, load_entry_point)
from sweep.training.user_data import check_arrays

IN_MEMORY_FILE = "<in memory>"
_NOT_A_NAME = re.compile(r"\W")  # a qualified name's dots and brackets, in a spec's function part
__all__ = ["entries", "install", "is_in_memory", "register_arrays", "register_builder", "worker_pool"]


def register_builder(function: Callable[..., Any]) -> str:
    """The ``model.builder`` spec naming ``function`` (registered when it lives in no module file)."""
    if not callable(function):
        raise ConfigError(f"model: expected a function (input_shape, num_classes) -> keras.Model, "
                          f"got a {type(function).__name__}")
    module = getattr(function, "__module__", None) or "__main__"
    name = getattr(function, "__qualname__", None) or type(function).__name__
    if module != "__main__" and name == getattr(function, "__name__", None):
        plain = f"{module}:{name}"
        loaded = getattr(sys.modules.get(module), "__file__", None)
        if loaded and Path(loaded).is_file():
            _LOADED.setdefault(module, file_sha256(Path(loaded)))  # imported by the caller: not again
        try:
            if load_entry_point(plain, None, "model.builder").function is function:
                return plain  # the user's own module file: resumable from anywhere
        except ConfigError:
            pass  # not a module file under the working directory: kept in memory
    spec = f"{IN_MEMORY_PREFIX}{module}:{_NOT_A_NAME.sub('_', name)}"
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):  # no source (built in a loop, compiled): its bytecode stands for it
        code = getattr(function, "__code__", None)
        source = repr((code.co_code, code.co_consts)) if code is not None else repr(function)
    try:
        file = inspect.getsourcefile(function) or IN_MEMORY_FILE
    except TypeError:
        file = IN_MEMORY_FILE
    _register(spec, "model.builder", Path(file), source.encode(), function)
    return spec


def register_arrays(arrays: Mapping[str, Any], num_classes: int | None = None) -> str:
    """The ``data.loader`` spec serving ``arrays`` (keys as in an .npz), checked now."""
    check_arrays(arrays, "data", num_classes)  # bad arrays: one line before anything else runs
    digest = hashlib.blake2b(digest_size=8)
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}{array.dtype.str}{array.shape}".encode())
        digest.update(array)
    spec = f"{IN_MEMORY_PREFIX}data:arrays_{digest.hexdigest()}"
    if spec not in _IN_MEMORY:
        held = dict(arrays)
        _register(spec, "data.loader", Path(IN_MEMORY_FILE), digest.digest(), lambda: held)
    return spec


def _register(spec: str, field: str, file: Path, source: bytes, function: Callable[..., Any]) -> None:
    """``spec`` found in this process: located (its "source" hashed as a file's is) and loaded."""
    module_name, _, function_name = spec.partition(":")
    located = Located(spec, field, module_name, function_name, file, source, None)
    _IN_MEMORY[spec] = (located, EntryPoint(spec, file, located.sha256, function))


def entries() -> dict[str, tuple[Located, EntryPoint]]:
    """Everything registered in this process, for worker processes to ``install`` once."""
    return dict(_IN_MEMORY)


def install(registered: Mapping[str, tuple[Located, EntryPoint]]) -> None:
    """In a worker process: make the parent's functions and arrays findable here."""
    _IN_MEMORY.update(registered)



def worker_pool(max_workers: int, specs: Iterable[str | None]) -> Any:
    """Worker processes (loky: fresh interpreters, callables sent by cloudpickle) that each
    receive the registered functions and arrays ``specs`` name once, when they start."""
    from joblib.externals.loky import ProcessPoolExecutor

    needed = {spec: _IN_MEMORY[spec] for spec in specs if spec in _IN_MEMORY}
    return ProcessPoolExecutor(max_workers=max_workers, initializer=install, initargs=(needed,))
