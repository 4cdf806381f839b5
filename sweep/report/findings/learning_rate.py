"""Findings about the learning rate: the searched range's edges, the LR finder's suggestion,
and the best trial's learning curve (where in its epochs it peaked)."""

from __future__ import annotations

import math

from sweep.report.analysis import evidence, uncertainty
from sweep.report.data.collect import ReportData
from sweep.report.findings.finding import Finding, count
from sweep.report.fmt import fmt_lr, fmt_value


def edges(data: ReportData) -> list[Finding]:
    """Warn when the top trials sit at a bound of the range, or the score improves towards it."""
    if not data.lr_range:
        return []
    low, high = data.lr_range
    out = []
    for edge in evidence.edge_evidence(data.trials, data.direction, low, high):
        if not edge.warn:
            continue
        beyond = "below" if edge.bound == "lower" else "above"
        reasons = []
        if edge.top_at_edge:
            trials = ", ".join(f"#{n}" for n in edge.top_at_edge)
            reasons.append(f"{count(len(edge.top_at_edge), 'trial')} of the top {edge.top_trials} ({trials}) "
                           f"{'lies' if len(edge.top_at_edge) == 1 else 'lie'} within {evidence.EDGE_TOLERANCE:.0%} of the log range of it")
        if edge.improving:
            reasons.append(f"over the {edge.near} complete trials nearest it the score improves by "
                           f"{edge.slope:.3f} per decade towards it (±{edge.slope_se:.3f})")
        prior = data.prior or {}
        narrowed = prior.get("narrowed_range") and prior.get("narrowed_range") != prior.get("config_range")
        hint = " (or set lr_finder.narrow: false: the prior narrowed it)" if narrowed else ""
        out.append(Finding(
            f"The {edge.bound} edge of the searched initial_lr range [{fmt_lr(low)}, {fmt_lr(high)}] may be too "
            f"tight: {'; '.join(reasons)}. Better rates may lie {beyond} {fmt_lr(edge.value)}; "
            f"widen search.initial_lr{hint}.", True))
    return out


def suggestion(data: ReportData, best) -> list[Finding]:
    value = (data.lr_finder or {}).get("suggestion")
    if not isinstance(value, (int, float)) or not value > 0:
        return []
    ratio = float(best["initial_lr"]) / value
    relation = ("about the same" if 0.8 <= ratio <= 1.25 else
                f"{ratio:.1f} times higher" if ratio > 1 else f"{1 / ratio:.1f} times lower")
    method = (data.lr_finder or {}).get("method") or "its"
    return [Finding(f"The LR finder's {method} suggestion was {fmt_lr(value)}; "
                    f"the best trial's initial_lr is {relation}.")]


def learning_curve(data: ReportData, best) -> list[Finding]:
    """The best trial's best epoch against its last, and what that means for retraining it."""
    number = int(best["number"])
    curve = evidence.learning_curve(number, data.curves.get(number), data.direction)
    if curve is None:
        return []
    of = f" of {data.epochs}" if data.epochs else ""
    if curve.best_epoch == curve.last_epoch:
        return [Finding(f"Trial #{number} scored its best at its last epoch ({curve.last_epoch}{of}): it was "
                        "still improving, so more epochs might help.")]
    text = (f"Trial #{number} peaked at epoch {curve.best_epoch}{of} ({fmt_value(curve.best_value)}) and ended "
            f"{curve.drop:.4f} {'lower' if data.direction == 'maximize' else 'higher'} at epoch {curve.last_epoch} "
            f"({fmt_value(curve.last_value)})")
    # The same validation images at two epochs of one run: a paired difference, less noisy
    # than two independent scores, so one standard error (not 1.96 x sqrt 2) is the bar.
    se = uncertainty.binomial_se(curve.best_value, data.num_validation) if data.metric == "val_accuracy" else math.nan
    if math.isfinite(se) and curve.drop <= se:
        return [Finding(text + f", within one standard error ({se:.3f}) of its peak: retraining it should land "
                               "near either.")]
    noise = f", more than one standard error ({se:.3f})" if math.isfinite(se) else ""
    why = (" The study's objective credits each trial's best epoch, which a fixed-length retraining does not "
           "stop at." if data.objective == "best" else "")
    return [Finding(
        text + f"{noise}. Retraining it for {data.epochs or 'the same number of'} epochs will likely land near its "
        f"last epoch, not its peak.{why} Consider train.epochs: {curve.best_epoch} for the retraining, or "
        "study.objective: last.", True)]
