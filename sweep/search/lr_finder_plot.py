"""Drawing an LR range test: loss against learning rate (log axis), suggestion and bounds.

Works on the plain dict of ``lr_finder.json`` / the study's ``sweep:lr_finder`` attr
(GUIDE §1 keys), so the report draws it without Keras. matplotlib only (Agg).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display anywhere we run; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

_RAW_STYLE = {"color": "0.7", "linewidth": 0.8, "label": "batch loss"}
_SMOOTH_STYLE = {"color": "C0", "linewidth": 1.6, "label": "smoothed"}
_BOUNDS_COLOR = "C2"
_SUGGESTION_COLOR = "C3"


def draw_lr_finder(ax: Any, result: dict) -> None:
    """Draw ``result`` (a range test's dict) on ``ax``.

    The raw per-batch loss in grey, the smoothed loss (``smoothed`` key, when present)
    on top, the suggested LR as a red line and the range ``[lower, upper]`` shaded.
    The y axis is cut a little above the starting loss so divergence does not flatten
    the interesting part of the curve.
    """
    lrs = [float(v) for v in result.get("lrs", [])]
    losses = [float(v) for v in result.get("losses", [])]
    smoothed = [float(v) for v in result.get("smoothed") or []]
    if lrs and losses:
        ax.plot(lrs, losses, **_RAW_STYLE)
    if lrs and len(smoothed) == len(lrs):
        ax.plot(lrs, smoothed, **_SMOOTH_STYLE)
    ax.set_xscale("log")

    lower, upper = result.get("lower"), result.get("upper")
    if _positive(lower) and _positive(upper) and lower < upper:
        ax.axvspan(lower, upper, color=_BOUNDS_COLOR, alpha=0.12,
                   label=f"bounds [{lower:.2g}, {upper:.2g}]")
    suggestion = result.get("suggestion")
    if _positive(suggestion):
        method = result.get("method") or "suggestion"
        ax.axvline(suggestion, color=_SUGGESTION_COLOR, linestyle="--", linewidth=1.2,
                   label=f"{method}: {suggestion:.2g}")
    for name, value in sorted((result.get("suggestions") or {}).items()):
        if name != result.get("method") and _positive(value):
            ax.axvline(value, color="0.4", linestyle=":", linewidth=0.9, label=f"{name}: {value:.2g}")

    ylim = _y_limits(smoothed if len(smoothed) == len(lrs) else losses, losses)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("LR range test")
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize="small")


def save_lr_finder_png(result: dict, path: str | Path) -> Path:
    """Draw ``result`` into a PNG at ``path`` (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    try:
        draw_lr_finder(ax, result)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _y_limits(values: list[float], raw: list[float]) -> tuple[float, float] | None:
    """From just below the lowest loss (raw or smoothed) to a little above ``values``' start."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    low = min(finite + [v for v in raw if math.isfinite(v)])
    # The first few points are the untrained model's loss; a diverging tail may run far above.
    start = max(finite[: max(1, len(finite) // 20)])
    high = max(start, low) * 1.15
    if high <= low:
        return None
    margin = 0.05 * (high - low)
    return low - margin, high
