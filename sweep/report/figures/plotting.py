"""Shared pieces of the report's figures: the Image record, PNG rendering, colours per
schedule type, and axis helpers. matplotlib's object API only (no pyplot)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from sweep.report.data.collect import ReportData

DPI = 100
WIDE = (10, 4.2)
SCHEDULE_COLORS = {"constant": "#1f77b4", "exponential": "#ff7f0e", "step": "#2ca02c",
                   "cosine": "#d62728", "linear": "#9467bd", "one_cycle": "#8c564b", "wsd": "#e377c2",
                   "cosine_restarts": "#17becf", "polynomial": "#bcbd22"}
BEST_COLOR = "#111111"
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1))]
MARKERS = ["o", "s", "^", "D", "v"]


@dataclass(frozen=True)
class Image:
    """One figure: ``figures/<name>.png`` and its caption."""

    name: str
    caption: str
    png: bytes


def render(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def color(schedule: str) -> str:
    return SCHEDULE_COLORS.get(schedule, "#7f7f7f")


def trial_label(row) -> str:
    return f"#{int(row['number'])} {row['schedule']} {row['initial_lr']:.2g}"


def metric_label(data: ReportData) -> str:
    """"val accuracy", "val MAE", "val loss": the study's metric as an axis names it."""
    from sweep.config import metric_label as named

    return named(data.metric, "val") if data.metric.startswith("val_") else data.metric.replace("_", " ")


def focus_ylim(ax, values: np.ndarray, direction: str) -> int:
    """Zoom the y axis on the better 90% of ``values`` (a few awful trials would squash the
    rest into a line); return how many values fall outside."""
    values = values[np.isfinite(values)]
    if len(values) < 5:
        return 0
    lo, hi = np.percentile(values, [10, 100]) if direction == "maximize" else np.percentile(values, [0, 90])
    margin = 0.08 * (hi - lo) or 0.01
    lo, hi = lo - margin, hi + margin
    ax.set_ylim(lo, hi)
    return int(((values < lo) | (values > hi)).sum())


def note_hidden(ax, hidden: int, where: str) -> None:
    if hidden:
        what = "1 worse trial" if hidden == 1 else f"{hidden} worse trials"
        ax.text(0.99, 0.02 if where == "below" else 0.98, f"{what} {where} the axis",
                transform=ax.transAxes, ha="right", va="bottom" if where == "below" else "top",
                fontsize="small", color="0.4")


def time_axis(seconds: np.ndarray) -> tuple[np.ndarray, str]:
    top = float(np.nanmax(seconds)) if len(seconds) else 0.0
    if top < 120:
        return seconds, "wall time (s)"
    if top < 7200:
        return seconds / 60, "wall time (min)"
    return seconds / 3600, "wall time (h)"
