"""Curves over training: the top trials' validation metric and learning rate per epoch,
and every trial's per-epoch values."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from sweep.report.data.collect import ReportData
from sweep.report.figures.plotting import LINESTYLES, MARKERS, WIDE, color, focus_ylim, metric_label, trial_label


def draw_top_epochs(data: ReportData) -> Figure | None:
    if not data.top_curves:
        return None
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    for i, (_, row) in enumerate(data.top.iterrows()):
        curve = data.top_curves.get(int(row["number"]))
        if curve is not None:  # the style tells trials of the same schedule (same colour) apart
            ax.plot(curve[0], curve[1], marker=MARKERS[i % len(MARKERS)], markersize=4, color=color(row["schedule"]),
                    linestyle=LINESTYLES[i % len(LINESTYLES)], label=trial_label(row))
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric_label(data))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="lower right" if data.direction == "maximize" else "upper right")
    ax.set_title(f"{metric_label(data).replace('val', 'Validation', 1)} per epoch of the top {len(data.top)} trials")
    return fig


def draw_top_lr_curves(data: ReportData) -> Figure | None:
    if not data.lr_curves:
        return None
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    rows = data.trials.set_index("number", drop=False)
    top = set(data.top["number"])
    for i, number in enumerate(data.lr_curves):  # the top trials, then each other family's best
        row = rows.loc[number]
        x, lr = data.lr_curves[number]
        keep = lr > 0  # warm-up starts at 0, which a log axis cannot show
        label = trial_label(row) + ("" if number in top else " (its family's best)")
        ax.plot(x[keep], lr[keep], color=color(row["schedule"]), linestyle=LINESTYLES[i % len(LINESTYLES)],
                linewidth=1.6 if number in top else 1.0, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch" if data.steps_per_epoch else "optimizer step")
    ax.set_ylabel("learning rate")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    extra = len(data.lr_curves) - len(top & set(data.lr_curves))
    more = f", and the best of {extra} other schedule famil{'y' if extra == 1 else 'ies'}" if extra else ""
    ax.set_title(f"Learning rate over training of the top {len(top & set(data.lr_curves))} trials{more}")
    return fig


def draw_intermediate(data: ReportData) -> Figure | None:
    """Every trial's per-epoch values, coloured by schedule type (as in every other figure);
    complete trials solid, pruned dashed, diverged dotted, each stopped one ending in an x;
    the top trials labelled at their last point. Points below the zoomed axis are counted."""
    if not data.curves:
        return None
    fig = Figure(figsize=WIDE, layout="constrained")
    ax = fig.subplots()
    rows = data.trials.set_index("number")
    styles = {"COMPLETE": ("-", 0.75, 1.1), "pruned": ("--", 0.8, 1.0), "diverged": (":", 0.8, 1.0),
              "other": ("-.", 0.6, 0.9)}
    kinds_seen: dict[str, int] = {}
    ends = []
    for number, (epochs, values) in sorted(data.curves.items()):
        if number not in rows.index:
            continue
        state, reason, schedule = rows.loc[number, ["state", "prune_reason"]].tolist() + [rows.loc[number, "schedule"]]
        kind = (reason if reason in ("pruned", "diverged") else "pruned") if state == "PRUNED" else (
            "COMPLETE" if state == "COMPLETE" else "other")
        finite = np.isfinite(values)
        if not finite.any():
            continue
        linestyle, alpha, width = styles[kind]
        ax.plot(epochs[finite], values[finite], color=color(str(schedule)), linestyle=linestyle, alpha=alpha,
                linewidth=width)
        kinds_seen[kind] = kinds_seen.get(kind, 0) + 1
        if kind in ("pruned", "diverged"):
            ends.append((epochs[finite][-1], values[finite][-1], color(str(schedule))))
    values = np.concatenate([v for _, v in data.curves.values()])
    focus_ylim(ax, values, data.direction)
    low, high = ax.get_ylim()
    for x, y, c in ends:  # clamped onto the axis edge when the value lies beyond it
        ax.scatter([x], [min(max(y, low), high)], marker="x", color=c, s=24, zorder=3, clip_on=False)
    labels: dict[tuple[float, float], list[tuple[int, str]]] = {}
    for _, row in data.top.iterrows():  # trials ending on the same point share one label
        curve = data.curves.get(int(row["number"]))
        if curve is not None and np.isfinite(curve[1][-1]) and low <= curve[1][-1] <= high:
            spot = (float(curve[0][-1]), round(float(curve[1][-1]) / ((high - low) / 40)))
            labels.setdefault(spot, []).append((int(row["number"]), color(row["schedule"])))
    for (x, _), trials in labels.items():
        y = float(data.curves[trials[0][0]][1][-1])
        ax.annotate(" ".join(f"#{n}" for n, _ in trials), (x, y), xytext=(4, 0), textcoords="offset points",
                    fontsize="x-small", va="center", color=trials[0][1])
    hidden = sum(bool(((v < low) | (v > high))[np.isfinite(v)].any()) for _, v in data.curves.values())
    if hidden:
        where = "below" if data.direction == "maximize" else "above"
        ax.text(0.01, 0.02 if where == "below" else 0.98,
                f"{hidden} trial{'s' * (hidden > 1)} with points {where} the axis (zoomed on the better 90%)",
                transform=ax.transAxes, ha="left", va="bottom" if where == "below" else "top",
                fontsize="small", color="0.3")
    handles = [Line2D([], [], color=color(s), label=s) for s in data.schedules
               if s in set(rows.loc[[n for n in data.curves if n in rows.index], "schedule"])]
    names = {"COMPLETE": "complete", "pruned": "pruned (x: stopped)", "diverged": "diverged", "other": "running / failed"}
    handles += [Line2D([], [], color="0.3", linestyle=styles[k][0], label=f"{names[k]} ({n})") for k, n in kinds_seen.items()]
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(right=ax.get_xlim()[1] + 0.25)  # room for the labels of the top trials
    ax.set_ylabel(metric_label(data))
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title("Per-epoch values of every trial, coloured by schedule type (#n: the top trials)")
    return fig
