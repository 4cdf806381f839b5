"""The README section of benchmarks/search_quality.py, drawn from its JSON (no training)."""

from __future__ import annotations

import math
import statistics

import _search_stats as st

ANYTIME_GRID_S = (10, 15, 20, 30, 45, 60, 90)
BASE = "sweep"  # the defaults; the other sweep arms are levers measured against it
SWEEP_PREFIX = "sweep"


def _runs(payload: dict, trials: int, epochs: int) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    for r in payload["runs"]:
        if r["trials_budget"] == trials and r["epochs_per_trial"] == epochs and r["final_test"] is not None:
            out.setdefault(r["arm"], {})[r["seed"]] = r
    return out


def _target(by_arm: dict[str, dict[int, dict]], seed: int) -> float | None:
    """The peers' median final test score on ``seed`` (peers: the arms that are not sweep's)."""
    scores = [runs[seed]["final_test"] for arm, runs in by_arm.items() if not arm.startswith(SWEEP_PREFIX)
              and seed in runs]
    return statistics.median(scores) if scores else None


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def _diff(p: dict) -> str:
    return f"{100 * p['mean']:+.2f} [{100 * p['low']:+.2f}, {100 * p['high']:+.2f}]"


def _pair_row(by_arm: dict, reach: dict, arm: str, other: str) -> str:
    a, b = by_arm[arm], by_arm[other]
    common = sorted(set(a) & set(b))
    final = st.paired([a[s]["final_test"] for s in common], [b[s]["final_test"] for s in common])
    held = [(st.score_at(a[s]["curve"], t), st.score_at(b[s]["curve"], t))
            for s, t in ((s, min(a[s]["wall_s"], b[s]["wall_s"])) for s in common)]
    held = [(x, y) for x, y in held if x is not None and y is not None]
    equal = st.paired([x for x, _ in held], [y for _, y in held]) if held else None
    ratio = _median_time_ratio(a, b, reach[arm], reach[other], common)
    ratio_text = "-" if ratio is None else "not reached" if not math.isfinite(ratio) else f"{ratio:.2f}"
    equal_text = f"{_diff(equal)} | {equal['wins']:g}/{equal['n']}" if equal else "- | -"
    return (f"| {arm} | {other} | {len(common)} | {_diff(final)} | {final['wins']:g}/{final['n']} | {equal_text} | "
            f"{ratio_text} |")


def _median_time_ratio(a: dict, b: dict, reach_a: dict, reach_b: dict, seeds: list[int]) -> float | None:
    """Median over seeds of (a's time / b's time) to the target. A seed where only ``a``
    reached it counts at the bound ``a``'s time / ``b``'s whole wall time (``b``'s own time
    is longer, so the ratio is at most that); leaving such seeds out, as a first version did,
    dropped exactly the seeds where the peer failed. Only ``b`` reached: infinite. Neither: left out."""
    ratios = []
    for s in seeds:
        t_a, t_b = reach_a.get(s, math.inf), reach_b.get(s, math.inf)
        if math.isfinite(t_b) and t_b > 0:
            ratios.append(t_a / t_b)
        elif math.isfinite(t_a):
            ratios.append(t_a / b[s]["wall_s"])
    return statistics.median(ratios) if ratios else None


def table(payload: dict, trials: int, epochs: int) -> str:
    by_arm = _runs(payload, trials, epochs)
    arms = sorted(by_arm, key=lambda a: (not a.startswith(SWEEP_PREFIX), a))
    seeds = sorted({s for runs in by_arm.values() for s in runs})
    lines = [
        "## Search quality on fresh seeds (`benchmarks/search_quality.py`)",
        "",
        f"Protocol: {trials} trials x {epochs} epochs per arm, batch 64, sweep's default search space; real sample: "
        "the first 2,500 images searched (80/20 train/validation, stratified by the seed), the last 500 a test "
        "split no arm sees while searching. Each configuration an arm picked (best value so far) is retrained on "
        "train + validation (seed 0, same epochs) and scored on the test split; wall time counts from the arm's "
        "process start. One test score has a standard error of about 1.5 points (500 images at 0.87). "
        "Arms of one seed ran back to back; other helpers' jobs may have shared the 2 cores between seeds "
        "(load averages in the JSON).",
        f"Seeds: {', '.join(map(str, seeds)) or 'none yet'}.",
        "",
        "| arm | seeds | final test % (mean) | min | wall s (median) | trials finished (median) | "
        "time to peers' median s (median) | reached |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    reach: dict[str, dict[int, float]] = {}
    for arm in arms:
        runs = by_arm[arm]
        finals = [r["final_test"] for r in runs.values()]
        times = {s: st.time_to_reach(r["curve"], t) for s, r in runs.items() if (t := _target(by_arm, s)) is not None}
        reach[arm] = times
        finite = [v for v in times.values() if math.isfinite(v)]
        median_time = statistics.median(times.values()) if times else None
        lines.append(
            f"| {arm} | {len(runs)} | {_pct(statistics.fmean(finals))} | {_pct(min(finals))} | "
            f"{statistics.median(r['wall_s'] for r in runs.values()):.0f} | "
            f"{statistics.median(len(r['trials']) for r in runs.values()):.0f} | "
            f"{'-' if median_time is None else 'not reached' if not math.isfinite(median_time) else f'{median_time:.0f}'} | "
            f"{len(finite)}/{len(times)} |")
    lines += ["", "Paired over the same seeds (points of test accuracy; mean [bootstrap 95 % interval over seeds]; "
              "wins, ties half). \"Equal wall time\": both picks as held when the faster arm ended. \"Time ratio\": "
              "median over seeds of (the arm's time / the other's time) to reach the peers' median final score; a seed "
              "where only the arm reached it counts at (the arm's time / the other's whole wall time), an upper "
              "bound; one where only the other did counts as infinite.", "",
              "| arm | against | seeds | final: diff | wins | equal wall time: diff | wins | time ratio |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    peers = [p for p in arms if not p.startswith(SWEEP_PREFIX)]
    levers = [a for a in arms if a.startswith(SWEEP_PREFIX) and a != BASE]
    pairs = [(BASE, p) for p in peers] + [(a, b) for a in levers for b in (BASE, "optuna-tpe")]
    for arm, other in pairs:
        if arm in by_arm and other in by_arm:
            lines.append(_pair_row(by_arm, reach, arm, other))
    lines += ["", "Anytime: mean test % of the current pick at t seconds (seeds holding a pick by then).", "",
              "| arm | " + " | ".join(f"{t} s" for t in ANYTIME_GRID_S) + " |",
              "|---|" + "---:|" * len(ANYTIME_GRID_S)]
    for arm in arms:
        cells = []
        for t in ANYTIME_GRID_S:
            mean, n = st.anytime_mean([r["curve"] for r in by_arm[arm].values()], t)
            cells.append("-" if mean is None else f"{_pct(mean)} ({n})")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", "| seed | arm | wall s | trials (pruned) | picks | final pick | its value | test % | load |",
              "|---:|---|---:|---:|---:|---|---:|---:|---:|"]
    lines += _per_seed_rows(by_arm, arms, seeds, with_picks=True)
    return "\n".join(lines)


# --- issue 21's optimizer arms (search_quality.py --suite optimizers) -----------------------

OPTIMIZER_ARMS = ("adam", "adam-const", "sgd", "sgd-const", "sf-adamw")
OPTIMIZER_PAIRS = (("sgd", "sgd-const", "schedule search with SGD"), ("adam", "adam-const", "schedule search with Adam"),
                   ("sgd", "adam", "SGD against Adam, both searched"),
                   ("sf-adamw", "adam", "schedule-free at the suggestion against Adam's searched schedule"),
                   ("sf-adamw", "adam-const", "schedule-free against Adam at a searched constant LR"),
                   ("sf-adamw", "sgd", "schedule-free against SGD's searched schedule"))
NEW_FAMILIES = ("one_cycle", "wsd", "cosine_restarts", "polynomial")


def _top_schedules(run: dict, k: int = 3) -> list[str]:
    done = sorted((t for t in run["trials"] if t["value"] is not None), key=lambda t: -t["value"])[:k]
    return [t["params"].get("schedule", "?") for t in done]


def optimizer_table(payload: dict, trials: int, epochs: int) -> str:
    """The optimizer arms: final test scores, paired differences, and the winning schedule families."""
    by_arm = _runs(payload, trials, epochs)
    arms = [a for a in OPTIMIZER_ARMS if a in by_arm]
    searched = sorted({s for r in by_arm.get("adam", {}).values()
                       for s in ((r.get("config") or {}).get("search") or {}).get("schedules", [])})
    seeds = sorted({s for runs in by_arm.values() for s in runs})
    lines = [
        "## Optimizers and schedules (`benchmarks/search_quality.py --suite optimizers`)",
        "",
        f"The search-quality protocol (above) with issue 21's arms, {trials} trials x {epochs} epochs, fresh seeds. "
        "`adam`: sweep's defaults (Adam) searching every schedule family; `adam-const`: Adam, constant LR only; "
        "`sgd`: the seed CNN with SGD (momentum 0.9, Nesterov), every family; `sgd-const`: SGD, constant LR only; "
        "`sf-adamw`: `schedule_free_adamw` trained once at the range test's suggested LR (steep rule, constant, no "
        "warm-up, no search). Every pick is retrained with its arm's optimizer on train + validation and scored on "
        "the 500 test images (one score's standard error is about 1.5 points).",
        f"Seeds: {', '.join(map(str, seeds)) or 'none yet'}. Families searched by `adam` and `sgd`: "
        f"{', '.join(searched) or 'unknown'}.",
        "",
        "| arm | seeds | final test % (mean) | min | wall s (median) | trials finished (median) | final picks' schedules |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    failed = [r for r in payload["runs"] if r["arm"] in OPTIMIZER_ARMS and r["final_test"] is None
              and r["trials_budget"] == trials and r["epochs_per_trial"] == epochs]
    for arm in arms:
        runs = by_arm[arm]
        finals = [r["final_test"] for r in runs.values()]
        picked = [r["picks"][-1]["params"].get("schedule", "?") for r in runs.values()]
        counts = ", ".join(f"{name} {picked.count(name)}" for name in sorted(set(picked), key=picked.index))
        lines.append(f"| {arm} | {len(runs)} | {_pct(statistics.fmean(finals))} | {_pct(min(finals))} | "
                     f"{statistics.median(r['wall_s'] for r in runs.values()):.0f} | "
                     f"{statistics.median(len(r['trials']) for r in runs.values()):.0f} | {counts} |")
    for r in failed:
        lrs = ", ".join(f"{t['params']['initial_lr']:.2g}" for t in r["trials"])
        lines.append(f"| {r['arm']} | seed {r['seed']} | no pick: every trial diverged (LR {lrs}) | | "
                     f"{r['wall_s']:.0f} | {len(r['trials'])} | |")
    lines += ["", "Paired over the same seeds (points of test accuracy; mean [bootstrap 95 % interval]; wins, ties half; "
              "an arm without a pick on a seed is left out of its pairs there).",
              "", "| arm | against | question | seeds | final: diff | wins |", "|---|---|---|---:|---:|---:|"]
    for arm, other, question in OPTIMIZER_PAIRS:
        if arm in by_arm and other in by_arm:
            common = sorted(set(by_arm[arm]) & set(by_arm[other]))
            if common:
                p = st.paired([by_arm[arm][s]["final_test"] for s in common],
                              [by_arm[other][s]["final_test"] for s in common])
                lines.append(f"| {arm} | {other} | {question} | {p['n']} | {_diff(p)} | {p['wins']:g}/{p['n']} |")
    quad = ("sgd", "sgd-const", "adam", "adam-const")
    if all(a in by_arm for a in quad):
        common = sorted(set.intersection(*(set(by_arm[a]) for a in quad)))
        if common:
            gains = [(by_arm["sgd"][s]["final_test"] - by_arm["sgd-const"][s]["final_test"])
                     - (by_arm["adam"][s]["final_test"] - by_arm["adam-const"][s]["final_test"]) for s in common]
            p = st.paired(gains, [0.0] * len(gains))
            lines += ["", f"Does a schedule matter more with SGD? (sgd - sgd-const) - (adam - adam-const) per seed: "
                          f"{_diff(p)} points over {p['n']} seeds (positive on {p['wins']:g})."]
    lines += ["", "Winning families: the schedules of each seed's top 3 trials by validation (new families: "
              f"{', '.join(NEW_FAMILIES)}).", "", "| arm | top-3 schedules over seeds | new families among them |",
              "|---|---|---:|"]
    for arm in ("adam", "sgd"):
        if arm in by_arm:
            tops = [name for r in by_arm[arm].values() for name in _top_schedules(r)]
            counts = ", ".join(f"{name} {tops.count(name)}" for name in sorted(set(tops), key=lambda n: -tops.count(n)))
            new = sum(name in NEW_FAMILIES for name in tops)
            lines.append(f"| {arm} | {counts} | {new}/{len(tops)} |")
    lines += ["", "| seed | arm | wall s | trials (pruned) | final pick | its value | test % | load |",
              "|---:|---|---:|---:|---|---:|---:|---:|"]
    lines += _per_seed_rows(by_arm, arms, seeds, with_picks=False)
    return "\n".join(lines)


def _per_seed_rows(by_arm: dict, arms, seeds, with_picks: bool) -> list[str]:
    """One table row per (seed, arm) run: wall time, trials, the final pick and its test score
    (both tables of this module; ``with_picks`` adds the number of picks)."""
    rows = []
    for seed in seeds:
        for arm in arms:
            r = by_arm[arm].get(seed)
            if r is None:
                continue
            pick = r["picks"][-1]
            p = pick["params"]
            pruned = sum(t["value"] is None for t in r["trials"])
            picks = f" {len(r['picks'])} |" if with_picks else ""
            rows.append(f"| {seed} | {arm} | {r['wall_s']:.0f} | {len(r['trials'])} ({pruned}) |{picks} "
                        f"{p['schedule']} {p['initial_lr']:.2g} wu {p.get('warmup_fraction', 0):.2f} | "
                        f"{pick['value']:.4f} | {_pct(r['final_test'])} | {r['machine']['loadavg_start'][0]} |")
    return rows
