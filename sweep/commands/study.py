"""``sweep run``, ``sweep resume`` and ``sweep status``: a study's life from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from sweep.commands import (EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNTIME, code_dir_argument, command, config_arguments,
                            import_keras_quietly, load_run_config, storage_faults, storage_url, study_spec,
                            trust_code_dir)

RESULTS_DIR = Path("results")
# A worker reuses one compiled model (sweep.training.model_cache) and grows about 0.4 MB a trial
# (+112 MB from trial 10 to 300; building a model per trial leaked 15 MB: GUIDE §4).
# Replacing it after this many trials bounds what any other leak could add; not sooner,
# because with one worker the replaced `sweep run` process keeps its memory meanwhile
# (benchmarks/memory.py: recycling every 100 doubled the total).
RECYCLE_AFTER_TRIALS = int(os.environ.get("SWEEP_RECYCLE_AFTER_TRIALS", "1000"))
EXIT_RECYCLE = 75  # a worker that stopped to be replaced, not because the study is done


def _positive_int(text: str, maximum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= maximum:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {maximum}, got {text!r}")
    return value


def _workers(text: str) -> int:
    from sweep.config import MAX_WORKERS  # the same bound as study.workers (100000 would start 100000 processes)

    return _positive_int(text, MAX_WORKERS)


def _n_trials(text: str) -> int:
    from sweep.config import MAX_TRIALS

    return _positive_int(text, MAX_TRIALS)


def _storage_argument(parser: argparse.ArgumentParser, default: str = "study.storage, else sqlite:///studies/NAME.db"
                      ) -> None:
    parser.add_argument("--storage", metavar="URL", type=storage_url, default=None,
                        help=f"SQLAlchemy URL of the study's database (default: {default}), "
                             "e.g. postgresql+psycopg://user:pw@host/db")


def _worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=_workers, metavar="N", default=None,
                        help="worker processes training trials in parallel (default: study.workers)")
    parser.add_argument("--n-trials", type=_n_trials, metavar="N", default=None,
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
    _storage_argument(parser, "sqlite:///studies/NAME.db")
    _worker_arguments(parser)
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                        help="override a field that may differ between machines: data.path, "
                             "study.code_dir, study.workers, study.timeout_s, study.checkpoint_store (repeatable)")
    parser.add_argument("--force", action="store_true",
                        help="continue even though the model's or loader's source file changed since the study ran")
    code_dir_argument(parser)


@command("run", "create or continue the study a config describes, until its budget is spent", _run_arguments,
         ("sweep run configs/quickstart.yaml --set data.source=idx --set data.path=../shared/data/fashion-mnist-sample",
          "sweep run configs/fashion_mnist.yaml --workers 2 --n-trials 60",
          "sweep run configs/fashion_mnist.yaml --storage postgresql+psycopg://sweep@db.example/sweeps"))
def _run(args: argparse.Namespace) -> int:
    from sweep.storage.database import resolve_storage_url

    config = load_run_config(args)
    url = resolve_storage_url(config.study.name, args.storage or config.study.storage)
    _quiet_optuna()
    import_keras_quietly()  # creating a study builds its model; continuing it trains
    from sweep.study.setup import open_study

    with storage_faults(url):
        study = open_study(config, url, force=args.force, n_trials=args.n_trials)
    return _drive(study, config, url, args)


@command("resume", "continue a study from the config stored in it (no config file needed)", _resume_arguments,
         ("sweep resume quickstart", "sweep resume fmnist-schedules --n-trials 80 --workers 2",
          "sweep resume fmnist-schedules --storage postgresql+psycopg://sweep@db.example/sweeps --set data.path=/data"))
def _resume(args: argparse.Namespace) -> int:
    from sweep.errors import ConfigError
    from sweep.study.setup import MUTABLE_FIELDS, reopen_study

    _quiet_optuna()
    for item in args.set:
        key = item.partition("=")[0].strip()
        if key not in MUTABLE_FIELDS - {"study.n_trials", "study.storage"}:
            raise ConfigError(f"--set {item!r}: resume can only change data.path, study.code_dir, study.workers, "
                              "study.timeout_s, study.checkpoint_store or train.steps_per_execution "
                              "(the rest is fixed by the study; use --n-trials for the budget)")
    from sweep.storage.database import resolve_storage_url

    url = resolve_storage_url(args.name, args.storage)
    overrides = list(args.set)
    for item in args.set:  # a code folder given on this command line is the invocation's choice
        key, _, value = item.partition("=")
        if key.strip() == "study.code_dir" and value.strip():
            trust_code_dir(value.strip())
    folder = trust_code_dir(args.code_dir)
    if folder is not None:
        overrides.append(f"study.code_dir={json.dumps(folder)}")
    import_keras_quietly()  # the stored config's model module may import Keras; the data is checked first
    with storage_faults(url):
        study, config = reopen_study(args.name, args.storage, n_trials=args.n_trials, overrides=overrides,
                                     force=args.force)
    return _drive(study, config, url, args)


def _quiet_optuna() -> None:
    from sweep.study.session import quiet_optuna

    quiet_optuna()


def _drive(study, config, url: str, args: argparse.Namespace) -> int:
    """Run the study's workers, then summarise and report."""
    from sweep.storage.database import mask_url
    from sweep.study.budget import budget

    workers = args.workers or config.study.workers
    status = budget(study)
    print(f"study {study.study_name} ({mask_url(url)}): {status.finished}/{status.total} trials finished; "
          f"{workers} worker{'s' * (workers > 1)}", flush=True)
    code = _run_workers(study, url, config, workers) if status.left else EXIT_OK
    from sweep.study.session import finish

    finish(study, config)
    _print_best(study)
    if code == EXIT_OK and not args.no_report:
        from sweep.report import write_report

        index = write_report(study, RESULTS_DIR / study.study_name, storage_url=url)
        print(f"report: {index}")
    return code


def _run_workers(study, url: str, config, workers: int) -> int:
    """Run ``workers`` workers until the budget is spent; each process is replaced after
    ``RECYCLE_AFTER_TRIALS`` trials, so leaked Keras memory never accumulates."""
    import time

    from sweep.study.budget import budget

    deadline = time.time() + config.study.timeout_s if config.study.timeout_s else None
    if workers == 1:
        # The first trials run in this process: no start-up cost for small studies.
        import_keras_quietly()
        from sweep.study.worker import run_worker

        reason = run_worker(study.study_name, url, config=config, max_trials=RECYCLE_AFTER_TRIALS, deadline=deadline)
        if reason != "max_trials":
            return EXIT_OK
    context = multiprocessing.get_context("spawn")  # fresh interpreters: TensorFlow does not survive fork
    level = logging.getLogger("sweep").level
    gpus = _gpu_count()

    def start(index: int):
        process = context.Process(
            target=_worker_process, name=f"sweep-worker-{index}",
            args=(study.study_name, url, config.to_dict(), index, level, gpus, deadline),
        )
        process.start()
        return process

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)  # `kill PID` of this process stops the workers too
    slots = {index: start(index) for index in range(workers)}
    codes: list[int] = []
    try:
        while slots:
            time.sleep(0.5)
            for index, process in list(slots.items()):
                if process.is_alive():
                    continue
                process.join()
                del slots[index]
                if process.exitcode == EXIT_RECYCLE and budget(study).left:
                    slots[index] = start(index)  # a fresh process for the next trials
                elif process.exitcode != EXIT_RECYCLE:
                    codes.append(process.exitcode)
    except KeyboardInterrupt:
        # Ctrl-C reaches the workers too (same process group); SIGTERM covers a kill of this
        # process alone. Each worker re-enqueues its trial and exits within seconds.
        for process in slots.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in slots.values():
            process.join()
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if any(code == EXIT_INTERRUPTED or (code or 0) < 0 for code in codes):
        return EXIT_INTERRUPTED
    return EXIT_OK if all(code == 0 for code in codes) else EXIT_RUNTIME


def _worker_process(name: str, url: str, config_dict: dict, index: int, level: int, gpus: int,
                    deadline: float | None) -> None:
    """A worker process: logging like the parent's, its GPU, then the worker loop."""
    if gpus > 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
    # JAX would otherwise reserve 75% of the GPU's memory in the first worker.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    from sweep.logs import quiet_tensorflow, setup_logging
    from sweep.config import config_from_dict
    from sweep.errors import SweepError

    quiet_tensorflow()
    setup_logging(level, prefix=f"w{index} ")
    _quiet_optuna()
    import_keras_quietly()
    from sweep.study.worker import run_worker

    try:
        reason = run_worker(name, url, worker_index=index, config=config_from_dict(config_dict),
                            max_trials=RECYCLE_AFTER_TRIALS, deadline=deadline)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except SweepError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(EXIT_RECYCLE if reason == "max_trials" else EXIT_OK)


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
    from sweep.study.budget import budget

    status = budget(study)
    try:
        best = study.best_trial
    except ValueError:
        print(f"{status.finished}/{status.total} trials finished; none completed")
        return
    print(f"{status.finished}/{status.total} trials finished; best {best.value:.4f} (trial {best.number}): "
          f"{best.params}")


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", nargs="?",
                        help="a study, or URL#NAME: show its best trial and running trials")
    _storage_argument(parser, "every studies/*.db; with NAME, sqlite:///studies/NAME.db")


@command("status", "list studies (trials by state, best value, budget left), or one study in detail",
         _status_arguments, ("sweep status", "sweep status quickstart",
                             "sweep status 'sqlite:///studies/quickstart.db#quickstart'",
                             "sweep status --storage postgresql+psycopg://sweep@db.example/sweeps"))
def _status(args: argparse.Namespace) -> int:
    from sweep.study.status import study_detail, study_table

    if args.name:
        print(study_detail(*study_spec(args.name, args.storage)))
    else:
        print(study_table(args.storage))
    return EXIT_OK
