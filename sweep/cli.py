"""The command line: argv in, exit code out. The only module that prints (with ``sweep.commands``).

Subcommands live in a registry; each handler imports what it needs when it runs, so
``sweep --help`` and config errors never import TensorFlow. Errors become exit codes
here and nowhere else: 2 bad input, 1 runtime failure, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from sweep import __version__
from sweep.commands import COMMANDS, EXIT_BAD_INPUT, EXIT_INTERRUPTED
from sweep.errors import ConfigError, SweepError
from sweep.logs import quiet_tensorflow, setup_logging

log = logging.getLogger("sweep")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is a ConfigError: one line, exit 2, handled in main.

    main prints every error as ``sweep: error: ...``, so the message names only the
    subcommand (``run: ...``), never ``sweep`` again.
    """

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("sweep").strip()
        raise ConfigError(f"{command + ': ' if command else ''}{message} (see '{self.prog} --help')")


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
    parser.set_defaults(subparsers={})
    for name, cmd in COMMANDS.items():
        examples = "examples:\n" + "\n".join(f"  {line}" for line in cmd.examples) if cmd.examples else None
        sub = subparsers.add_parser(name, help=cmd.help, description=cmd.help, epilog=examples,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_arguments(sub)
        sub.set_defaults(handler=cmd.handler)
        parser.get_default("subparsers")[name] = sub
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sweep`` with ``argv`` (default: sys.argv[1:]) and return the exit code."""
    quiet_tensorflow()
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:  # said by the subcommand's parser, so the message names the command
            args.subparsers[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except ConfigError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    setup_logging(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    try:
        return args.handler(args)
    except SweepError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sweep: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `sweep status | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
