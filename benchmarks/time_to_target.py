"""Time to target: wall seconds until a validation accuracy of at least the target is seen.

The target, per seed (the seed also picks the stratified validation split): the best
validation accuracy of a constant-LR grid (3e-4, 1e-3, 3e-3, 1e-2; Adam, batch 64,
5 epochs, the real sample) minus 0.5 points. The grid is computed once and stored in
the JSON (``--regrid`` recomputes it).

Three arms per seed, run one after the other in an order that rotates with the seed,
each a fresh process timed from its start (imports, data, range test included) to the
end of the first epoch whose val_accuracy reaches the target:

- ``sweep``: ``sweep run`` with its defaults (range test, prior, 3 seed trials, TPE,
  median pruning), batch 64, 5 epochs; the benchmark polls the study's SQLite file
  for reported epochs every 0.2 s and stops the run with SIGINT once one reaches it;
- ``optuna``: plain Optuna TPE (seeded, no pruning) with the seeds' training loop:
  tf.data, batch 32, initial_lr log-uniform in [1e-5, 1], the same five schedules,
  warmup and decay ranges, 5 epochs;
- ``kerastuner``: KerasTuner's BayesianOptimization on the same space and loop.

Every arm: the same CNN (``sweep.training.model``), the same split (``sweep.training.data``), schedules
from ``sweep.training.schedules``. Each run is capped (trials and seconds); a run that hits the
cap is "not reached" and counts as infinitely slow in the medians.

    python benchmarks/time_to_target.py [--quick] [--seeds 8] [--trials 30] [--cap-s 300]

Needs ``pip install "keras-tuner[bayesian]" tensorboard`` (benchmark only; not a sweep
dependency: BayesianOptimization needs scikit-learn, and every KerasTuner trial fails
without tensorboard).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import SAMPLE, env, loadavg, machine, machine_line, median, publish, sweep_cmd, write_config  # noqa: E402
from _readme import RESULTS, update_section  # noqa: E402

NAME = "time_to_target"
GRID = (3e-4, 1e-3, 3e-3, 1e-2)
EPOCHS = 5
MARGIN = 0.005
ARMS = ("sweep", "optuna", "kerastuner")
BASELINE_BATCH = 32
POLL_S = 0.2


# --- the target ------------------------------------------------------------------------------


def grid(seeds: list[int], epochs: int) -> dict[str, dict]:
    """Best val_accuracy of each constant LR, per seed (trained in this process)."""
    from sweep.commands import import_keras_quietly

    import_keras_quietly()
    from sweep.config import config_from_dict
    from sweep.training.data import load_dataset
    from sweep.training.params import TrialParams
    from sweep.training.trainer import train

    out = {}
    for seed in seeds:
        cfg = config_from_dict({"study": {"name": "grid", "seed": seed},
                                "data": {"source": "idx", "path": str(SAMPLE)},
                                "train": {"epochs": epochs, "batch_size": 64}})
        data = load_dataset(cfg.data, seed)
        best = {}
        for lr in GRID:
            result = train(cfg, TrialParams(initial_lr=lr, schedule="constant", warmup_fraction=0.0), data, seed=0)
            best[f"{lr:g}"] = result.value()
            print(f"grid seed {seed} lr {lr:g}: {best[f'{lr:g}']:.4f}", flush=True)
        out[str(seed)] = {"best_by_lr": best, "target": round(max(best.values()) - MARGIN, 6)}
    return out


# --- the arms -------------------------------------------------------------------------------


def run_sweep(work: Path, seed: int, target: float, trials: int, cap_s: float) -> dict:
    name = f"ttt-s{seed}"
    config = write_config(work / f"{name}.yaml", name, n_trials=trials, seed=seed, epochs=EPOCHS, lr_finder="true",
                          pruner="median", sampler="tpe")
    db = work / f"{name}.db"
    started = time.time()
    proc = subprocess.Popen(sweep_cmd("run", config, "--storage", f"sqlite:///{db}", "--no-report"), cwd=work,
                            env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    reached = None
    while proc.poll() is None and time.time() - started < cap_s:
        time.sleep(POLL_S)
        best = _best_reported(db)
        if best is not None and best >= target:
            reached = time.time()
            break
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    if reached is None and proc.returncode not in (0, 130, -2):
        raise RuntimeError(f"sweep run exited {proc.returncode}:\n{stderr[-3000:]}")
    return {"seconds": None if reached is None else reached - started, "trials": _trials_started(db),
            "range_test_s": _range_test_seconds(db)}


def _query(db: Path, sql: str):
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchone()
    except sqlite3.Error:
        return None  # being created or locked: ask again at the next poll


def _best_reported(db: Path) -> float | None:
    row = _query(db, "SELECT MAX(intermediate_value) FROM trial_intermediate_values")
    return None if row is None or row[0] is None else float(row[0])


def _trials_started(db: Path) -> int | None:
    row = _query(db, "SELECT COUNT(*) FROM trials WHERE state != 'WAITING'")
    return None if row is None else int(row[0])


def _range_test_seconds(db: Path) -> float | None:
    row = _query(db, "SELECT value_json FROM study_user_attributes WHERE key = 'sweep:lr_finder'")
    return None if row is None else json.loads(row[0]).get("seconds")


def run_child(arm: str, seed: int, target: float, trials: int, cap_s: float) -> dict:
    started = time.time()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", arm, "--seed", str(seed), "--target",
           str(target), "--trials", str(trials)]
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=cap_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    lines = [line.split() for line in stdout.splitlines() if line.startswith("REACHED")]
    if not lines and proc.returncode not in (0, -9):
        raise RuntimeError(f"{arm} exited {proc.returncode}:\n{stderr[-3000:]}")
    if not lines:
        return {"seconds": None, "trials": None}
    return {"seconds": float(lines[0][1]) - started, "trials": int(lines[0][2]) + 1}


# --- children: the baselines ----------------------------------------------------------------


def child(arm: str, seed: int, target: float, trials: int) -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    from sweep.config import SCHEDULES, DataConfig, ModelConfig
    from sweep.training.data import load_dataset
    from sweep.training.model import build_model, compile_model
    from sweep.training.params import TrialParams
    from sweep.training.schedules import build_schedule
    from sweep.training.trainer import total_steps

    data = load_dataset(DataConfig(source="idx", path=str(SAMPLE)), seed)
    train_ds = (tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
                .shuffle(data.num_train, seed=seed).batch(BASELINE_BATCH).prefetch(tf.data.AUTOTUNE))
    val_ds = tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val)).batch(BASELINE_BATCH)
    steps = total_steps(data.num_train, BASELINE_BATCH, EPOCHS)
    count = {"trial": -1}

    class StopAtTarget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (logs or {}).get("val_accuracy", 0.0) >= target:
                print(f"REACHED {time.time()} {count['trial']}", flush=True)
                os._exit(0)

    def model_for(params: dict) -> keras.Model:
        count["trial"] += 1
        keras.backend.clear_session()
        return compile_model(build_model(ModelConfig()), build_schedule(TrialParams(**params), steps))

    if arm == "optuna":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)

        def objective(trial):
            schedule = trial.suggest_categorical("schedule", list(SCHEDULES))
            params = {"schedule": schedule, "initial_lr": trial.suggest_float("initial_lr", 1e-5, 1.0, log=True),
                      "warmup_fraction": trial.suggest_float("warmup_fraction", 0.0, 0.3)}
            if schedule in ("exponential", "step"):
                params["decay_rate"] = trial.suggest_float("decay_rate", 0.5, 0.99)
                params["decay_steps"] = trial.suggest_int("decay_steps", 50, 5000, log=True)
            history = model_for(params).fit(train_ds, validation_data=val_ds, epochs=EPOCHS, verbose=0,
                                            callbacks=[StopAtTarget()])
            return max(history.history["val_accuracy"])

        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(objective, n_trials=trials)
    else:
        import keras_tuner as kt

        def build(hp):
            params = {"schedule": hp.Choice("schedule", list(SCHEDULES)),
                      "initial_lr": hp.Float("initial_lr", 1e-5, 1.0, sampling="log"),
                      "warmup_fraction": hp.Float("warmup_fraction", 0.0, 0.3)}
            # Sampled for every trial (KerasTuner's Gaussian process has no conditional space);
            # only the exponential and step schedules use them.
            rate, decay_steps = hp.Float("decay_rate", 0.5, 0.99), hp.Int("decay_steps", 50, 5000, sampling="log")
            if params["schedule"] in ("exponential", "step"):
                params.update(decay_rate=rate, decay_steps=decay_steps)
            return model_for(params)

        with tempfile.TemporaryDirectory(prefix="kt-") as tmp:
            tuner = kt.BayesianOptimization(build, objective="val_accuracy", max_trials=trials, seed=seed,
                                            directory=tmp, project_name="ttt", overwrite=True)
            tuner.search(train_ds, validation_data=val_ds, epochs=EPOCHS, verbose=0, callbacks=[StopAtTarget()])


# --- driver ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 trials, 60 s cap; leaves the results alone")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--cap-s", type=float, default=300.0)
    parser.add_argument("--regrid", action="store_true", help="recompute the constant-LR grid")
    parser.add_argument("--table-only", action="store_true", help="rewrite the README section from the JSON")
    parser.add_argument("--child", choices=("optuna", "kerastuner"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--target", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.seed, args.target, args.trials)
        return 0
    if args.table_only:
        update_section(NAME, _table(json.loads((RESULTS / f"{NAME}.json").read_text())))
        return 0
    missing_packages = [m for m in ("keras_tuner", "sklearn", "tensorboard") if importlib.util.find_spec(m) is None]
    if missing_packages:
        parser.error(f"missing {', '.join(missing_packages)}: pip install \"keras-tuner[bayesian]\" tensorboard")
    seeds, trials, cap_s = ([0], 3, 60.0) if args.quick else (list(range(args.seeds)), args.trials, args.cap_s)
    start_load = loadavg()
    stored = RESULTS / f"{NAME}.json"
    targets = json.loads(stored.read_text()).get("grid", {}) if stored.exists() and not args.regrid else {}
    missing = [s for s in seeds if str(s) not in targets]
    if missing:
        targets.update(grid(missing, 1 if args.quick else EPOCHS))
    runs = []
    with tempfile.TemporaryDirectory(prefix="ttt-") as tmp:
        work = Path(tmp)
        for seed in seeds:
            target = targets[str(seed)]["target"]
            order = ARMS[seed % 3:] + ARMS[:seed % 3]
            for arm in order:
                load = loadavg()
                if arm == "sweep":
                    run = run_sweep(work, seed, target, trials, cap_s)
                else:
                    run = run_child(arm, seed, target, trials, cap_s)
                runs.append({"arm": arm, "seed": seed, "target": target, "load": load, **run})
                shown = "not reached" if run["seconds"] is None else f"{run['seconds']:.1f}s"
                print(f"seed {seed} {arm}: {shown} (trials {run['trials']}, target {target:.4f}, load {load[0]})",
                      flush=True)
    summary = _summary(runs)
    payload = {"epochs": EPOCHS, "margin": MARGIN, "grid_lrs": list(GRID), "trials_cap": trials, "cap_s": cap_s,
               "baseline_batch": BASELINE_BATCH, "grid": targets, "runs": runs, "median": summary,
               "machine": machine(start_load)}
    publish(NAME, payload, _table, args.quick, summary)
    return 0


def _seconds(run: dict) -> float:
    return math.inf if run["seconds"] is None else run["seconds"]


def _summary(runs: list[dict]) -> dict:
    out = {}
    for arm in ARMS:
        times = [_seconds(r) for r in runs if r["arm"] == arm]
        out[arm] = {"median_s": median(times), "reached": sum(math.isfinite(t) for t in times), "runs": len(times)}
    for arm in ARMS[1:]:
        ratios = [_seconds(a) / _seconds(b) for a in runs if a["arm"] == arm
                  for b in runs if b["arm"] == "sweep" and b["seed"] == a["seed"]]
        out[arm]["median_ratio_to_sweep"] = median(ratios)
    return {k: {kk: (None if isinstance(vv, float) and not math.isfinite(vv) else vv) for kk, vv in v.items()}
            for k, v in out.items()}


def _fmt(value: float | None, digits: int = 1) -> str:
    return "not reached" if value is None else f"{value:.{digits}f}"


def _table(p: dict) -> str:
    lines = [
        "## Time to target (`benchmarks/time_to_target.py`)",
        "",
        f"Real sample, {p['epochs']} epochs per trial. Target per seed: the best val_accuracy of a constant-LR grid "
        f"({', '.join(f'{lr:g}' for lr in p['grid_lrs'])}; batch 64) minus {p['margin'] * 100:g} points. Wall seconds "
        "from process start (imports, data, range test included) to the first epoch at or above the target. "
        "`sweep`: `sweep run` defaults (range test, prior, seed trials, TPE, median pruning), batch 64. "
        f"`optuna`: plain TPE, no pruning, tf.data, batch {p['baseline_batch']}, LR log-uniform 1e-5..1, same "
        "schedules. `kerastuner`: BayesianOptimization, same space and loop. Caps: "
        f"{p['trials_cap']} trials or {p['cap_s']:.0f} s per run (\"not reached\").",
        f"Command: `python benchmarks/time_to_target.py`. {machine_line(p['machine'])}",
        "",
        "| seed | target | grid (LR: best val_accuracy) | arm | seconds | trials started | range test s |",
        "|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in sorted(p["runs"], key=lambda r: (r["seed"], ARMS.index(r["arm"]))):
        g = p["grid"][str(r["seed"])]["best_by_lr"]
        grid_text = ", ".join(f"{k}: {v:.3f}" for k, v in g.items())
        lines.append(f"| {r['seed']} | {r['target']:.4f} | {grid_text} | {r['arm']} | {_fmt(r['seconds'])} | "
                     f"{r['trials'] if r['trials'] is not None else '-'} | "
                     f"{'-' if r.get('range_test_s') is None else format(r['range_test_s'], '.1f')} |")
    lines += ["", "| arm | reached | median s | its time / sweep's time, same seed: median (per seed) |",
              "|---|---:|---:|---|"]
    for arm in ARMS:
        m = p["median"][arm]
        per_seed = [f"{_seconds(a) / _seconds(b):.2f}" for a in p["runs"] if a["arm"] == arm
                    for b in p["runs"] if b["arm"] == "sweep" and b["seed"] == a["seed"]]
        ratio = "1" if arm == "sweep" else f"{_fmt(m.get('median_ratio_to_sweep'), 2)} ({', '.join(per_seed)})"
        lines.append(f"| {arm} | {m['reached']}/{m['runs']} | {_fmt(m['median_s'])} | {ratio} |")
    seeds = sorted({r["seed"] for r in p["runs"]})
    fastest = [min((r for r in p["runs"] if r["seed"] == seed), key=_seconds)["arm"] for seed in seeds]
    range_test = median([r["range_test_s"] for r in p["runs"] if r.get("range_test_s") is not None])
    lines += ["", "Fastest per seed: " + ", ".join(f"seed {s}: {a}" for s, a in zip(seeds, fastest))
              + f". The range test took a median {range_test:.1f} s of each sweep run.", "", HISTORY]
    return "\n".join(lines)


# Kept in the section across reruns (hand-written; a rerun cannot reproduce these).
HISTORY = """\
Earlier runs, not side by side with the table above:
- Before the worker reused one compiled model (commit 957af74), same command, 8 seeds, 2026-11-29 11:50
  UTC: sweep median 18.9 s (7/8 reached), optuna 1.08 times sweep's time, kerastuner 0.79.
- Before the defaults moved to a 100-step range test and cosine seed trials, 3 seeds under a load of 4 to
  15, 2026-11-23: the range test took 16 s of each sweep run; optuna 1.07, kerastuner 0.91.
- Seeds 1, 3, 5 and 7 rerun with `study.pruner: none` for sweep (2026-11-29 12:40 UTC): 44.4 s, 16.1 s,
  56.6 s and not reached, against 49.6 s, 14.3 s, 46.2 s and not reached with the median pruner: pruning
  is not why seeds 5 and 7 are slow.

Why sweep is not the fastest on every seed: the target is 0.5 points (1.5 images of 300) below the best
of a 4-LR grid, so on some seeds one lucky constant-LR run sets it (seed 1: 0.910 at 1e-3 where the other
LRs give at most 0.883; seed 7: 0.870 at 3e-3) and reaching it is a draw of validation noise: plain
Optuna's first random trial hit it on seeds 6 and 7 (7 s), sweep's 30 trials never did on seed 7. Where
the target is a plateau rather than a spike (seeds 0, 2, 3, 4, 6), sweep reaches it in 1 to 3 trials.
Sweep also pays about 1.3 s of range test and a study database before its first trial."""


if __name__ == "__main__":
    sys.exit(main())
