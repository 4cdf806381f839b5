"""Search quality, measured fairly: sweep against plain Optuna and KerasTuner on fresh seeds.

Protocol (issue 13). Per seed (100 and up; none was used to choose a default): the real
sample's first 2,500 images are searched on, split 80/20 (stratified, by the seed) into
training and validation; its last 500 images are a test split no arm sees while it
searches. Every arm (``_search_arms.py``) runs in a fresh process on the same arrays, CNN,
batch size (64), epochs per trial and search space; its wall time counts from its start
(imports, data, range test). Arms of one seed run back to back, in an order that rotates
with the seed. Afterwards, each configuration that was an arm's pick at some moment is
retrained on train + validation (fixed seed, same epochs) and scored on the test split:
the *anytime curve* of the arm. From the curves: the final pick's test score, paired
differences against each peer (bootstrap 95 % interval over seeds, win counts), the score
at an equal wall time, and the time to reach the peers' median final test score.

    python benchmarks/search_quality.py                       # the full table: 5 arms x 8 seeds
    python benchmarks/search_quality.py --arms sweep,optuna-tpe --seeds 100,101 --trials 16 --epochs 8
    python benchmarks/search_quality.py --quick               # 2 trials x 1 epoch, one seed; results untouched
    python benchmarks/search_quality.py --suite optimizers --seeds 300,301   # issue 21's optimizer arms

``--suite optimizers`` runs the optimizer arms (``adam``, ``adam-const``, ``sgd``,
``sgd-const``, ``sf-adamw``: ``_search_arms.py``) into search_quality_optimizers.json and
its own README section (``_search_table.optimizer_table``): does searching a schedule gain
more with SGD than with Adam, does schedule-free AdamW at the range test's LR match a
searched schedule, and which schedule families win.

Results are appended to benchmarks/results/search_quality.json after every arm (a stopped
run loses nothing; a rerun skips what is stored) and the README section is redrawn from it.
Needs ``pip install -e ".[bench]"`` for the KerasTuner arms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _search_stats as st  # noqa: E402
from _harness import SAMPLE, loadavg, machine  # noqa: E402
from _readme import RESULTS, update_section  # noqa: E402
from _search_arms import ARM_TRAIN, CHILD_ARMS, SEARCH_IMAGES, SWEEP_ARMS, data_config, run_arm  # noqa: E402
from _search_table import optimizer_table, table  # noqa: E402

NAME = "search_quality"
DEFAULT_ARMS = ("sweep", "optuna-tpe", "optuna-hyperband", "kt-bayes", "kt-hyperband")
OPTIMIZER_SUITE = ("adam", "adam-const", "sgd", "sgd-const", "sf-adamw")
DEFAULT_SEEDS = tuple(range(100, 108))
TRIALS, EPOCHS = 16, 8
RETRAIN_SEED = 0
TOP_K, RESCORE_SEEDS = 3, 2  # the "pick that survives the noise" lever (derived arm sweep-top3)


class Retrainer:
    """Retrains a configuration on train + validation and scores it on the test split (cached:
    the same configuration on the same seed's split always gets the same number)."""

    def __init__(self, seed: int, epochs: int):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import numpy as np

        from sweep.config import config_from_dict
        from sweep.training.data import Dataset, load_dataset, read_idx
        from sweep.training.model_cache import ModelCache

        search = load_dataset(data_config(), seed)
        images = read_idx(SAMPLE / "train-images-idx3-ubyte.gz", 2051)[SEARCH_IMAGES:]
        labels = read_idx(SAMPLE / "train-labels-idx1-ubyte.gz", 2049)[SEARCH_IMAGES:]
        x_test = (images.astype(np.float32) / 255.0).reshape((-1, 28, 28, 1))
        self.search = search
        self.final = Dataset(np.concatenate([search.x_train, search.x_val]), np.concatenate([search.y_train, search.y_val]),
                             x_test, labels)
        self.epochs = epochs
        self.config = config_from_dict({"train": {"epochs": epochs, "batch_size": 64}})
        self.models = ModelCache()
        self.cache: dict[str, float] = {}

    def test_score(self, params: dict, train_section: dict | None = None) -> float:
        """``params`` retrained with ``train_section``'s optimizer (default Adam) and scored on test."""
        from sweep.config import config_from_dict
        from sweep.training.params import TrialParams
        from sweep.training.trainer import train

        key = json.dumps(train_section or {}, sort_keys=True) + st.params_key(params)
        config = self.config if not train_section else config_from_dict(
            {"train": {**train_section, "epochs": self.epochs, "batch_size": 64}})
        if key not in self.cache:
            result = train(config, TrialParams(**params), self.final, seed=RETRAIN_SEED, models=self.models)
            # The final model's score: the last epoch on the test split, which chose nothing.
            self.cache[key] = float(result.history[-1].val_accuracy) if not result.diverged else 0.0
        return self.cache[key]

    def rescore(self, params: dict, seed: int, objective: str) -> float:
        """The search's own score (validation split) of ``params`` trained with another seed."""
        from sweep.training.params import TrialParams
        from sweep.training.trainer import train

        result = train(self.config, TrialParams(**params), self.search, seed=seed, models=self.models)
        return result.value("val_accuracy", objective)


def evaluate(run: dict, retrainer: Retrainer) -> dict:
    picks = st.pick_changes(run["trials"])
    train_section = ARM_TRAIN.get(run["arm"])
    curve = [(p["end_s"], retrainer.test_score(p["params"], train_section)) for p in picks]
    return {**run, "picks": [{"end_s": p["end_s"], "value": p["value"], "params": p["params"], "test": s}
                             for p, (_, s) in zip(picks, curve)],
            "curve": curve, "final_test": curve[-1][1] if curve else None}


def top_k_arm(run: dict, retrainer: Retrainer, objective: str) -> dict:
    """Derived arm: the top ``TOP_K`` trials of ``run`` retrained with ``RESCORE_SEEDS`` more seeds on
    the search split; the best mean validation score is the pick. Its cost is added to the wall time."""
    started = time.perf_counter()
    done = sorted((t for t in run["trials"] if t["value"] is not None), key=lambda t: -t["value"])[:TOP_K]
    means = []
    for t in done:
        scores = [t["value"]] + [retrainer.rescore(t["params"], 10_000 + i, objective) for i in range(RESCORE_SEEDS)]
        means.append(sum(scores) / len(scores))
    extra = time.perf_counter() - started
    best = done[max(range(len(done)), key=means.__getitem__)]
    curve = [pt for pt in run["curve"]] + [(run["wall_s"] + extra, retrainer.test_score(best["params"]))]
    return {**{k: v for k, v in run.items() if k not in ("curve", "final_test", "picks")}, "arm": run["arm"] + "-top3",
            "wall_s": run["wall_s"] + extra, "rescore_s": extra, "rescored": [round(m, 4) for m in means],
            "curve": curve, "final_test": curve[-1][1], "picks": run["picks"] + [{**best, "test": curve[-1][1]}]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                        help=f"comma-separated, of {', '.join([*SWEEP_ARMS, *CHILD_ARMS])}")
    parser.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)), help="comma-separated, 100 and up")
    parser.add_argument("--trials", type=int, default=TRIALS)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--top-k", action="store_true", help="also score the derived arm <sweep arm>-top3")
    parser.add_argument("--quick", action="store_true", help="seed 100, 2 trials x 1 epoch; results untouched")
    parser.add_argument("--table-only", action="store_true", help="redraw the README section from the JSON")
    parser.add_argument("--suite", choices=("default", "optimizers"), default="default",
                        help="optimizers: issue 21's arms, into their own JSON and README section")
    parser.add_argument("--deadline", type=float, default=None, help="unix time: start no seed after it")
    args = parser.parse_args(argv)
    if args.suite == "optimizers" and args.arms == ",".join(DEFAULT_ARMS):
        args.arms = ",".join(OPTIMIZER_SUITE)
    name, draw = (NAME, table) if args.suite == "default" else (f"{NAME}_optimizers", optimizer_table)
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in SWEEP_ARMS and a not in CHILD_ARMS]
    if unknown:
        parser.error(f"unknown arm(s) {unknown}; expected some of {[*SWEEP_ARMS, *CHILD_ARMS]}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if any(s < 100 for s in seeds):
        parser.error("seeds below 100 chose the defaults; the protocol uses fresh seeds, 100 and up")
    trials, epochs = (2, 1) if args.quick else (args.trials, args.epochs)
    seeds = seeds[:1] if args.quick else seeds
    path = (Path(tempfile.mkdtemp(prefix="sq-")) if args.quick else RESULTS) / f"{name}.json"
    payload = json.loads(path.read_text()) if path.exists() else {"runs": []}
    if not args.table_only:
        with tempfile.TemporaryDirectory(prefix="sq-") as tmp:
            for seed in seeds:
                if args.deadline is not None and time.time() > args.deadline:
                    print(f"deadline passed: seed {seed} and later not started", flush=True)
                    break
                run_seed(payload, path, arms, seed, trials, epochs, args.top_k, Path(tmp))
    if not args.quick:
        update_section(name, draw(payload, trials, epochs))
    print(draw(payload, trials, epochs) if args.quick else f"wrote {path} and the README section")
    return 0


def run_seed(payload: dict, path: Path, arms: list[str], seed: int, trials: int, epochs: int, top_k: bool,
             work: Path) -> None:
    stored = {(r["arm"], r["seed"], r["trials_budget"], r["epochs_per_trial"]) for r in payload["runs"]}
    order = arms[seed % len(arms):] + arms[:seed % len(arms)]
    retrainer = None
    for arm in order:
        if (arm, seed, trials, epochs) in stored:
            continue
        load = loadavg()
        run = run_arm(arm, seed, trials, epochs, work)
        retrainer = retrainer or Retrainer(seed, epochs)
        started = time.perf_counter()
        run = evaluate({"arm": arm, "seed": seed, "trials_budget": trials, "epochs_per_trial": epochs, **run}, retrainer)
        runs = [run]
        if top_k and arm in SWEEP_ARMS:
            runs.append(top_k_arm(run, retrainer, SWEEP_ARMS[arm].get("study", {}).get("objective", "best")))
        for r in runs:
            r.update(machine=machine(load), retrain_s=round(time.perf_counter() - started, 1))
            payload["runs"].append(r)
            print(f"seed {seed} {r['arm']}: wall {r['wall_s']:.0f}s, {len(r['trials'])} trials, "
                  f"{len(r['picks'])} picks, final test {r['final_test']}", flush=True)
        payload["protocol"] = protocol()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")


def protocol() -> dict:
    return {"search_images": SEARCH_IMAGES, "test_images": 500, "validation_fraction": 0.2, "batch_size": 64,
            "retrain_seed": RETRAIN_SEED, "top_k": TOP_K, "rescore_seeds": RESCORE_SEEDS,
            "note": "arms of one seed run back to back in one invocation; other processes may have shared the "
                    "2 cores between invocations (each run records its load average)"}


if __name__ == "__main__":
    sys.exit(main())
