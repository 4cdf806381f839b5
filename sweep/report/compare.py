"""Comparing studies side by side: data (``compare``), figures (``draw``), page (``document``).

Studies may come from different storages; each is read into a ``ReportData`` first,
so a comparison shows exactly the numbers the studies' own reports show.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sweep.config import SCHEDULES
from sweep.report.render.blocks import Document, Findings, Paragraph, Section, Table
from sweep.report.data.collect import ReportData
from sweep.report.figures.draw import WIDE, Image, render, time_axis
from sweep.report.findings.finding import Finding
from sweep.report.fmt import fmt_lr, fmt_value
from sweep.storage.database import sqlite_path

FIGURE_NAMES = ["best_so_far", "importances"]


@dataclass
class Comparison:
    labels: list[str]
    datas: list[ReportData]
    summary: pd.DataFrame  # one row per study
    by_schedule: pd.DataFrame  # one row per schedule type: best value and complete trials per study
    importances: pd.DataFrame  # one row per parameter, one column per study (NaN: not computed)
    findings: list[Finding]


def labels_for(datas: list[ReportData]) -> list[str]:
    """Study names, told apart by their storage where two share a name."""
    counts = Counter(d.name for d in datas)
    labels = []
    for d in datas:
        label = d.name
        if counts[d.name] > 1:
            path = sqlite_path(d.storage) if d.storage else None
            label = f"{d.name} ({path.name if path else d.storage or 'memory'})"
        labels.append(label)
    dupes = Counter(labels)
    return [f"{label} [{i + 1}]" if dupes[label] > 1 else label for i, label in enumerate(labels)]


def compare(datas: list[ReportData]) -> Comparison:
    labels = labels_for(datas)
    rows = []
    for label, d in zip(labels, datas):
        best = d.best
        rows.append({
            "study": label, "storage": d.storage, "metric": d.metric, "direction": d.direction,
            "finished": d.count("COMPLETE") + d.count("PRUNED"), "complete": d.count("COMPLETE"),
            "pruned": d.pruning.pruned, "diverged": d.pruning.diverged,
            "best": float(best["value"]) if best is not None else np.nan,
            "best_trial": int(best["number"]) if best is not None else None,
            "best_schedule": best["schedule"] if best is not None else None,
            "best_initial_lr": float(best["initial_lr"]) if best is not None else np.nan,
            "lr_finder_suggestion": (d.lr_finder or {}).get("suggestion"),
            "wall_time_s": float(d.trials["elapsed_s"].max()) if d.trials["elapsed_s"].notna().any() else np.nan,
        })
    summary = pd.DataFrame(rows)
    seen = {s for d in datas for s in d.schedules}
    schedules = [s for s in SCHEDULES if s in seen] + sorted(seen - set(SCHEDULES))
    by_schedule = pd.DataFrame({"schedule": schedules})
    for label, d in zip(labels, datas):
        table = d.schedule_table.set_index("schedule")
        by_schedule[label] = [table["best"].get(s, np.nan) for s in schedules]
        by_schedule[f"{label} complete"] = [int(table["complete"].get(s, 0)) for s in schedules]
    params = sorted({p for d in datas for p in d.importances or {}})
    importances = pd.DataFrame({label: [(d.importances or {}).get(p, np.nan) for p in params]
                                for label, d in zip(labels, datas)}, index=params)
    if len(importances):  # most important (on average over the studies) first
        importances = importances.loc[importances.mean(axis=1).sort_values(ascending=False, kind="stable").index]
    comparison = Comparison(labels, datas, summary, by_schedule, importances, [])
    comparison.findings = comparison_findings(comparison)
    return comparison


def comparison_findings(c: Comparison) -> list[Finding]:
    out = []
    metrics = {(d.metric, d.direction) for d in c.datas}
    if len(metrics) > 1:
        each = ", ".join(f"{label}: {d.direction} {d.metric}" for label, d in zip(c.labels, c.datas))
        return [Finding(f"The studies optimise different objectives ({each}); their values are not comparable.",
                        True)]
    direction = c.datas[0].direction
    done = c.summary[np.isfinite(c.summary["best"])]
    if done.empty:
        return [Finding("No study has a complete trial yet.", True)]
    order = done.sort_values("best", ascending=direction == "minimize")
    lead = order.iloc[0]
    text = (f"Best overall: {lead['study']} with {fmt_value(lead['best'])} (trial #{lead['best_trial']}, "
            f"{lead['best_schedule']} at initial_lr {fmt_lr(lead['best_initial_lr'])})")
    if len(order) > 1:
        text += "; " + ", ".join(f"{r.study} {fmt_value(r.best)} ({r.best - lead['best']:+.4f})"
                                 for r in order.iloc[1:].itertuples())
    out.append(Finding(text + "."))
    winners = []
    for label, d in zip(c.labels, c.datas):
        if d.best is not None:
            winners.append(f"{d.best['schedule']} in {label}")
    if winners:
        same = len({w.split(" in ")[0] for w in winners}) == 1
        out.append(Finding(("The same schedule type wins everywhere: " if same else "Winning schedule type: ")
                           + "; ".join(winners) + "."))
    return out


def draw(c: Comparison) -> dict[str, Image]:
    images = {}
    if any(not d.best_by_number.empty for d in c.datas):
        fig = Figure(figsize=WIDE, layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        longest = max((float(d.best_by_time["elapsed_s"].max()) for d in c.datas if not d.best_by_time.empty))
        _, unit = time_axis(np.array([longest]))
        scale = {"wall time (s)": 1, "wall time (min)": 60, "wall time (h)": 3600}[unit]
        for i, (label, d) in enumerate(zip(c.labels, c.datas)):
            if d.best_by_number.empty:
                continue
            axes[0].step(d.best_by_number["number"], d.best_by_number["best"], where="post", color=f"C{i}",
                         label=label, linewidth=1.6)
            axes[1].step(d.best_by_time["elapsed_s"] / scale, d.best_by_time["best"], where="post",
                         color=f"C{i}", linewidth=1.6)
        axes[0].set_xlabel("trial number")
        axes[1].set_xlabel(unit)
        axes[0].set_ylabel(c.datas[0].metric.replace("_", " "))
        for ax in axes:
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize="small")
        fig.suptitle("Best so far, by trial and by wall time")
        images["best_so_far"] = Image("best_so_far", "Best value so far of each study.", render(fig))
    if not c.importances.empty and c.importances.notna().any().any():
        fig = Figure(figsize=(9, 0.6 * len(c.importances) * max(1, len(c.labels)) / 2 + 1.6), layout="constrained")
        ax = fig.subplots()
        params = list(c.importances.index)
        height = 0.8 / len(c.labels)
        for i, label in enumerate(c.labels):
            y = np.arange(len(params)) + i * height
            ax.barh(y, c.importances[label].fillna(0), height=height, color=f"C{i}", label=label)
        ax.set_yticks(np.arange(len(params)) + 0.4 - height / 2, params)
        ax.invert_yaxis()
        ax.set_xlabel("importance (PED-ANOVA, normalised)")
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize="small")
        ax.set_title("Parameter importances per study")
        images["importances"] = Image("importances", "Parameter importances of each study side by side.",
                                      render(fig))
    return images


def document(c: Comparison, images: dict[str, Image]) -> Document:
    summary = Table("Studies", ["study", "objective", "finished", "complete", "pruned", "diverged", "best",
                                "best trial", "best schedule", "best initial_lr", "LR finder"],
                    [[r.study, f"{r.direction} {r.metric}", str(r.finished), str(r.complete), str(r.pruned),
                      str(r.diverged), fmt_value(r.best), "" if r.best_trial is None or pd.isna(r.best_trial)
                      else f"#{int(r.best_trial)}", r.best_schedule or "", fmt_lr(r.best_initial_lr),
                      fmt_lr(r.lr_finder_suggestion)] for r in c.summary.itertuples()])
    per_schedule = Table("Best value per schedule type", ["schedule", *c.labels],
                         [[row["schedule"], *(_cell(row[label], row[f"{label} complete"]) for label in c.labels)]
                          for _, row in c.by_schedule.iterrows()],
                         "Best over complete trials (number of complete trials in brackets).")
    importance = Table("Parameter importances", ["parameter", *c.labels],
                       [[param, *(("" if pd.isna(v) else f"{v:.3f}") for v in row)]
                        for param, row in c.importances.iterrows()])
    storages = [Paragraph(f"{label}: {d.storage or '(in memory)'}") for label, d in zip(c.labels, c.datas)]
    sections = [Section("Findings", [Findings(c.findings)]), Section("Studies", [summary, *storages]),
                Section("Schedule types", [per_schedule]),
                Section("Progress", [images["best_so_far"]] if "best_so_far" in images else [])]
    sections.append(Section("Parameter importances",
                            [importance, *([images["importances"]] if "importances" in images else [])]
                            if len(c.importances) else [Paragraph("No study has enough complete trials.")]))
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Document(f"Sweep comparison: {', '.join(c.labels)}", [("Studies", ", ".join(c.labels))],
                    [s for s in sections if s.blocks], f"Generated {generated} by sweep compare.")


def default_out_dir(names: list[str], root: Path = Path("results")) -> Path:
    """``results/compare-A-B``; long lists are cut so the folder name stays a valid file name."""
    joined = "-".join(names)
    if len(joined) > 120:
        joined = f"{joined[:100]}-{hashlib.sha1(joined.encode()).hexdigest()[:8]}"
    return root / f"compare-{joined}"


def _cell(value: float, complete: int) -> str:
    return "" if pd.isna(value) else f"{fmt_value(value)} ({complete})"
