"""How often the range test's suggestion rules are fooled by the curve's first steps.

On seed 105 of search_quality.py the steep rule suggested start_lr (1e-7) itself: the
bias-corrected average of the first few batches fell faster than anywhere later, and the
prior then had nothing of the search range left. Since then the rules skip the first
tenth of the curve, as fastai's ``lr_find`` does. This measures both versions on the
same curves, on fresh seeds (200 and up, used for nothing else): per seed, one range test
of sweep's defaults (100 steps) on the search split of search_quality.py (2,500 images,
80/20, split by the seed), and every rule applied to the whole curve and to the curve
after its first tenth. "Degenerate": a suggestion below 1e-5, the low end of sweep's
default initial_lr range (the prior keeps nothing of that range).

    python benchmarks/range_test_start.py [--seeds 40]      # about 1.5 s a seed on 2 cores
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import loadavg, machine, machine_line  # noqa: E402
from _readme import update_section, write_json  # noqa: E402
from _search_arms import data_config  # noqa: E402

NAME = "range_test_start"
FIRST_SEED = 200
RANGE_LOW = 1e-5  # sweep's default search.initial_lr.low


def measure(seeds: int) -> list[dict]:
    from sweep.config import config_from_dict
    from sweep.search.lr_finder import run_range_test
    from sweep.search.lr_rules import METHODS, SUGGESTERS
    from sweep.training.data import load_dataset

    rows = []
    for seed in range(FIRST_SEED, FIRST_SEED + seeds):
        config = config_from_dict({"study": {"seed": seed}, "data": data_config().model_dump(mode="json"),
                                   "train": {"batch_size": 64}})
        result = run_range_test(config, load_dataset(config.data, seed), seed=seed)
        usable = len(result.lrs) - (1 if result.diverged_at is not None else 0)
        lrs, curve = result.lrs[:usable], result.smoothed[:usable]
        whole = {m: SUGGESTERS[m](lrs, curve) for m in METHODS}
        rows.append({"seed": seed, "whole_curve": whole, "skip_first_tenth": result.suggestions,
                     "steps": result.num_steps, "seconds": result.seconds})
        print(f"seed {seed}: whole {whole['steep']:.2e}, skipping {result.suggestions['steep']:.2e} (steep)",
              flush=True)
    return rows


def table(rows: list[dict], info: dict) -> str:
    from sweep.search.lr_rules import METHODS

    lines = [
        "## Range-test rules and the curve's first steps (`benchmarks/range_test_start.py`)",
        "",
        f"{len(rows)} fresh seeds ({rows[0]['seed']}-{rows[-1]['seed']}), one range test each (100 steps, batch 64) "
        "on search_quality.py's search split; each rule applied to the whole smoothed curve and to the curve "
        f"after its first tenth (fastai's trim, sweep's rule since 2026-11-30). Degenerate: below {RANGE_LOW:g}. "
        + machine_line(info),
        "",
        "| rule | degenerate, whole curve | degenerate, first tenth skipped | same suggestion | "
        "median suggestion (skipped) |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in METHODS:
        old = [r["whole_curve"][m] for r in rows]
        new = [r["skip_first_tenth"][m] for r in rows]
        same = sum(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(old, new))
        lines.append(f"| {m} | {sum(v < RANGE_LOW for v in old)}/{len(rows)} | {sum(v < RANGE_LOW for v in new)}/"
                     f"{len(rows)} | {same}/{len(rows)} | {statistics.median(new):.2e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40, help="how many fresh seeds, from 200 (default 40)")
    args = parser.parse_args(argv)
    started = loadavg()
    rows = measure(args.seeds)
    info = machine(started)
    write_json(NAME, {"rows": rows, "machine": info})
    update_section(NAME, table(rows, info))
    print(table(rows, info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
