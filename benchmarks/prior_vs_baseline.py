"""Does the LR finder's prior help? Best validation accuracy after 5, 10 and 20 trials.

For each seed, one study per arm is run with ``sweep run`` in a subprocess (its own
temporary SQLite storage and working folder, ``--no-report``), on the real sample,
5 epochs per trial, TPE and the median pruner in both arms. The arms:

- ``prior``: the defaults (range test, narrowed range, 3 seed trials, prior-weighted
  startup);
- ``baseline``: ``lr_finder.enabled=false``, plain TPE over the config's full range.

More arms can be given as ``NAME:KEY=VALUE,KEY=VALUE`` (``--arm``). A trial's score is
its objective (best epoch's val_accuracy) when complete, its best reported
val_accuracy when pruned; "best after N" is the best score among trials 0..N-1 (the
prior arm's seed trials count against its budget; its range test's time does not,
it is reported separately). Writes benchmarks/results/prior_vs_baseline.json and the
table in benchmarks/README.md.

    python benchmarks/prior_vs_baseline.py [--seeds 5] [--trials 20] [--arm NAME:K=V,...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _readme import RESULTS, update_section, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "fashion-mnist-sample"
NAME = "prior_vs_baseline"
CHECKPOINTS = (5, 10, 20)
NEAR_BEST = 0.02  # a trial this close to the seed's best counts as a good draw
DEFAULT_ARMS = {"prior": ["lr_finder.enabled=true"], "baseline": ["lr_finder.enabled=false"]}

CONFIG_TEMPLATE = """\
study: {{name: pvb, seed: 0, sampler: tpe, pruner: median, metric: val_accuracy, objective: best}}
data: {{source: idx, path: {data}, validation_fraction: 0.1}}
model: {{filters: [32], dense_units: 128, dropout: 0.1}}
train: {{epochs: 5, batch_size: 64, optimizer: adam}}
"""


def parse_arm(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition(":")
    if not name or not overrides:
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE[,KEY=VALUE...], got {text!r}")
    return name, overrides.split(",")


def run_arm(workdir: Path, config: Path, arm: str, overrides: list[str], seed: int, trials: int) -> dict:
    """One ``sweep run`` in a subprocess; returns the trials' scores in trial order."""
    import optuna

    name = f"pvb-{arm}-s{seed}"
    storage = f"sqlite:///{workdir / (name + '.db')}"
    cmd = [sys.executable, "-m", "sweep", "-q", "run", str(config), "--storage", storage,
           "--n-trials", str(trials), "--no-report", "--set", f"study.name={name}", "--set", f"study.seed={seed}"]
    for item in overrides:
        cmd += ["--set", item]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="3")
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=storage)
    finished = sorted((t for t in study.trials if t.state.is_finished() and t.state.name in ("COMPLETE", "PRUNED")),
                      key=lambda t: t.number)
    scores = [trial_score(t) for t in finished]
    from sweep.storage.records import study_attrs

    records = study_attrs(study)
    lr_finder = records.get("sweep:lr_finder") or {}
    prior = records.get("sweep:prior") or {}
    return {
        "arm": arm, "seed": seed, "seconds": seconds, "scores": scores,
        "params": [t.params for t in finished],
        "pruned": sum(t.state.name == "PRUNED" for t in finished),
        "suggestion": prior.get("suggestion"), "narrowed_range": prior.get("narrowed_range"),
        "range_test_seconds": lr_finder.get("seconds"),
    }


def trial_score(trial) -> float:
    if trial.state.name == "COMPLETE" and trial.value is not None:
        return float(trial.value)
    values = [v for v in trial.intermediate_values.values() if math.isfinite(v)]
    return max(values) if values else math.nan


def best_after(scores: list[float], n: int) -> float:
    finite = [s for s in scores[:n] if math.isfinite(s)]
    return max(finite) if finite else math.nan


def summarize(runs: list[dict], arms: list[str], checkpoints: list[int]) -> dict:
    summary = {}
    for arm in arms:
        arm_runs = [r for r in runs if r["arm"] == arm]
        summary[arm] = {
            n: [best_after(r["scores"], n) for r in sorted(arm_runs, key=lambda r: r["seed"])] for n in checkpoints
        }
    return summary


def table(runs: list[dict], arms: list[str], checkpoints: list[int], seeds: int) -> str:
    summary = summarize(runs, arms, checkpoints)
    base = arms[-1] if "baseline" not in arms else "baseline"
    lines = [
        "## Prior vs baseline (`benchmarks/prior_vs_baseline.py`)",
        "",
        f"Real sample (2,700 training / 300 validation images), 5 epochs per trial, TPE + median pruner, "
        f"{seeds} seeds (study.seed = seed). Best validation accuracy among the first N trials "
        "(pruned trials count with their best reported epoch); mean ± std and median over seeds; "
        f"\"wins\": seeds where the arm beats `{base}` (ties count half); \"paired diff\": mean over seeds of "
        f"(arm - `{base}`) on the same seed (the seed also draws the validation split, so seeds differ in "
        f"difficulty); \"near-best\": share of the first N trials scoring within {NEAR_BEST} of the best "
        "score any arm reached on that seed.",
        "",
        "| arm | N | mean ± std | median | min | wins vs " + base + " | paired diff | near-best |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    seed_best = {seed: max(best_after(r["scores"], len(r["scores"])) for r in runs if r["seed"] == seed)
                 for seed in {r["seed"] for r in runs}}
    for arm in arms:
        arm_runs = sorted((r for r in runs if r["arm"] == arm), key=lambda r: r["seed"])
        for n in checkpoints:
            values = summary[arm][n]
            finite = [v for v in values if math.isfinite(v)]
            std = statistics.stdev(finite) if len(finite) > 1 else 0.0
            wins = diff = ""
            if arm != base:
                wins = _wins(values, summary[base][n])
                diff = f"{statistics.mean(a - b for a, b in zip(values, summary[base][n])):+.4f}"
            near = [s >= seed_best[r["seed"]] - NEAR_BEST for r in arm_runs for s in r["scores"][:n]]
            lines.append(f"| {arm} | {n} | {statistics.mean(finite):.4f} ± {std:.4f} | "
                         f"{statistics.median(finite):.4f} | {min(finite):.4f} | {wins} | {diff} | "
                         f"{sum(near) / max(len(near), 1):.0%} |")
    lines += ["", "| arm | seed | suggestion | narrowed range | range test s | run s | pruned | "
              + " | ".join(f"best@{n}" for n in checkpoints) + " |",
              "|---|---:|---:|---|---:|---:|---:|" + "---:|" * len(checkpoints)]
    for r in sorted(runs, key=lambda r: (arms.index(r["arm"]), r["seed"])):
        rng = "-" if not r["narrowed_range"] else f"[{r['narrowed_range'][0]:.2g}, {r['narrowed_range'][1]:.2g}]"
        sug = "-" if r["suggestion"] is None else f"{r['suggestion']:.2e}"
        rt = "-" if r["range_test_seconds"] is None else f"{r['range_test_seconds']:.1f}"
        lines.append(f"| {r['arm']} | {r['seed']} | {sug} | {rng} | {rt} | {r['seconds']:.0f} | {r['pruned']} | "
                     + " | ".join(f"{best_after(r['scores'], n):.4f}" for n in checkpoints) + " |")
    return "\n".join(lines)


def _wins(values: list[float], baseline: list[float]) -> str:
    score = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(values, baseline))
    return f"{score:g}/{len(values)}"


def previous_runs(name: str, arms: dict[str, list[str]], trials: int) -> list[dict]:
    """Runs stored by an earlier invocation, for the arms whose overrides are unchanged."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return []
    stored = json.loads(path.read_text())
    if stored.get("trials") != trials:
        raise SystemExit(f"{path}: holds runs of {stored.get('trials')} trials, not {trials}; drop --resume")
    same = {arm for arm, overrides in stored.get("arms", {}).items() if arms.get(arm) == overrides}
    return [r for r in stored["runs"] if r["arm"] in same]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE, help="folder of Fashion-MNIST IDX files")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=max(CHECKPOINTS))
    parser.add_argument("--arm", type=parse_arm, action="append", default=[],
                        help="extra arm NAME:KEY=VALUE[,KEY=VALUE] (repeatable), run besides prior and baseline")
    parser.add_argument("--only", nargs="+", default=None, help="run only these arms")
    parser.add_argument("--name", default=NAME, help="name of the JSON file and README section")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the JSON file and run only the missing (arm, seed) pairs")
    args = parser.parse_args(argv)

    arms = dict(DEFAULT_ARMS, **dict(args.arm))
    if args.only:
        arms = {k: v for k, v in arms.items() if k in args.only}
    checkpoints = [n for n in CHECKPOINTS if n <= args.trials]
    runs = previous_runs(args.name, arms, args.trials) if args.resume else []
    done = {(r["arm"], r["seed"]) for r in runs}
    with tempfile.TemporaryDirectory(prefix="pvb-") as tmp:
        workdir = Path(tmp)
        config = workdir / "config.yaml"
        config.write_text(CONFIG_TEMPLATE.format(data=json.dumps(str(args.data.resolve()))))
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for arm, overrides in arms.items():
                if (arm, seed) in done:
                    continue
                run = run_arm(workdir, config, arm, overrides, seed, args.trials)
                runs.append(run)
                print(f"seed {seed} {arm}: best@{checkpoints} = "
                      f"{[round(best_after(run['scores'], n), 4) for n in checkpoints]} "
                      f"(suggestion {run['suggestion']}, {run['seconds']:.0f}s)", flush=True)
    runs = [r for r in runs if r["arm"] in arms]
    arm_names = list(arms)
    seeds = len({r["seed"] for r in runs})
    markdown = table(runs, arm_names, checkpoints, seeds)
    path = write_json(args.name, {"arms": arms, "seeds": seeds, "trials": args.trials, "runs": runs})
    update_section(args.name, markdown)
    print(markdown)
    print(f"wrote {path} and {Path(__file__).parent / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
