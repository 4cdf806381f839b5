"""The report's figures, drawn from ``ReportData`` with matplotlib's object API (Agg);
the per-epoch and per-step curves are in ``curves``, shared helpers in ``plotting``.

Each ``draw_*`` returns a matplotlib ``Figure`` or None when the study has nothing to
show yet (say, no complete trial). ``render`` turns them into PNG bytes. No pyplot:
figures are not registered globally, so nothing leaks between reports.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sweep.report.analysis import stats
from sweep.report.figures.curves import draw_intermediate, draw_top_epochs, draw_top_lr_curves
from sweep.report.data.collect import ReportData
from sweep.report.figures.plotting import (BEST_COLOR, WIDE, Image, color, focus_ylim, metric_label, note_hidden,
                                   render, time_axis)
from sweep.search.lr_finder_plot import draw_lr_finder

__all__ = ["FIGURE_NAMES", "FIGURES", "Image", "WIDE", "draw_all", "render", "time_axis"]

def draw_best_so_far(data: ReportData) -> Figure | None:
    if data.best_by_number.empty:
        return None
    fig = Figure(figsize=WIDE, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, frame, by in ((axes[0], data.best_by_number, "number"), (axes[1], data.best_by_time, "elapsed_s")):
        x = frame[by].to_numpy(dtype=float)
        xlabel = "trial number"
        if by == "elapsed_s":
            x, xlabel = time_axis(x)
        ax.scatter(x, frame["value"], s=12, color="0.6", label="complete trial", zorder=2)
        ax.step(x, frame["best"], where="post", color=BEST_COLOR, linewidth=1.6, label="best so far", zorder=3)
        ax.set_xlabel(xlabel)
        if by == "number":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    hidden = focus_ylim(axes[0], data.best_by_number["value"].to_numpy(dtype=float), data.direction)
    note_hidden(axes[1], hidden, "below" if data.direction == "maximize" else "above")
    axes[0].set_ylabel(metric_label(data))
    axes[0].legend(loc="lower right" if data.direction == "maximize" else "upper right", fontsize="small")
    fig.suptitle("Best so far, by trial and by wall time")
    return fig


def draw_lr_vs_value(data: ReportData) -> Figure | None:
    frame = data.trials[np.isfinite(data.trials["value"]) & data.trials["initial_lr"].notna()]
    if frame.empty:
        return None
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    done = frame[frame["state"] == "COMPLETE"]
    focus_ylim(ax, done["value"].to_numpy(dtype=float), data.direction)
    low, high = ax.get_ylim()
    worst = low if data.direction == "maximize" else high
    size = 28 if len(frame) <= 200 else 12  # hundreds of trials would otherwise hide each other
    for schedule in data.schedules:
        for rows, filled in ((done, True), (frame[frame["state"] == "PRUNED"], False)):
            rows = rows[rows["schedule"] == schedule]
            values = rows["value"].to_numpy(dtype=float)
            # Trials worse than the axis shows sit on its edge as triangles, so their LR stays visible.
            off = (values < low) | (values > high)
            style = {"color": color(schedule)} if filled else {"facecolors": "none", "edgecolors": color(schedule)}
            ax.scatter(rows["initial_lr"][~off], values[~off], s=size, zorder=3 if filled else 2,
                       label=schedule if filled else None, **style)
            ax.scatter(rows["initial_lr"][off], np.full(off.sum(), worst), s=size, clip_on=False, zorder=2,
                       marker="v" if data.direction == "maximize" else "^", **style)
    ax.scatter([], [], s=28, facecolors="none", edgecolors="0.3", label="pruned or diverged (value when stopped)")
    ax.scatter([], [], s=28, marker="v" if data.direction == "maximize" else "^", color="0.3",
               label="worse than the axis shows")
    if data.lr_range:
        for bound in data.lr_range:
            ax.axvline(bound, color="0.3", linestyle=":", linewidth=1)
        ax.plot([], [], color="0.3", linestyle=":", label="search range")
    suggestion = (data.lr_finder or {}).get("suggestion")
    if isinstance(suggestion, (int, float)) and suggestion > 0:
        method = (data.lr_finder or {}).get("method") or "LR finder"
        ax.axvline(suggestion, color="k", linestyle="--", linewidth=1.2, label=f"LR finder ({method}) {suggestion:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("initial_lr")
    ax.set_ylabel(metric_label(data))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    ax.set_title(f"{metric_label(data)} against initial_lr, by schedule type")
    return fig


def draw_schedules(data: ReportData) -> Figure | None:
    done = stats.complete(data.trials)
    table = data.schedule_table[data.schedule_table["complete"] > 0]
    if done.empty or table.empty:
        return None
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(0)
    groups = [done.loc[done["schedule"] == s, "value"].to_numpy(dtype=float) for s in table["schedule"]]
    positions = np.arange(1, len(groups) + 1)
    ax.boxplot(groups, positions=positions, widths=0.5, showfliers=False, medianprops={"color": "k"})
    for pos, values, schedule in zip(positions, groups, table["schedule"]):
        ax.scatter(pos + rng.uniform(-0.15, 0.15, len(values)), values, s=16, color=color(schedule), zorder=3)
    labels = [f"{r.schedule}\n{r.complete} complete, {r.pruned_share:.0%} pruned" for r in table.itertuples()]
    ax.set_xticks(positions, labels)
    hidden = focus_ylim(ax, done["value"].to_numpy(dtype=float), data.direction)
    note_hidden(ax, hidden, "below" if data.direction == "maximize" else "above")
    ax.set_ylabel(metric_label(data))
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(f"{metric_label(data)} of complete trials per schedule type (best first)")
    return fig


def draw_lr_finder_figure(data: ReportData) -> Figure | None:
    if not data.lr_finder or not data.lr_finder.get("lrs"):
        return None
    fig = Figure(figsize=WIDE, layout="constrained")
    draw_lr_finder(fig.subplots(), data.lr_finder)
    return fig


def draw_importances(data: ReportData) -> Figure | None:
    if not data.importances:
        return None
    names = list(data.importances)[::-1]  # most important on top
    fig = Figure(figsize=(8, 0.5 * len(names) + 1.4), layout="constrained")
    ax = fig.subplots()
    ax.barh(names, [data.importances[n] for n in names], color="#4c72b0")
    ax.set_xlabel("importance (PED-ANOVA, share of the ranked parameters)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title("Parameter importances, each over the complete trials that have it")
    return fig


FIGURES: list[tuple[str, str, Callable[[ReportData], Figure | None]]] = [
    ("best_so_far", "Best value so far against trial number and against wall time.", draw_best_so_far),
    ("lr_vs_value", "Each trial's value against its initial learning rate, coloured by schedule type, "
                    "with the LR finder's suggestion and the search range.", draw_lr_vs_value),
    ("schedules", "Values of the complete trials per schedule type.", draw_schedules),
    ("top_epochs", "The study's metric per epoch (validation) of the best trials.", draw_top_epochs),
    ("top_lr_curves", "The learning rate each of the best trials used, step by step "
                      "(computed from its parameters with the training schedule formulas).", draw_top_lr_curves),
    ("lr_finder", "The LR range test run before the study: loss against learning rate.", draw_lr_finder_figure),
    ("importances", "How much each parameter decides whether a trial lands among the best.", draw_importances),
    ("intermediate", "Per-epoch values of every trial, coloured by schedule type; pruned trials dashed and "
                     "ending in an x, diverged ones dotted; the top trials labelled #n.", draw_intermediate),
]
FIGURE_NAMES = [name for name, _, _ in FIGURES]


def draw_all(data: ReportData) -> dict[str, Image]:
    """Every figure the study has data for, by name."""
    images = {}
    for name, caption, draw in FIGURES:
        figure = draw(data)
        if figure is not None:
            images[name] = Image(name, caption, render(figure))
    return images
