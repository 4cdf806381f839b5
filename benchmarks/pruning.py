"""Pruning: epochs (and wall time) saved by the median pruner against best value lost.

Per seed, the same study (real sample, TPE, 5 epochs, no range test) is run twice with
``sweep run``: ``study.pruner=median`` (sweep's default: from the 2nd epoch, after 5
finished trials) and ``study.pruner=none``. The arms alternate which goes first.
Epochs trained are the trials' ``epochs_run``; the best value is the study's best
complete trial (what ``sweep report`` would hand over).

    python benchmarks/pruning.py [--quick] [--seeds 3] [--trials 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import loadavg, machine, machine_line, median, publish, sweep_cmd, timed, write_config  # noqa: E402

NAME = "pruning"
ARMS = ("median", "none")


def run_arm(work: Path, pruner: str, seed: int, trials: int, epochs: int) -> dict:
    import optuna

    name = f"prune-{pruner}-s{seed}"
    config = write_config(work / f"{name}.yaml", name, n_trials=trials, seed=seed, epochs=epochs, pruner=pruner)
    storage = f"sqlite:///{work / name}.db"
    seconds = timed(sweep_cmd("run", config, "--storage", storage, "--no-report"), cwd=work)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=storage)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    return {
        "seconds": seconds,
        "epochs": sum(int(t.user_attrs.get("epochs_run", 0)) for t in finished),
        "pruned": sum(t.state.name == "PRUNED" for t in finished),
        "diverged": sum(t.user_attrs.get("prune_reason") == "diverged" for t in finished),
        "best": study.best_value,
        "best_params": study.best_params,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 7 trials, 3 epochs; leaves the results alone")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    seeds, trials, epochs = ([0], 7, 3) if args.quick else (list(range(args.seeds)), args.trials, args.epochs)
    start_load = loadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="pruning-") as tmp:
        for seed in seeds:
            for pruner in (ARMS if seed % 2 == 0 else ARMS[::-1]):
                load = loadavg()
                run = {"pruner": pruner, "seed": seed, "load": load, **run_arm(Path(tmp), pruner, seed, trials, epochs)}
                runs.append(run)
                print(f"seed {seed} {pruner}: {run['epochs']} epochs, {run['seconds']:.0f}s, best {run['best']:.4f}, "
                      f"pruned {run['pruned']} (load {load[0]})", flush=True)
    pairs = []
    for seed in seeds:
        m, n = (next(r for r in runs if r["seed"] == seed and r["pruner"] == a) for a in ARMS)
        pairs.append({"seed": seed, "epochs_saved": 1 - m["epochs"] / n["epochs"], "time_ratio": m["seconds"] / n["seconds"],
                      "best_lost": n["best"] - m["best"]})
    summary = {k: median([p[k] for p in pairs]) for k in ("epochs_saved", "time_ratio", "best_lost")}
    payload = {"trials": trials, "epochs": epochs, "runs": runs, "pairs": pairs, "median": summary,
               "machine": machine(start_load)}
    publish(NAME, payload, _table, args.quick, summary)
    return 0


def _table(p: dict) -> str:
    lines = [
        "## Pruning (`benchmarks/pruning.py`)",
        "",
        f"`sweep run`, real sample, {p['trials']} trials of {p['epochs']} epochs, TPE, no range test, "
        "`study.pruner` median (from epoch 2, after 5 finished trials) against none, same seed.",
        f"Command: `python benchmarks/pruning.py`. {machine_line(p['machine'])}",
        "",
        "| seed | pruner | epochs trained | wall s | pruned (diverged) | best val_accuracy |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in sorted(p["runs"], key=lambda r: (r["seed"], ARMS.index(r["pruner"]))):
        lines.append(f"| {r['seed']} | {r['pruner']} | {r['epochs']} | {r['seconds']:.0f} | "
                     f"{r['pruned']} ({r['diverged']}) | {r['best']:.4f} |")
    lines += ["", "| seed | epochs saved | wall time median/none | best lost (none - median) |", "|---:|---:|---:|---:|"]
    for q in p["pairs"]:
        lines.append(f"| {q['seed']} | {q['epochs_saved']:.0%} | {q['time_ratio']:.2f} | {q['best_lost']:+.4f} |")
    m = p["median"]
    lines.append(f"| **median** | **{m['epochs_saved']:.0%}** | **{m['time_ratio']:.2f}** | **{m['best_lost']:+.4f}** |")
    lines += ["", "Wall times swing with the shared machine's load (the two arms run one after the other); "
              "epochs trained is the figure to trust."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
