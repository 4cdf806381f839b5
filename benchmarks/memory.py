"""A worker's memory after 10 and after N trials: one long-lived process against recycling.

Two ``sweep run`` studies of N tiny trials (default 100; ``--trials 300`` for the full
check of issue 6, about an hour on the shared 2-core machine) (the seed CNN, 1 epoch on 90 synthetic
images, random sampler, no pruning, no range test), one worker each, run side by side
(resident memory does not depend on speed, and side by side halves the wall time):

- ``no recycling``: ``SWEEP_RECYCLE_AFTER_TRIALS=1000``, every trial in one process;
- ``recycling every 100``: ``SWEEP_RECYCLE_AFTER_TRIALS=100``: a worker process is
  replaced every 100 trials; with one worker the first 100 run in the ``sweep run``
  process itself, which keeps their memory while its children train.

What recycling every N trials would give is read off the first arm too: the worker's
growth between 10 trials and N trials.

Every 0.5 s the benchmark reads the finished-trial count from each study's SQLite file
and the resident set (VmRSS in /proc/PID/status) of each ``sweep run`` process and its
descendants (/proc/PID/task/*/children). "Worker" is the process that trains: the
newest spawned worker while one lives, else the ``sweep run`` process. Requirement
(issue 6): the worker's RSS after 300 trials within 500 MB of its RSS after 10.

    python benchmarks/memory.py [--quick] [--trials 300]
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import env, loadavg, machine, machine_line, publish, rss_mb, sweep_cmd, write_config  # noqa: E402

NAME = "memory"
LIMIT_MB = 500
RECYCLE = 100  # SWEEP_RECYCLE_AFTER_TRIALS of the recycling arm (sweep's default is 1000)
ARMS = {"no recycling": "1000", f"recycling every {RECYCLE}": str(RECYCLE)}  # SWEEP_RECYCLE_AFTER_TRIALS
SAMPLE_S = 0.5


def descendants(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = [int(p) for p in children.read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *descendants(kid)]
    return found


def _is_spawned_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"spawn_main" in cmdline


def finished(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')").fetchone()
        return int(row[0])
    except sqlite3.Error:
        return 0


def sample(pid: int) -> dict:
    workers = [p for p in descendants(pid) if _is_spawned_worker(p)]
    everyone = [pid, *descendants(pid)]
    worker = max(workers) if workers else pid
    return {"worker_pid": worker, "worker_mb": rss_mb(worker), "main_mb": rss_mb(pid),
            "total_mb": sum(rss_mb(p) for p in everyone)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 trials, recycling every 10; leaves the results alone")
    parser.add_argument("--trials", type=int, default=300, help="trials per study (issue 6 asks about 300)")
    args = parser.parse_args(argv)
    trials = 30 if args.quick else args.trials
    marks = [10, 20, 30] if args.quick else [10, 25, 50, 75, 100, 150, 200, 250, 300]
    marks = [m for m in marks if m <= trials]
    start_load = loadavg()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="memory-") as tmp:
        work = Path(tmp)
        procs, dbs = {}, {}
        for i, (arm, recycle) in enumerate(ARMS.items()):
            name = f"memory-{i}"
            config = write_config(work / f"{name}.yaml", name, n_trials=trials, epochs=1, pruner="none",
                                  sampler="random", source="synthetic", path="null", limit=100)
            dbs[arm] = work / f"{name}.db"
            extra = {"SWEEP_RECYCLE_AFTER_TRIALS": "10" if args.quick and recycle != "1000" else recycle}
            procs[arm] = subprocess.Popen(sweep_cmd("run", config, "--storage", f"sqlite:///{dbs[arm]}", "--no-report"),
                                          cwd=work, env=env(**extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True)
        series = {arm: [] for arm in ARMS}
        at_mark = {arm: {} for arm in ARMS}
        while any(p.poll() is None for p in procs.values()):
            time.sleep(SAMPLE_S)
            for arm, proc in procs.items():
                if proc.poll() is not None:
                    continue
                count = finished(dbs[arm])
                point = {"t": round(time.time() - started, 1), "trials": count, **sample(proc.pid)}
                series[arm].append(point)
                for mark in marks:
                    if count >= mark and mark not in at_mark[arm]:
                        at_mark[arm][mark] = point
                        print(f"{arm}: {count} trials, worker {point['worker_mb']:.0f} MB, "
                              f"all processes {point['total_mb']:.0f} MB", flush=True)
        for arm, proc in procs.items():
            if proc.returncode != 0:
                raise RuntimeError(f"{arm}: sweep run exited {proc.returncode}:\n{proc.stderr.read()[-3000:]}")
    summary = {}
    for arm in ARMS:
        first, last = at_mark[arm][marks[0]], at_mark[arm][marks[-1]]
        peak = max(p["worker_mb"] for p in series[arm] if p["trials"] >= marks[0])
        summary[arm] = {"trials": marks[-1], "worker_mb_first": first["worker_mb"], "worker_mb_last": last["worker_mb"],
                        "growth_mb": last["worker_mb"] - first["worker_mb"], "peak_growth_mb": peak - first["worker_mb"],
                        "total_mb_last": last["total_mb"], "meets": peak - first["worker_mb"] <= LIMIT_MB}
    never = at_mark["no recycling"]
    # A worker recycled every N trials grows, before it is replaced, as one process does
    # from trial 10 to trial N.
    derived = {n: never[n]["worker_mb"] - never[marks[0]]["worker_mb"] for n in marks[1:]}
    payload = {"trials": trials, "marks": marks, "growth_if_recycled_every": derived, "limit_mb": LIMIT_MB, "seconds": round(time.time() - started),
               "at_mark": at_mark, "summary": summary, "series": {a: s[::4] for a, s in series.items()},
               "machine": machine(start_load)}
    publish(NAME, payload, _table, args.quick, summary)
    return 0


def _table(p: dict) -> str:
    marks, arms = p["marks"], list(p["summary"])
    lines = [
        "## Worker memory over many trials (`benchmarks/memory.py`)",
        "",
        f"Two `sweep run` studies of {p['trials']} tiny trials (seed CNN, 1 epoch on 90 synthetic images), one "
        "worker each, side by side: every trial in one process (`SWEEP_RECYCLE_AFTER_TRIALS=1000`) against "
        f"recycling every {RECYCLE} trials. Each worker reuses one compiled model for its "
        "trials (`sweep/model_cache.py`). Resident "
        "memory (VmRSS, MB) of the process that trains, after N finished trials; \"all\" adds the `sweep run` "
        "parent and its helpers. Wall time "
        f"{p['seconds']} s.",
        f"Command: `python benchmarks/memory.py`. {machine_line(p['machine'])}",
        "",
        "| trials | " + " | ".join(f"{a}: worker | {a}: all" for a in arms) + " |",
        "|---:|" + "---:|---:|" * len(arms),
    ]
    for mark in marks:
        cells = []
        for arm in arms:
            point = p["at_mark"][arm].get(str(mark)) or p["at_mark"][arm].get(mark)
            cells += [f"{point['worker_mb']:.0f}", f"{point['total_mb']:.0f}"] if point else ["-", "-"]
        lines.append(f"| {mark} | " + " | ".join(cells) + " |")
    lines += ["", f"| arm | trials | worker after {marks[0]} | after the last | growth | peak growth | within "
              f"{p['limit_mb']} MB |", "|---|---:|---:|---:|---:|---:|---|"]
    for arm, s in p["summary"].items():
        lines.append(f"| {arm} | {s['trials']} | {s['worker_mb_first']:.0f} | {s['worker_mb_last']:.0f} | "
                     f"{s['growth_mb']:+.0f} | "
                     f"{s['peak_growth_mb']:+.0f} | {'yes' if s['meets'] else 'no'} |")
    never = p["summary"]["no recycling"]
    slope = never["growth_mb"] / (never["trials"] - marks[0])
    lines += ["", f"One process grows by {slope:.2f} MB per trial: {slope * (300 - marks[0]):.0f} MB more after 300 "
              f"trials than after {marks[0]}. With one worker, `sweep run` itself runs the first {RECYCLE} trials and "
              "keeps their memory while its spawned workers train (\"all\")."]
    lines += ["", "A worker recycled every N trials grows, until it is replaced, as the single process did from "
              f"trial {marks[0]} to trial N: " + ", ".join(f"N = {n}: {mb:+.0f} MB" for n, mb in
                                                         p["growth_if_recycled_every"].items()) + "."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
