"""What the LR range test suggests on the real sample, and what it costs.

For each seed and each ``num_steps``: one range test (valley, steep and minimum
suggestions; wall time including the model's build) and, side by side, two epochs of
normal training of the same CNN (``sweep.training.trainer.train``, constant LR 1e-3, wall time
including the build). Writes benchmarks/results/lr_finder_suggestions.json and the
table in benchmarks/README.md.

    python benchmarks/lr_finder_suggestions.py [--seeds 5] [--steps 300 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _readme import update_section, write_json  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist-sample"
NAME = "lr_finder_suggestions"
TARGET = (3e-4, 1e-2)  # the acceptance band for the default suggestion
TRAIN_EPOCHS = 2


def sample_config(data_path: Path, num_steps: int):
    from sweep.config import config_from_dict

    return config_from_dict({
        "data": {"source": "idx", "path": str(data_path)},
        "train": {"epochs": TRAIN_EPOCHS, "batch_size": 64, "optimizer": "adam"},
        "lr_finder": {"num_steps": num_steps},
    })


def measure(data_path: Path, seeds: int, steps: list[int]) -> list[dict]:
    import keras

    from sweep.training.data import load_dataset
    from sweep.search.lr_finder import run_range_test
    from sweep.training.params import TrialParams
    from sweep.training.trainer import train

    rows = []
    data = load_dataset(sample_config(data_path, steps[0]).data, 0)
    for seed in range(seeds):
        for num_steps in steps:
            config = sample_config(data_path, num_steps)
            keras.backend.clear_session()
            started = time.perf_counter()
            result = run_range_test(config, data, seed=seed)
            finder_s = time.perf_counter() - started
            keras.backend.clear_session()
            started = time.perf_counter()
            train(config, TrialParams(initial_lr=1e-3), data, seed=seed)
            train_s = time.perf_counter() - started
            rows.append({
                "seed": seed, "num_steps": num_steps, "steps_run": result.num_steps,
                "diverged_at": result.diverged_at, **result.suggestions,
                "finder_seconds": finder_s, "train_2_epochs_seconds": train_s,
                "cost_in_epochs": TRAIN_EPOCHS * finder_s / train_s,
            })
            print(f"seed {seed} steps {num_steps}: " + ", ".join(f"{m} {result.suggestions[m]:.2e}"
                  for m in ("valley", "steep", "minimum"))
                  + f"; {finder_s:.1f}s vs {train_s:.1f}s for {TRAIN_EPOCHS} epochs", flush=True)
    return rows


def table(rows: list[dict], steps: list[int], num_train: int) -> str:
    lines = [
        "## LR range test: suggestions and cost (`benchmarks/lr_finder_suggestions.py`)",
        "",
        f"Real sample ({num_train} training images), batch 64, Adam, the default CNN; start 1e-7, end 10, "
        "smoothing 0.98. Cost: the range test's wall time against 2 epochs of normal training "
        "(`sweep.training.trainer.train`), both including the model build, run side by side; medians over seeds.",
        "",
        "| num_steps | seed | valley | steep | minimum | steps run | range test s | 2 epochs s | cost (epochs) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in steps:
        group = [r for r in rows if r["num_steps"] == n]
        for r in group:
            lines.append(
                f"| {n} | {r['seed']} | {r['valley']:.2e} | {r['steep']:.2e} | {r['minimum']:.2e} | {r['steps_run']} "
                f"| {r['finder_seconds']:.1f} | {r['train_2_epochs_seconds']:.1f} | {r['cost_in_epochs']:.1f} |"
            )
        med = {k: statistics.median(r[k] for r in group) for k in
               ("valley", "steep", "minimum", "steps_run", "finder_seconds", "train_2_epochs_seconds", "cost_in_epochs")}
        lines.append(
            f"| **{n}** | median | {med['valley']:.2e} | {med['steep']:.2e} | {med['minimum']:.2e} | {med['steps_run']:.0f} "
            f"| {med['finder_seconds']:.1f} | {med['train_2_epochs_seconds']:.1f} | {med['cost_in_epochs']:.1f} |"
        )
    lines += ["", "Share of seeds whose suggestion lies in [3e-4, 1e-2]:", ""]
    lines += ["| num_steps | valley | steep | minimum |", "|---:|---:|---:|---:|"]
    for n in steps:
        group = [r for r in rows if r["num_steps"] == n]
        share = {m: sum(TARGET[0] <= r[m] <= TARGET[1] for r in group) for m in ("valley", "steep", "minimum")}
        lines.append(f"| {n} | " + " | ".join(f"{share[m]}/{len(group)}" for m in ("valley", "steep", "minimum")) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE, help="folder of Fashion-MNIST IDX files")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, nargs="+", default=[300, 100], help="num_steps values to compare")
    args = parser.parse_args(argv)
    rows = measure(args.data, args.seeds, args.steps)
    from sweep.training.data import load_dataset

    num_train = load_dataset(sample_config(args.data, args.steps[0]).data, 0).num_train
    markdown = table(rows, args.steps, num_train)
    path = write_json(NAME, {"seeds": args.seeds, "steps": args.steps, "num_train": num_train, "rows": rows})
    update_section(NAME, markdown)
    print(markdown)
    print(f"wrote {path} and {Path(__file__).parent / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
