"""The subcommand registry. Each module here registers its commands with ``@command``.

Modules import only argparse-level code at import time; handlers import the heavy
parts (Keras, Optuna, pandas) when they run, so ``sweep --help`` stays fast. The top
layer under ``sweep.cli``: may import every layer below; nothing but ``sweep.cli`` imports it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sweep.logs import import_keras_quietly  # noqa: F401 - the handlers import it from here

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]
    examples: tuple[str, ...] = ()


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None],
            examples: tuple[str, ...] = ()):
    """Register ``handler`` as ``sweep NAME``; ``examples`` are command lines its --help shows."""

    def register(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(help, add_arguments, handler, examples)
        return handler

    return register


def study_spec(spec: str, storage: str | None) -> tuple[str, str | None]:
    """(name, storage URL or None) from a NAME or URL#NAME argument and ``--storage``."""
    from sweep.errors import ConfigError
    from sweep.report.data.source import split_spec

    name, url = split_spec(spec)
    if url and storage:
        raise ConfigError(f"{spec!r}: give the storage either as URL#NAME or with --storage, not both")
    return name, url or storage


def config_arguments(parser: argparse.ArgumentParser) -> None:
    """CONFIG and repeatable --set KEY=VALUE, shared by the commands that read a config."""
    parser.add_argument("config", metavar="CONFIG", help="YAML config file (see configs/)")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config value by its dotted key, e.g. --set train.epochs=3 (repeatable)",
    )
    code_dir_argument(parser)


def code_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--code-dir", metavar="DIR", default=None,
                        help="the folder of your model.builder / data.loader modules (default: study.code_dir, "
                             "else the config file's folder); code is imported only from the working directory, "
                             "the config file's folder and this folder, never from a folder a study names")


def trust_code_dir(code_dir: str | None) -> str | None:
    """Trust ``--code-dir`` for this run (and its workers); its absolute path, or None."""
    if code_dir is None:
        return None
    from pathlib import Path

    from sweep.config.code_dirs import trust
    from sweep.errors import ConfigError

    folder = Path(code_dir).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError(f"--code-dir {code_dir}: no such folder; expected the folder of your model or data module")
    trust(folder)
    return str(folder)


def load_run_config(args: argparse.Namespace):
    """The config of CONFIG, ``--set`` and ``--code-dir`` (which replaces ``study.code_dir``)."""
    from sweep.config import load_config

    config = load_config(args.config, args.set)
    folder = trust_code_dir(args.code_dir)
    if folder is None or not (config.model.builder or config.data.loader):
        return config
    return config.model_copy(update={"study": config.study.model_copy(update={"code_dir": folder})})


def storage_url(text: str) -> str:
    """``--storage``'s type: an empty URL (``--storage ''``, an unset shell variable) is an
    error, not a silent fall-back to the default database."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty URL; give one, e.g. sqlite:///studies/NAME.db or postgresql+psycopg://...")
    return text


@contextmanager
def storage_faults(url: str) -> Iterator[None]:
    """A storage that refuses a command's writes (a read-only folder or database user, a full
    disk) is one line and exit 1, as it is once the workers run (sweep.study.worker)."""
    import optuna

    from sweep.errors import TrainingError
    from sweep.storage.database import mask_secrets, mask_url

    try:
        yield
    except optuna.exceptions.StorageInternalError as exc:
        cause = mask_secrets(str(exc.__cause__ or exc).splitlines()[0], url)
        raise TrainingError(f"storage {mask_url(url)} cannot be written ({cause[:200]}); "
                            "what was stored before is intact") from None


# Registration order is the order in `sweep --help`.
from sweep.commands import train  # noqa: E402,F401
from sweep.commands import study  # noqa: E402,F401
from sweep.commands import lr_find  # noqa: E402,F401
from sweep.commands import report  # noqa: E402,F401
from sweep.commands import evaluate  # noqa: E402,F401
