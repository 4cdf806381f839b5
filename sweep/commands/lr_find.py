"""``sweep lr-find``: run the LR range test alone and show what it suggests."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sweep.commands import EXIT_OK, command, config_arguments, import_keras_quietly, load_run_config

RESULTS_DIR = Path("results")


def _lr_find_arguments(parser: argparse.ArgumentParser) -> None:
    config_arguments(parser)
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: study.seed, as a study uses)")


@command("lr-find", "run the LR range test: suggested initial LR, bounds and a plot", _lr_find_arguments,
         ("sweep lr-find configs/quickstart.yaml --set data.source=idx --set data.path=../shared/data/fashion-mnist-sample",
          "sweep lr-find configs/fashion_mnist.yaml --set lr_finder.num_steps=300 --seed 1"))
def _lr_find(args: argparse.Namespace) -> int:
    from sweep.training.data import load_dataset

    config = load_run_config(args)
    seed = config.study.seed if args.seed is None else args.seed
    import_keras_quietly()  # a data.loader module may import Keras
    from sweep.training.model import check_compile

    check_compile(config)
    data = load_dataset(config.data, config.study.seed, config.study.code_dir)
    finder = config.lr_finder
    print(
        f"LR range test: {finder.num_steps} steps of batch {config.train.batch_size} on {data.num_train} images, "
        f"LR {finder.start_lr:.0e} to {finder.end_lr:.0e}",
        flush=True,
    )

    from sweep.search.lr_finder import run_range_test
    from sweep.search.lr_finder_plot import save_lr_finder_png

    result = run_range_test(config, data, seed=seed).to_dict()
    out_dir = RESULTS_DIR / config.study.name
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "lr_finder.json"
    json_path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    png_path = save_lr_finder_png(result, out_dir / "lr_finder.png")

    stop = f"diverged at {result['diverged_at']:.3g}" if result["diverged_at"] else "did not diverge"
    print(f"ran {result['num_steps']} steps in {result['seconds']:.1f}s ({stop})")
    for name, value in result["suggestions"].items():
        marker = "  <- suggestion" if name == result["method"] else ""
        print(f"  {name:<8} {value:.3g}{marker}")
    print(f"suggested initial_lr {result['suggestion']:.3g} ({result['method']}); "
          f"bounds {result['lower']:.3g} to {result['upper']:.3g}")
    print(f"wrote {json_path} and {png_path}")
    return EXIT_OK
