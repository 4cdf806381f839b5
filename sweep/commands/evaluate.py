"""``sweep evaluate``: retrain the best trials on train + validation, score them on the test split."""

from __future__ import annotations

import argparse

from sweep.commands import EXIT_OK, command, import_keras_quietly, storage_faults, storage_url, study_spec
from sweep.errors import ConfigError


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="study name, or URL#NAME for a study in another storage")
    parser.add_argument("--top", metavar="K", type=int, default=1, help="how many of the best trials (default 1)")
    parser.add_argument("--storage", metavar="URL", type=storage_url, default=None,
                        help="storage URL (default: sqlite:///studies/NAME.db)")


@command("evaluate", "retrain the best trials on train+validation and score them on the test split",
         _evaluate_arguments, ("sweep evaluate quickstart", "sweep evaluate quickstart --top 3",
                               "sweep evaluate 'sqlite:///studies/quickstart.db#quickstart' --top 2"))
def _evaluate(args: argparse.Namespace) -> int:
    from sweep.storage.database import load_study

    if args.top < 1:
        raise ConfigError(f"--top must be at least 1, got {args.top}")
    name, url = study_spec(args.name, args.storage)
    study = load_study(name, url)

    import_keras_quietly()
    from sweep.study.evaluate import evaluate_study, study_config, top_trials

    trials = top_trials(study, args.top)
    config = study_config(study)
    if len(trials) < args.top:
        print(f"the study has only {len(trials)} complete trial(s); evaluating those")
    print(f"retraining the top {len(trials)} trial(s) of {name} for {config.train.epochs} epochs each "
          "on training + validation images, then scoring on the test split", flush=True)

    def show(result) -> None:
        params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.params.items())
        print(f"trial #{result.trial} ({params}): test accuracy {result.test_accuracy:.4f}, "
              f"test loss {result.test_loss:.4f} ({result.seconds:.1f}s)", flush=True)

    from sweep.storage.database import resolve_storage_url

    with storage_faults(resolve_storage_url(name, url)):  # results are stored in the study
        results = evaluate_study(study, args.top, on_result=show)
    best = max(results, key=lambda r: r.test_accuracy)
    print(f"stored in the study; 'sweep report {name}' shows them")
    print(f"best test accuracy {best.test_accuracy:.4f} (trial #{best.trial})")
    return EXIT_OK
