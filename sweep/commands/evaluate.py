"""``sweep evaluate``: retrain the best trials on train + validation with several seeds, score
them on the test split, and say whether the validation ranking holds there."""

from __future__ import annotations

import argparse

from sweep.commands import (EXIT_OK, code_dir_argument, command, import_keras_quietly, storage_faults, storage_url,
                            study_spec, trust_code_dir)
from sweep.errors import ConfigError


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="study name, or URL#NAME for a study in another storage")
    parser.add_argument("--top", metavar="K", type=int, default=1, help="how many of the best trials (default 1)")
    parser.add_argument("--repeats", metavar="R", type=int, default=1,
                        help="retrainings of each with different seeds, for a mean and an sd (default 1, at most 20)")
    parser.add_argument("--workers", metavar="N", type=int, default=None,
                        help="retrainings run in parallel processes (default: one per core, at most K x R)")
    parser.add_argument("--storage", metavar="URL", type=storage_url, default=None,
                        help="storage URL (default: sqlite:///studies/NAME.db)")
    code_dir_argument(parser)


@command("evaluate", "retrain the best trials on train+validation with R seeds and score them on the test split",
         _evaluate_arguments, ("sweep evaluate quickstart", "sweep evaluate quickstart --top 2 --repeats 3",
                               "sweep evaluate 'sqlite:///studies/quickstart.db#quickstart' --top 3 --repeats 5"))
def _evaluate(args: argparse.Namespace) -> int:
    from sweep.storage.database import load_study, resolve_storage_url
    from sweep.study.evaluate import MAX_REPEATS

    if args.top < 1:
        raise ConfigError(f"--top must be at least 1, got {args.top}")
    if not 1 <= args.repeats <= MAX_REPEATS:
        raise ConfigError(f"--repeats must be from 1 to {MAX_REPEATS}, got {args.repeats}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    name, url = study_spec(args.name, args.storage)
    code_dir = trust_code_dir(args.code_dir)
    study = load_study(name, url)

    import_keras_quietly()
    from sweep.study.evaluate import evaluate_study, study_config, top_trials

    trials = top_trials(study, args.top)
    config = study_config(study, code_dir)
    if len(trials) < args.top:
        print(f"the study has only {len(trials)} complete trial(s); evaluating those")
    print(f"retraining the top {len(trials)} trial(s) of {name} {args.repeats} time(s) each for "
          f"{config.train.epochs} epochs on training + validation images, then scoring on the test split", flush=True)

    from sweep.config import metric_label

    label = metric_label(config.study.metric, "test")

    def show(number: int, run) -> None:
        print(f"trial #{number} seed {run.seed}: {label} {run.test_score:.4f} ({run.seconds:.1f}s)", flush=True)

    with storage_faults(resolve_storage_url(name, url)):  # results are stored in the study
        results = evaluate_study(study, args.top, args.repeats, workers=args.workers, on_run=show,
                                 code_dir=code_dir)
    validation = {t.number: t.value for t in trials}
    for result in results:
        spread = f" ± {result.sd:.4f} (sd)" if len(result.runs) > 1 else ""
        print(f"trial #{result.trial}: {label} {result.mean:.4f}{spread} over {len(result.runs)} run(s); "
              f"validation {validation[result.trial]:.4f}")
    best = (max if config.study.direction == "maximize" else min)(results, key=lambda r: r.mean)
    print(f"stored in the study; 'sweep report {name}' shows them")
    print(f"best mean {label} {best.mean:.4f} (trial #{best.trial})")
    return EXIT_OK
