"""Trials per hour against the number of worker processes, on this 2-core machine.

A fixed small trial (the real sample's first 1,000 images, the seed CNN, batch 64,
2 epochs, random sampler, no pruning, no range test) run by ``sweep run --workers N``
for N = 1, 2, 4, and N = 2 with TensorFlow limited to one intra-op and one inter-op
thread per worker (``TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1``: two workers
with TF's default of one thread per core each ask for twice the cores there are).
Arms rotate within each round. Two rates: over the whole command (process start, the
workers' TensorFlow imports included), and steady state (trials finished between the
first trial's start and the last one's end).

    python benchmarks/workers.py [--quick] [--rounds 2] [--trials 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import loadavg, machine, machine_line, median, publish, sweep_cmd, timed, write_config  # noqa: E402

NAME = "workers"
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
ARMS = {"1": (1, {}), "2": (2, {}), "4": (4, {}), "2, 1 TF thread each": (2, ONE_THREAD)}


def run_arm(work: Path, arm: str, rnd: int, trials: int, epochs: int) -> dict:
    import optuna

    workers, extra_env = ARMS[arm]
    name = f"workers-{workers}{'-t1' if extra_env else ''}-r{rnd}"
    config = write_config(work / f"{name}.yaml", name, n_trials=trials, epochs=epochs, pruner="none",
                          sampler="random", limit=1000, seed=rnd)
    storage = f"sqlite:///{work / name}.db"
    seconds = timed(sweep_cmd("run", config, "--storage", storage, "--no-report", "--workers", workers), cwd=work,
                    **extra_env)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    done = [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.state.name == "COMPLETE"]
    span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return {"seconds": seconds, "complete": len(done), "per_hour": len(done) / seconds * 3600,
            "steady_per_hour": len(done) / span * 3600}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 4 trials, 1 epoch; leaves the results alone")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    rounds, trials, epochs = (1, 4, 1) if args.quick else (args.rounds, args.trials, args.epochs)
    start_load = loadavg()
    names = list(ARMS)
    runs = []
    with tempfile.TemporaryDirectory(prefix="workers-") as tmp:
        for rnd in range(rounds):
            for arm in names[rnd % len(names):] + names[:rnd % len(names)]:
                load = loadavg()
                run = {"arm": arm, "round": rnd, "load": load, **run_arm(Path(tmp), arm, rnd, trials, epochs)}
                runs.append(run)
                print(f"round {rnd} workers {arm}: {run['seconds']:.0f}s, {run['per_hour']:.0f}/h, steady "
                      f"{run['steady_per_hour']:.0f}/h (load {load[0]})", flush=True)
    summary = {}
    for arm in names:
        mine = [r for r in runs if r["arm"] == arm]
        base = {r["round"]: r for r in runs if r["arm"] == "1"}
        summary[arm] = {
            "per_hour": median([r["per_hour"] for r in mine]),
            "steady_per_hour": median([r["steady_per_hour"] for r in mine]),
            "speedup": median([r["per_hour"] / base[r["round"]]["per_hour"] for r in mine]),
            "steady_speedup": median([r["steady_per_hour"] / base[r["round"]]["steady_per_hour"] for r in mine]),
        }
    payload = {"trials": trials, "epochs": epochs, "limit": 1000, "runs": runs, "median": summary,
               "machine": machine(start_load)}
    publish(NAME, payload, _table, args.quick, summary)
    return 0


def _table(p: dict) -> str:
    lines = [
        "## Trials per hour against workers (`benchmarks/workers.py`)",
        "",
        f"`sweep run --workers N`, {p['trials']} trials of {p['epochs']} epochs on the real sample's first "
        f"{p['limit']} images (seed CNN, batch 64, random sampler, no pruning, no range test); arms rotate in each "
        "round; speed-up against 1 worker in the same round, median over rounds. \"whole run\" counts the "
        "command's wall time (workers' start-up included), \"steady\" the span from the first trial's start "
        "to the last trial's end.",
        f"Command: `python benchmarks/workers.py`. {machine_line(p['machine'])}",
        "",
        "| workers | trials/h, whole run | speed-up | trials/h, steady | speed-up |",
        "|---|---:|---:|---:|---:|",
    ]
    for arm, m in p["median"].items():
        lines.append(f"| {arm} | {m['per_hour']:.0f} | {m['speedup']:.2f} | {m['steady_per_hour']:.0f} | "
                     f"{m['steady_speedup']:.2f} |")
    one_thread = [(a, b) for a in p["runs"] if a["arm"] == "2, 1 TF thread each"
                  for b in p["runs"] if b["arm"] == "2" and b["round"] == a["round"]]
    lines += ["", "One TF thread per worker against TF's default, 2 workers, per round (whole run; steady): "
              + "; ".join(f"{a['per_hour'] / b['per_hour']:.2f}; {a['steady_per_hour'] / b['steady_per_hour']:.2f}"
                          for a, b in one_thread) + "."]
    lines += ["", "| round | workers | wall s | trials/h | steady trials/h | load (1 min) |", "|---:|---|---:|---:|---:|---:|"]
    for r in p["runs"]:
        lines.append(f"| {r['round']} | {r['arm']} | {r['seconds']:.0f} | {r['per_hour']:.0f} | "
                     f"{r['steady_per_hour']:.0f} | {r['load'][0]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
