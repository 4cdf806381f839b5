"""How long `sweep report` takes on a 1,000-trial study (goal: under 15 s).

Builds a study of 1,000 finished trials (plus a failed one, its retry and surplus
trials) in a temporary SQLite file with ``add_trials``, then times:
- ``sweep report NAME --storage URL --out DIR`` as a subprocess (what a user waits for,
  Python start-up and imports included), and
- the stages in-process: reading the trials, computing the data, drawing, writing.
Prints JSON, writes benchmarks/results/report_speed.json and updates its section of
benchmarks/README.md. Medians of --repeats runs.

    python benchmarks/report_speed.py [--trials 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _readme import update_section, write_json  # noqa: E402
from sweep.report.data.collect import collect  # noqa: E402
from sweep.report.figures.draw import draw_all  # noqa: E402
from sweep.report.data.source import open_study_for_reading  # noqa: E402
from sweep.report.write import write_report  # noqa: E402
from tests.fake_study import build_study  # noqa: E402



def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        build_s, _ = timed(lambda: build_study(args.trials, storage=url, name="bench", epochs=10))
        out = Path(tmp) / "out"
        cli, load, compute, draw, total = [], [], [], [], []
        for _ in range(args.repeats):
            seconds, proc = timed(lambda: subprocess.run(
                [sys.executable, "-m", "sweep", "report", "bench", "--storage", url, "--out", str(out)],
                capture_output=True, text=True, cwd=ROOT))
            if proc.returncode != 0:
                raise SystemExit(proc.stderr)
            cli.append(seconds)
            t_load, (study, _) = timed(lambda: open_study_for_reading("bench", url))
            t_trials, _ = timed(lambda: study.get_trials(deepcopy=False))
            t_compute, data = timed(lambda: collect(study, url))
            t_draw, _ = timed(lambda: draw_all(data))
            t_total, _ = timed(lambda: write_report(study, out, storage_url=url))
            load.append(t_load + t_trials)
            compute.append(t_compute)
            draw.append(t_draw)
            total.append(t_total)
        html_kb = (out / "index.html").stat().st_size / 1024

    result = {
        "trials": args.trials, "repeats": args.repeats, "build_study_s": round(build_s, 2),
        "cli_report_s": round(statistics.median(cli), 2), "cli_report_max_s": round(max(cli), 2),
        "read_trials_s": round(statistics.median(load), 2), "collect_s": round(statistics.median(compute), 2),
        "draw_s": round(statistics.median(draw), 2), "write_report_s": round(statistics.median(total), 2),
        "index_html_kb": round(html_kb), "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    write_json("report_speed", result)
    update_section("report_speed", markdown(result))


def markdown(r: dict) -> str:
    return "\n".join([
        "## Report speed (`benchmarks/report_speed.py`)",
        "",
        f"A {r['trials']}-trial study in SQLite (10 epochs per trial, histories stored), built with "
        f"`add_trials`; medians of {r['repeats']} runs on the shared 2-core machine. Goal: `sweep report` "
        "under 15 s.",
        "",
        "| stage | seconds |",
        "|---|---:|",
        f"| `sweep report` as a command (start-up and imports included; slowest run {r['cli_report_max_s']}) "
        f"| {r['cli_report_s']} |",
        f"| read the trials from SQLite | {r['read_trials_s']} |",
        f"| compute the report data from the cached trials (PED-ANOVA included) | {r['collect_s']} |",
        f"| draw the 8 figures | {r['draw_s']} |",
        f"| `write_report` in-process, everything | {r['write_report_s']} |",
        "",
        f"index.html: {r['index_html_kb']} KB.",
    ])


if __name__ == "__main__":
    main()
