"""What the side-by-side benchmarks (overhead, time_to_target, pruning, workers, memory) share.

The machine is small (2 cores) and shared: every benchmark runs its arms interleaved
(ABAB...) inside one invocation, quotes medians, and records the load average it saw.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "fashion-mnist-sample"

# The seed CNN on the real sample; each benchmark overrides what it measures.
CONFIG_TEMPLATE = """\
study: {{name: {name}, n_trials: {n_trials}, seed: {seed}, sampler: {sampler}, pruner: {pruner}}}
data: {{source: {source}, path: {path}, limit: {limit}, validation_fraction: 0.1}}
model: {{filters: {filters}, dense_units: {dense_units}, dropout: 0.1}}
train: {{epochs: {epochs}, batch_size: {batch_size}, optimizer: adam}}
lr_finder: {{enabled: {lr_finder}}}
"""
DEFAULTS = dict(n_trials=10, seed=0, sampler="tpe", pruner="median", source="idx", path=json.dumps(str(SAMPLE)),
                limit="null", filters="[32]", dense_units=128, epochs=5, batch_size=64, lr_finder="false")


def write_config(file: Path, name: str, **fields: object) -> Path:
    values = dict(DEFAULTS, name=name, **fields)
    file.write_text(CONFIG_TEMPLATE.format(**values))
    return file


def env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this checkout first on the path, TF quiet."""
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                TF_CPP_MIN_LOG_LEVEL="3", **extra)


def timed(cmd: list[str], cwd: Path, **extra_env: str) -> float:
    """Wall seconds of ``cmd`` (process start included); raises with its stderr if it fails."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env(**extra_env), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return seconds


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweep", "-q", *map(str, args)]


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB (VmRSS; 0 once it is gone). /proc, not psutil."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine(started_load: list[float]) -> dict:
    return {"cpus": os.cpu_count(), "loadavg_start": started_load, "loadavg_end": loadavg(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def machine_line(info: dict) -> str:
    return (f"{info['date']}, {info['cpus']} CPUs shared with other jobs; load average (1, 5, 15 min) "
            f"{info['loadavg_start']} at the start, {info['loadavg_end']} at the end.")


def publish(name: str, payload: dict, table, quick: bool, summary: dict) -> None:
    """Write the JSON and the README section (a quick run only checks the harness: it
    leaves both alone), and print the summary."""
    from _readme import update_section, write_json

    if not quick:
        write_json(name, payload)
        update_section(name, table(payload))
    print(json.dumps(summary, indent=1))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
