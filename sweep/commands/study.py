"""``sweep run``, ``sweep resume`` and ``sweep status``: a study's life from the command line."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from sweep.commands import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, command, config_arguments, import_keras_quietly

RESULTS_DIR = Path("results")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _storage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL", default=None,
                        help="SQLAlchemy URL of the study's database (default: study.storage, "
                             "else sqlite:///studies/NAME.db), e.g. postgresql+psycopg://user:pw@host/db")


def _worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=_positive_int, metavar="N", default=None,
                        help="worker processes training trials in parallel (default: study.workers)")
    parser.add_argument("--n-trials", type=_positive_int, metavar="N", default=None,
                        help="set the study-wide budget of finished trials (default: study.n_trials)")
    parser.add_argument("--no-report", action="store_true", help="do not write results/NAME/ at the end")


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    config_arguments(parser)
    _storage_argument(parser)
    _worker_arguments(parser)
    parser.add_argument("--force", action="store_true",
                        help="continue a study even though the config's search-relevant fields changed")


def _resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the study to continue (its config is stored in it)")
    _storage_argument(parser)
    _worker_arguments(parser)
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="override a field that may differ between machines: data.path, "
                             "study.workers, study.timeout_s (repeatable)")


@command("run", "create or continue the study a config describes, until its budget is spent", _run_arguments)
def _run(args: argparse.Namespace) -> int:
    from sweep.config import load_config
    from sweep.storage import resolve_storage_url

    config = load_config(args.config, args.set)
    url = resolve_storage_url(config.study.name, args.storage or config.study.storage)
    _quiet_optuna()
    if config.lr_finder.enabled:
        import_keras_quietly()  # the range test may run when the study is created
    from sweep.study_setup import open_study

    study = open_study(config, url, force=args.force, n_trials=args.n_trials)
    return _drive(study, config, url, args)


@command("resume", "continue a study from the config stored in it (no config file needed)", _resume_arguments)
def _resume(args: argparse.Namespace) -> int:
    from sweep.config import apply_overrides, config_from_dict
    from sweep.errors import ConfigError
    from sweep.study_setup import MUTABLE_FIELDS, reopen_study

    _quiet_optuna()
    for item in args.set:
        key = item.partition("=")[0].strip()
        if key not in MUTABLE_FIELDS - {"study.n_trials", "study.storage"}:
            raise ConfigError(f"--set {item!r}: resume can only change data.path, study.workers or study.timeout_s "
                              "(the rest is fixed by the study; use --n-trials for the budget)")
    study, stored = reopen_study(args.name, args.storage, n_trials=args.n_trials)
    config = config_from_dict(apply_overrides(stored.to_dict(), args.set, "--set"), "--set")
    from sweep.storage import resolve_storage_url

    return _drive(study, config, resolve_storage_url(args.name, args.storage), args)


def _quiet_optuna() -> None:
    """Our log says what each trial did; Optuna's per-trial lines and its warnings about
    the experimental heartbeat API (used on purpose, outside optimize) would only repeat it."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def _drive(study, config, url: str, args: argparse.Namespace) -> int:
    """Run the study's workers, then summarise and report."""
    from sweep.orchestrator import budget, checkpoints_dir
    from sweep.storage import mask_url

    workers = args.workers or config.study.workers
    status = budget(study)
    print(f"study {study.study_name} ({mask_url(url)}): {status.finished}/{status.total} trials finished; "
          f"{workers} worker{'s' * (workers > 1)}", flush=True)
    code = _run_workers(study.study_name, url, config, workers) if status.left else EXIT_OK
    status = budget(study)
    if status.finished >= status.total and not status.running:
        shutil.rmtree(checkpoints_dir(study.study_name), ignore_errors=True)
    _print_best(study)
    if code == EXIT_OK and not args.no_report:
        from sweep.report import write_report

        index = write_report(study, RESULTS_DIR / study.study_name, storage_url=url)
        print(f"report: {index}")
    return code


def _run_workers(name: str, url: str, config, workers: int) -> int:
    if workers == 1:
        import_keras_quietly()
        from sweep.orchestrator import run_worker

        run_worker(name, url, config=config)  # KeyboardInterrupt -> exit 130 in cli.main
        return EXIT_OK
    context = multiprocessing.get_context("spawn")  # fresh interpreters: TensorFlow does not survive fork
    level = logging.getLogger("sweep").level
    gpus = _gpu_count()
    processes = [
        context.Process(target=_worker_process, args=(name, url, config.to_dict(), index, level, gpus),
                        name=f"sweep-worker-{index}")
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        # Ctrl-C reaches the workers too (same process group); SIGTERM covers a kill of this
        # process alone. Each worker re-enqueues its trial and exits within seconds.
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join()
        return EXIT_INTERRUPTED
    codes = [process.exitcode for process in processes]
    if any(code == EXIT_INTERRUPTED or (code or 0) < 0 for code in codes):
        return EXIT_INTERRUPTED
    return EXIT_OK if all(code == 0 for code in codes) else EXIT_RUNTIME


def _worker_process(name: str, url: str, config_dict: dict, index: int, level: int, gpus: int) -> None:
    """A worker process: logging like the parent's, its GPU, then the worker loop."""
    if gpus > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
    from sweep.cli import quiet_tensorflow, setup_logging

    quiet_tensorflow()
    from sweep.config import config_from_dict
    from sweep.errors import SweepError

    import_keras_quietly()
    from sweep.orchestrator import run_worker

    setup_logging(level, prefix=f"w{index} ")
    _quiet_optuna()
    try:
        run_worker(name, url, worker_index=index, config=config_from_dict(config_dict))
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SweepError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def _gpu_count() -> int:
    """GPUs on this machine, without importing TensorFlow in the parent."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in listing.stdout.splitlines())


def _print_best(study) -> None:
    from sweep.orchestrator import budget

    status = budget(study)
    try:
        best = study.best_trial
    except ValueError:
        print(f"{status.finished}/{status.total} trials finished; none completed")
        return
    print(f"{status.finished}/{status.total} trials finished; best {best.value:.4f} (trial {best.number}): "
          f"{best.params}")


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", nargs="?", help="a study: show its best trial and running trials")
    _storage_argument(parser)


@command("status", "list studies (trials by state, best value, budget left), or one study in detail",
         _status_arguments)
def _status(args: argparse.Namespace) -> int:
    from sweep.status import study_detail, study_table

    if args.name:
        print(study_detail(args.name, args.storage))
    else:
        print(study_table(args.storage))
    return EXIT_OK
