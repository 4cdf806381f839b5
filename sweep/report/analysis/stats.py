"""Pure computations on the trials table: best-so-far, schedule comparison, top trials,
LR curves, pruning savings (parameter importances: ``importance``).

Every function takes plain frames and values (no study, no drawing), so tests check
the numbers directly. Only COMPLETE trials count towards "best" and "median", as in
``study.best_value``: a pruned trial's value is the metric at the epoch it was stopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sweep.config import SCHEDULE_PARAMS
from sweep.report.analysis import uncertainty
from sweep.training.schedule_math import learning_rates

log = logging.getLogger(__name__)

PARAMS = ("initial_lr", "schedule", "warmup_fraction", "decay_rate", "decay_steps")  # trials.csv's first columns
# Every trial parameter: each schedule family's and the searched optimizer's too.
TRIAL_PARAMS = (*PARAMS, *(p for p in SCHEDULE_PARAMS if p not in PARAMS), "optimizer", "momentum", "weight_decay")
_TEXT_PARAMS = ("schedule", "decay_shape", "optimizer")
# A curve of more points than this is sampled: the PNG cannot show more anyway.
MAX_CURVE_POINTS = 2000


def complete(frame: pd.DataFrame) -> pd.DataFrame:
    """The COMPLETE trials with a finite value."""
    done = frame[(frame["state"] == "COMPLETE") & np.isfinite(frame["value"].astype(float))]
    return done


def ranked(frame: pd.DataFrame, direction: str) -> pd.DataFrame:
    """COMPLETE trials, best first (ties: lower trial number first)."""
    return complete(frame).sort_values(
        ["value", "number"], ascending=[direction == "minimize", True], kind="stable"
    )


def best_so_far(frame: pd.DataFrame, direction: str, by: str = "number") -> pd.DataFrame:
    """Columns number, elapsed_s, value, best: the running best of COMPLETE trials, ordered ``by``."""
    done = complete(frame).sort_values([by, "number"], kind="stable")
    values = done["value"].astype(float)
    best = values.cummax() if direction == "maximize" else values.cummin()
    return pd.DataFrame(
        {"number": done["number"].to_numpy(), "elapsed_s": done["elapsed_s"].to_numpy(),
         "value": values.to_numpy(), "best": best.to_numpy()}
    )


def optimizer_summary(frame: pd.DataFrame, direction: str, num_validation: int | None = None) -> pd.DataFrame:
    """``schedule_summary``'s table by the searched ``optimizer`` parameter (empty when it was not searched)."""
    if "optimizer" not in frame or frame["optimizer"].isna().all():
        return pd.DataFrame()
    names = list(dict.fromkeys(frame["optimizer"].dropna()))
    table = schedule_summary(frame.assign(schedule=frame["optimizer"]), names, direction, num_validation)
    return table.rename(columns={"schedule": "optimizer"})


def schedule_summary(frame: pd.DataFrame, schedules: list[str], direction: str,
                     num_validation: int | None = None) -> pd.DataFrame:
    """One row per schedule type, best first: trials, states, best, median, share pruned,
    and the best score's binomial standard error and 95% interval (``se``, ``low``, ``high``:
    NaN unless the scores are accuracies on ``num_validation`` known images).

    ``trials`` counts every reported trial of the type (any state); ``pruned_share`` is
    the share of finished trials (complete + pruned + diverged) that were stopped early.
    """
    rows = []
    for schedule in schedules:
        group = frame[frame["schedule"] == schedule]
        values = complete(group)["value"].astype(float)
        reasons = group.loc[group["state"] == "PRUNED", "prune_reason"]
        n_complete = int((group["state"] == "COMPLETE").sum())
        n_diverged = int((reasons == "diverged").sum())
        n_pruned = len(reasons) - n_diverged
        finished = n_complete + n_pruned + n_diverged
        best = (values.max() if direction == "maximize" else values.min()) if len(values) else math.nan
        low, high = uncertainty.wilson_interval(best, num_validation) if len(values) else (math.nan, math.nan)
        rows.append({
            "schedule": schedule,
            "trials": len(group),
            "complete": n_complete,
            "pruned": n_pruned,
            "diverged": n_diverged,
            "failed": int((group["state"] == "FAIL").sum()),
            "best": best,
            "median": float(values.median()) if len(values) else math.nan,
            "pruned_share": (n_pruned + n_diverged) / finished if finished else math.nan,
            "se": uncertainty.binomial_se(best, num_validation) if len(values) else math.nan,
            "low": low,
            "high": high,
        })
    table = pd.DataFrame(rows, columns=["schedule", "trials", "complete", "pruned", "diverged", "failed",
                                        "best", "median", "pruned_share", "se", "low", "high"])
    return table.sort_values("best", ascending=direction == "minimize", na_position="last", kind="stable")


def trial_params(row: Mapping[str, Any]) -> dict[str, Any]:
    """The Optuna params of a trials-table row (a family's keys only where its schedule has them)."""
    params: dict[str, Any] = {}
    for key in TRIAL_PARAMS:
        value = row.get(key)
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            continue
        params[key] = int(value) if key == "decay_steps" else str(value) if key in _TEXT_PARAMS else float(value)
    return params


def lr_curve_rows(frame: pd.DataFrame, direction: str, top: int) -> pd.DataFrame:
    """The trials whose LR curves a report draws: the ``top`` best, then the best of each schedule
    family not among them, so that every family the study completed a trial of is drawn."""
    done = ranked(frame, direction)
    shown = done.head(top)
    others = done[~done["schedule"].isin(set(shown["schedule"]))].drop_duplicates("schedule")
    return pd.concat([shown, others]) if len(others) else shown


def lr_curves(top: pd.DataFrame, steps_per_epoch: int | None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{trial number: (x, lr)}`` from the schedule formulas training uses.

    x is in epochs when ``steps_per_epoch`` is known, else in optimizer steps. Trials
    without a recorded ``total_steps`` are left out (their schedule length is unknown).
    """
    curves = {}
    for _, row in top.iterrows():
        total = row.get("total_steps")
        if total is None or total is pd.NA or not total > 0:
            continue
        total = int(total)
        steps = np.unique(np.linspace(0, total, min(total + 1, MAX_CURVE_POINTS)).round().astype(np.int64))
        try:
            lrs = learning_rates(trial_params(row), total, steps)
        except (KeyError, ValueError) as exc:  # a trial from an older search space
            log.debug("no LR curve for trial %s: %s", row["number"], exc)
            continue
        x = steps / steps_per_epoch if steps_per_epoch else steps.astype(float)
        curves[int(row["number"])] = (x, lrs)
    return curves


@dataclass(frozen=True)
class PruningSavings:
    """What stopping trials early saved, in epochs."""

    finished: int  # complete + pruned + diverged
    pruned: int
    diverged: int
    epochs_run: int  # by the stopped trials
    epochs_saved: int  # epochs the stopped trials did not run
    epochs_full: int  # epochs all finished trials would have run without pruning

    @property
    def share_saved(self) -> float:
        return self.epochs_saved / self.epochs_full if self.epochs_full else math.nan


def pruning_savings(frame: pd.DataFrame, epochs: int | None) -> PruningSavings:
    stopped = frame[frame["state"] == "PRUNED"]
    finished = int((frame["state"] == "COMPLETE").sum()) + len(stopped)
    diverged = int((stopped["prune_reason"] == "diverged").sum())
    run = stopped["epochs_run"].fillna(0).astype(int)
    saved = int((epochs - run).clip(lower=0).sum()) if epochs else 0
    return PruningSavings(finished, len(stopped) - diverged, diverged, int(run.sum()), saved,
                          finished * epochs if epochs else 0)


def evaluation_ranks(trials: pd.DataFrame, evaluations: list[dict], direction: str) -> dict[int, tuple[int, int]]:
    """{trial: (rank by validation value, rank by mean test score)} of the evaluated trials."""
    values = trials.set_index("number")["value"]
    scored = [e for e in evaluations if e.get("trial") in values.index]
    sign = -1 if direction == "maximize" else 1
    by_validation = sorted(scored, key=lambda e: (sign * values[e["trial"]], e["trial"]))
    by_test = sorted(scored, key=lambda e: (sign * e["mean"], e["trial"]))
    return {e["trial"]: (by_validation.index(e) + 1, by_test.index(e) + 1) for e in scored}
