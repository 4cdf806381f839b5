"""Findings that compare scores: the noise level, the schedule types, and the selection bias
of "the best of k".

A winner is named only when the evidence separates it: its best score must lead every
other type's by more than validation noise alone produces 95% of the time
(``uncertainty.difference_threshold``). Otherwise the types are reported as
indistinguishable, with what would separate them.
"""

from __future__ import annotations

import math

import numpy as np

from sweep.report.analysis import stats, uncertainty
from sweep.report.data.collect import ReportData
from sweep.report.findings.finding import Finding, count, join
from sweep.report.fmt import fmt_value

# Without a noise estimate (a loss metric, or an unknown validation size) two types whose
# best values differ by less than this are reported as tied. A heuristic, not a measurement.
TIE_ACCURACY = 0.005
TIE_LOSS_RELATIVE = 0.02
FEW_TRIALS = 3


def noise(data: ReportData) -> list[Finding]:
    """The noise level every comparison in the report is measured against."""
    if data.best is None:
        return []
    if not math.isfinite(data.se):
        why = ("a loss has no binomial standard error" if data.metric != "val_accuracy"
               else "the number of validation images is unknown")
        return [Finding(f"Noise level: not estimated ({why}). Treat small differences between trials as "
                        "possibly noise; 'sweep evaluate NAME --top K --repeats R' measures it by retraining.")]
    how = "" if data.validation_note == "stored" else f" ({data.validation_note})"
    se = data.se
    return [Finding(
        f"Noise level: every score is measured once, on {data.num_validation} validation images{how}, so an "
        f"accuracy near {fmt_value(data.best['value'])} carries a standard error of {se:.3f} (95% interval "
        f"±{uncertainty.Z95 * se:.3f}); two trials must differ by more than "
        f"{uncertainty.difference_threshold(se, se):.3f} before the difference is evidence. Training-seed "
        "noise comes on top of this.")]


def schedules(data: ReportData) -> list[Finding]:
    table = data.schedule_table
    ranked = table[np.isfinite(table["best"].astype(float))]
    if ranked.empty:
        return []
    known = bool(np.isfinite(ranked["se"].astype(float)).all())
    parts = []
    for r in ranked.itertuples():
        interval = f" [{r.low:.3f}, {r.high:.3f}]" if known else ""
        parts.append(f"{r.schedule} {fmt_value(r.best)}{interval} (best of {r.complete})")
    what = " with 95% intervals" if known else ""
    text = f"Best {data.metric} per schedule type{what}: " + ", ".join(parts) + "."
    untried = list(table.loc[table["complete"] == 0, "schedule"])
    if untried:
        text += f" No complete trial for: {', '.join(untried)}."
    out = [Finding(text)]
    if len(ranked) > 1:
        out.append(_verdict(data, ranked, known))
    few = [f"{r.schedule} ({r.complete})" for r in ranked.itertuples() if r.complete < FEW_TRIALS]
    if few:
        out.append(Finding(f"Few complete trials behind: {', '.join(few)}; their best values are rough estimates, "
                           "and a type with more trials gets a higher best by selection alone."))
    return out


def _verdict(data: ReportData, ranked, known: bool) -> Finding:
    lead = ranked.iloc[0]
    sign = 1.0 if data.direction == "maximize" else -1.0
    tied, behind = [], []
    for row in ranked.iloc[1:].itertuples():
        gap = sign * (float(lead["best"]) - float(row.best))
        if known:
            threshold = uncertainty.difference_threshold(float(lead["se"]), float(row.se))
        else:
            threshold = TIE_ACCURACY if data.metric == "val_accuracy" else TIE_LOSS_RELATIVE * abs(float(lead["best"]))
        (tied if gap <= threshold else behind).append((row, gap, threshold))
    basis = ("validation noise alone produces at 95%" if known
             else "a seed-to-seed heuristic (noise level unknown)")
    if not tied:
        runner, gap, threshold = behind[0]
        return Finding(
            f"{lead['schedule']} leads every other schedule type by more than {basis}: the runner-up, "
            f"{runner.schedule}, by {gap:.4f} (threshold {threshold:.4f}). Its best is still a best of "
            f"{int(lead['complete'])} trials, so the margin is biased upward; 'sweep evaluate --repeats' confirms it.")
    names = [str(lead["schedule"])] + [row.schedule for row, _, _ in tied]
    widest = max(threshold for _, _, threshold in tied)
    medians = ", ".join(f"{r.schedule} {fmt_value(r.median)}" for r in ranked.itertuples()
                        if r.schedule in names and math.isfinite(r.median))
    text = (f"{join(names)} are indistinguishable: their best scores differ by no more than the "
            f"{widest:.4f} that {basis}")
    text += f" (medians: {medians})." if medians else "."
    text += (" To separate them: more complete trials of each, or retrain their best configurations with "
             f"several seeds and score them on the test split: 'sweep evaluate {data.name} --top "
             f"{max(2, len(names))} --repeats 3'.")
    if behind:
        text += f" Behind by more than noise: {', '.join(row.schedule for row, _, _ in behind)}."
    return Finding(text)


def selection(data: ReportData) -> list[Finding]:
    """How much "the best of k" overstates its true score."""
    done = stats.complete(data.trials)
    if len(done) < 2 or data.best is None:
        return []
    se = data.se
    text = (f"The best score is the best of {count(len(done), 'complete trial')}, so it is biased upward by "
            "selection: a re-run of the same configuration will likely score lower.")
    bias = uncertainty.selection_bias(done["value"].to_numpy(dtype=float), se, data.direction == "maximize")
    if bias is not None and bias.contenders > 1:
        expected = float(data.best["value"]) - (bias.bias if data.direction == "maximize" else -bias.bias)
        text += (f" {bias.contenders} trials lie within {uncertainty.CONTENDER_SE:g} standard errors of it; if "
                 f"they were equally good, the best of {bias.contenders} would exceed their true score by about "
                 f"{bias.bias:.3f} ({uncertainty.expected_max_normal(bias.contenders):.2f} x {bias.noise:.3f} "
                 f"noise), so expect about {fmt_value(expected)} on new data.")
    elif bias is not None:
        text += " No other trial comes within two standard errors of it, so the bias is likely small."
    return [Finding(text)]
