"""``sweep train``: one configuration, no study."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweep.commands import EXIT_OK, EXIT_RUNTIME, command, config_arguments, import_keras_quietly, load_run_config


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    config_arguments(parser)
    parser.add_argument(
        "--params",
        metavar="JSON_OR_FILE",
        help='trial parameters as JSON, e.g. \'{"initial_lr": 0.001, "schedule": "cosine", '
        '"warmup_fraction": 0.1}\', or a JSON file or a best_config.yaml '
        "(default: the params: of CONFIG when it is a report's best_config.yaml); without initial_lr, "
        "the LR range test's suggestion is the peak (as fastai's fit_one_cycle after lr_find)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: study.seed)")


def _params_of(config_path: str) -> str:
    from sweep.config import PARAMS_KEY, parse_yaml
    from sweep.errors import ConfigError

    raw = parse_yaml(Path(config_path).read_text(encoding="utf-8"), config_path)
    if not (isinstance(raw, dict) and PARAMS_KEY in raw):
        raise ConfigError(f"{config_path}: no params: section; pass --params JSON_OR_FILE "
                          "(or use a report's best_config.yaml, which has one)")
    return config_path


@command("train", "train one configuration, no study (reproduce a trial)", _train_arguments,
         ("sweep train configs/quickstart.yaml --params '{\"initial_lr\": 3e-3, \"schedule\": \"cosine\"}'",
          "sweep train results/quickstart/best_config.yaml --params results/quickstart/best_config.yaml"))
def _train(args: argparse.Namespace) -> int:
    from sweep.training.params import params_from_dict, read_params

    config = load_run_config(args)
    raw, source = read_params(args.params if args.params is not None else _params_of(args.config))
    find_lr = isinstance(raw, dict) and "initial_lr" not in raw and config.lr_finder.enabled
    # Refuse bad params before loading anything (a placeholder stands for the range test's LR).
    params = params_from_dict({**raw, "initial_lr": 1e-3} if find_lr else raw, source)
    seed = config.study.seed if args.seed is None else args.seed

    from sweep.training.data import load_dataset

    import_keras_quietly()  # a data.loader or model.builder module may import Keras
    from sweep.training.model import check_compile

    check_compile(config)  # a misspelt optimizer argument, loss or metric: one line, before the data loads
    data = load_dataset(config.data, config.study.seed, config.study.code_dir)
    if find_lr:
        from sweep.search.lr_finder import run_range_test

        found = run_range_test(config, data, seed=seed)
        print(f"no initial_lr given: the LR range test suggests {found.suggestion:.3g} ({found.method}), "
              "used as the schedule's peak", flush=True)
        params = params_from_dict({**raw, "initial_lr": float(found.suggestion)}, source)
    print(f"training {params.to_dict()} on {data.num_train} images, validating on {len(data.y_val)}", flush=True)

    from sweep.training.model import model_name
    from sweep.training.trainer import train

    epochs = config.train.epochs

    metric = config.study.metric

    def show(entry) -> None:
        scores = "".join(f"  {name} {value:.4f}" for name, value in entry.val_metrics.items())
        print(f"epoch {entry.epoch:>3}/{epochs}  loss {entry.loss:.4f}  val_loss {entry.val_loss:.4f}{scores}  "
              f"lr {entry.lr:.3g}  ({entry.seconds:.1f}s)", flush=True)

    result = train(config, params, data, seed=seed, on_epoch=show)
    best = result.value(metric, "best", config.study.direction)
    if result.diverged:
        print(f"training diverged at epoch {len(result.history)} (non-finite loss); try a lower initial_lr",
              file=sys.stderr)
    best_epoch = next((e.epoch for e in result.history if e.value(metric) == best), None)
    print(f"best {metric} {best:.4f} (epoch {best_epoch}) in {result.seconds:.1f}s; "
          f"model {model_name(config)} with {result.model_parameters:,} parameters")
    return EXIT_RUNTIME if result.diverged else EXIT_OK


