"""Which folders this run may import the user's code from: chosen by the invocation, never by a database.

A study stores its config, ``study.code_dir`` included, and ``sweep resume`` or a worker
joining through PostgreSQL reads it back. Were that folder trusted, whoever can write the
database would choose what a worker imports. So the folders code may come from are the
run's own: the working directory, the folder of a config *file* this process read (and the
``study.code_dir`` that file names), and ``--code-dir``. A ``study.code_dir`` read from a
study is only a hint: it must be one of those folders or inside one
(``check_code_dir``), else the run stops before anything is imported.

The list travels to the worker processes a run spawns in an environment variable, which a
spawned interpreter inherits from its parent and a database cannot set.
"""

from __future__ import annotations

import os
from pathlib import Path

from sweep.errors import ConfigError

ENV = "SWEEP_TRUSTED_CODE_DIRS"  # os.pathsep-separated absolute folders, set by this module


def trust(*folders: str | Path) -> None:
    """Let this process (and those it starts) import entry points from ``folders``."""
    known = _extra()
    for folder in folders:
        resolved = Path(folder).expanduser().resolve()
        if resolved not in known:
            known.append(resolved)
    os.environ[ENV] = os.pathsep.join(str(folder) for folder in known)


def _extra() -> list[Path]:
    return [Path(p) for p in os.environ.get(ENV, "").split(os.pathsep) if p]


def trusted_dirs() -> list[Path]:
    """The working directory, then every folder ``trust`` was given in this run."""
    return list(dict.fromkeys([Path.cwd().resolve(), *_extra()]))


def is_trusted(folder: str | Path) -> bool:
    path = Path(folder).expanduser().resolve()
    return any(path.is_relative_to(root) for root in trusted_dirs())


def check_code_dir(code_dir: str | None, field: str = "study.code_dir") -> None:
    """Refuse (``ConfigError``, one line naming both) a code folder the invocation did not choose."""
    if code_dir is None or is_trusted(code_dir):
        return
    allowed = ", ".join(str(p) for p in trusted_dirs())
    raise ConfigError(f"{field} {code_dir} is not a folder this run may import code from ({allowed}: the working "
                      f"directory, the config file's folder, --code-dir); run from it or pass --code-dir {code_dir} "
                      "if that code is yours")
