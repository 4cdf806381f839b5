"""The command line: argv in, exit code out. The only module that prints or sets up logging.

Subcommands live in a registry; each handler imports what it needs when it runs, so
``sweep --help`` and config errors never import TensorFlow. Errors become exit codes
here and nowhere else: 2 bad input, 1 runtime failure, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sweep import __version__
from sweep.errors import ConfigError, SweepError

log = logging.getLogger("sweep")

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a ConfigError: one line, exit 2, handled in main."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message} (see {self.prog} --help)")


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``handler`` as ``sweep NAME``."""

    def register(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(help, add_arguments, handler)
        return handler

    return register


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="YAML config file (see configs/)")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override a config value by its dotted key, e.g. --set train.epochs=3 (repeatable)",
    )


# --- sweep train ------------------------------------------------------------------------


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    _config_arguments(parser)
    parser.add_argument(
        "--params",
        required=True,
        metavar="JSON_OR_FILE",
        help='trial parameters as JSON, e.g. \'{"initial_lr": 0.001, "schedule": "cosine", '
        '"warmup_fraction": 0.1}\', or a JSON file or a best_config.yaml',
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: study.seed)")


@command("train", "train one configuration, no study (reproduce a trial)", _train_arguments)
def _train(args: argparse.Namespace) -> int:
    from sweep.config import load_config
    from sweep.params import parse_params

    config = load_config(args.config, args.set)
    params = parse_params(args.params)
    seed = config.study.seed if args.seed is None else args.seed

    from sweep.data import load_dataset

    data = load_dataset(config.data, config.study.seed)
    print(f"training {params.to_dict()} on {data.num_train} images, validating on {len(data.y_val)}", flush=True)

    import_keras_quietly()
    from sweep.trainer import train

    epochs = config.train.epochs

    def show(entry) -> None:
        print(
            f"epoch {entry.epoch:>3}/{epochs}  loss {entry.loss:.4f}  val_loss {entry.val_loss:.4f}  "
            f"val_accuracy {entry.val_accuracy:.4f}  lr {entry.lr:.3g}  ({entry.seconds:.1f}s)",
            flush=True,
        )

    result = train(config, params, data, seed=seed, on_epoch=show)
    best = result.value("val_accuracy", "best")
    if result.diverged:
        print(f"training diverged at epoch {len(result.history)} (non-finite loss); try a lower initial_lr",
              file=sys.stderr)
    best_epoch = next((e.epoch for e in result.history if e.val_accuracy == best), None)
    print(f"best val_accuracy {best:.4f} (epoch {best_epoch}) in {result.seconds:.1f}s")
    return EXIT_RUNTIME if result.diverged else EXIT_OK


# --- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sweep",
        description="Learning-rate and schedule sweeps for Keras, seeded by an LR range test.",
        epilog="Run 'sweep COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"sweep {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cmd in COMMANDS.items():
        sub = subparsers.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(sub)
        sub.set_defaults(handler=cmd.handler)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (tests swap it between calls of main)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("[%(levelname).1s %(name)s] %(message)s"))
    root = logging.getLogger("sweep")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def _quiet_tensorflow() -> None:
    # Must happen before TensorFlow is imported: it reads these at import time.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    logging.getLogger("absl").setLevel(logging.ERROR)


def import_keras_quietly() -> None:
    """Import Keras (and its backend) with file descriptor 2 silenced.

    TensorFlow's C++ core prints oneDNN, CUDA-driver and absl banners to stderr
    before its log level applies, so the environment variables cannot hide them.
    Handlers call this before their first Keras import; real errors still surface
    as Python exceptions afterwards.
    """
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA probing prints here, once
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sweep`` with ``argv`` (default: sys.argv[1:]) and return the exit code."""
    _quiet_tensorflow()
    try:
        args = build_parser().parse_args(argv)
    except ConfigError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    _setup_logging(args.verbose, args.quiet)
    try:
        return args.handler(args)
    except SweepError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sweep: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
