"""Drawing an LR range test: loss against learning rate (log axis), suggestion and bounds.

Works on the plain dict of ``lr_finder.json`` / the study's ``sweep:lr_finder`` attr
(GUIDE §1 keys), so the report draws it without Keras. matplotlib only (Agg, no pyplot).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# matplotlib's object API, never pyplot: a Figure saves through Agg by itself, and the
# backend of a notebook that imports sweep stays the user's.
from matplotlib.figure import Figure

_RAW_STYLE = {"color": "0.7", "linewidth": 0.8, "label": "batch loss"}
_SMOOTH_STYLE = {"color": "C0", "linewidth": 1.6, "label": "smoothed"}
_BOUNDS_COLOR = "C2"
# One colour and line style per rule, the same whichever rule the study chose (the chosen
# one is drawn thicker and named first in the legend).
_RULE_STYLES = {"steep": ("C3", "--"), "valley": ("C1", "-."), "minimum": ("C4", ":")}
_RULE_LABELS = {"steep": "steep (steepest descent)", "valley": "valley (middle of the longest descent)",
                "minimum": "minimum (lowest loss / 10)"}


def draw_lr_finder(ax: Any, result: dict) -> None:
    """Draw ``result`` (a range test's dict) on ``ax``.

    The raw per-batch loss in grey, the smoothed loss (``smoothed`` key, when present)
    on top, the range ``[lower, upper]`` shaded, and each rule's suggestion in its own
    colour and line style (the rule the study used thicker); for the minimum rule, the
    lowest smoothed loss it divides by 10 is marked too. The legend sits beside the axes.
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
    chosen = result.get("method")
    rules = dict(result.get("suggestions") or {})
    if _positive(result.get("suggestion")) and chosen:
        rules[chosen] = result["suggestion"]
    for name in sorted(rules, key=lambda n: (n != chosen, n)):
        value = rules[name]
        if not _positive(value):
            continue
        colour, linestyle = _RULE_STYLES.get(name, ("0.4", "-"))
        label = f"{_RULE_LABELS.get(name, name)}: {value:.2g}" + (" (used)" if name == chosen else "")
        ax.axvline(value, color=colour, linestyle=linestyle, linewidth=1.8 if name == chosen else 1.1, label=label)
    if _positive(rules.get("minimum")) and len(smoothed) == len(lrs):
        finite = [(s, lr) for s, lr in zip(smoothed, lrs) if math.isfinite(s)]
        if finite:  # the point the minimum rule divides by 10
            low_loss, low_lr = min(finite)
            ax.plot([low_lr], [low_loss], marker="v", color=_RULE_STYLES["minimum"][0], linestyle="none",
                    label=f"lowest smoothed loss at {low_lr:.2g}")

    ylim = _y_limits(smoothed if len(smoothed) == len(lrs) else losses, losses)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("LR range test")
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # beside the axes: the curve fills the whole plot
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", borderaxespad=0)


def save_lr_finder_png(result: dict, path: str | Path) -> Path:
    """Draw ``result`` into a PNG at ``path`` (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = lr_finder_figure(result)
    fig.savefig(path, dpi=120)
    return path


def lr_finder_figure(result: dict) -> Figure:
    """A new figure of ``result`` (not managed by pyplot: nothing to close)."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    draw_lr_finder(fig.add_subplot(), result)
    return fig


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
