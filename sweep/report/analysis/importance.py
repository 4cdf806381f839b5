"""Parameter importances that respect the conditional search space.

Each schedule family's parameters (``decay_rate`` and ``decay_steps``, ``pct_start``,
``min_lr_ratio``, ...) exist only in that family's trials. Ranking
them on every trial (as ``optuna.importance.get_param_importances`` does on a whole
study) lets two or three trials decide a headline number. Here each parameter is
scored only over the COMPLETE trials that have it, and not at all under
``MIN_TRIALS`` of them ("too few trials").

The evaluator is Optuna's ``PedAnovaImportanceEvaluator`` (PED-ANOVA: how differently
a parameter is distributed among the top trials than among all of them). It scores
each parameter on its own, so per-parameter subsets are comparable; the raw scores are
then normalised to shares over the parameters ranked. Per schedule type, initial_lr,
warmup_fraction and the family's own parameters are scored the same way within that type's
trials.
"""

from __future__ import annotations

import logging
import math
import warnings

import optuna
import pandas as pd

from sweep.config import FAMILY_PARAMS, OPTIONAL_PARAMS

log = logging.getLogger(__name__)

EVALUATOR = "PED-ANOVA (Optuna's PedAnovaImportanceEvaluator)"
MIN_TRIALS = 5  # complete trials with the parameter; fewer and PED-ANOVA's top set is one or two trials
TOP_TRIALS = 5  # aim for this many trials in PED-ANOVA's top quantile
PER_SCHEDULE_PARAMS = ("initial_lr", "warmup_fraction")
COLUMNS = ["scope", "parameter", "trials", "importance", "note"]


def importances(trials: list[optuna.trial.FrozenTrial], direction: str) -> pd.DataFrame:
    """One row per (scope, parameter): scope ``"all"`` or a schedule type; ``importance`` is a
    share of the scope's ranked parameters (NaN with a ``note`` when not computed)."""
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE
            and t.value is not None and math.isfinite(t.value)]
    names = list(dict.fromkeys(name for t in done for name in t.params))
    rows = _scope("all", done, names, direction)
    schedules = list(dict.fromkeys(t.params.get("schedule") for t in done if t.params.get("schedule")))
    for schedule in schedules:
        group = [t for t in done if t.params.get("schedule") == schedule]
        if len(group) >= MIN_TRIALS:
            own = (*PER_SCHEDULE_PARAMS, *FAMILY_PARAMS.get(schedule, ()), *OPTIONAL_PARAMS.get(schedule, ()))
            rows += _scope(schedule, group, [p for p in own if p in names], direction)
    return pd.DataFrame(rows, columns=COLUMNS)


def ranked(table: pd.DataFrame, scope: str = "all") -> dict[str, float]:
    """``{parameter: share}`` of the parameters ranked in ``scope``, most important first."""
    rows = table[(table["scope"] == scope) & table["importance"].notna()]
    return {r.parameter: float(r.importance) for r in rows.itertuples()}


def _scope(scope: str, trials: list[optuna.trial.FrozenTrial], names: list[str], direction: str) -> list[dict]:
    rows, raw = [], {}
    for name in names:
        having = [t for t in trials if name in t.params]
        row = {"scope": scope, "parameter": name, "trials": len(having), "importance": math.nan, "note": ""}
        if len(having) < MIN_TRIALS:
            row["note"] = f"too few trials ({len(having)} complete with it; needs {MIN_TRIALS})"
        elif len({t.value for t in having}) < 2:
            row["note"] = "every trial with it has the same value"
        elif len({repr(t.params[name]) for t in having}) < 2:
            row["note"] = "one value only"
        else:
            score = _ped_anova(having, name, direction)
            if score is None:
                row["note"] = "PED-ANOVA failed"
            else:
                raw[name] = score
        rows.append(row)
    total = sum(raw.values())
    for row in rows:
        if row["parameter"] in raw:
            row["importance"] = raw[row["parameter"]] / total if total > 0 else 0.0
    # Ranked parameters first, most important first; the unranked keep their order.
    return sorted(rows, key=lambda r: math.inf if math.isnan(r["importance"]) else -r["importance"])


def _ped_anova(trials: list[optuna.trial.FrozenTrial], name: str, direction: str) -> float | None:
    """PED-ANOVA's unnormalised score of ``name`` over ``trials`` (all of which have it)."""
    # Only what PED-ANOVA reads, on an in-memory scratch study: copying histories and
    # attrs, or going back to the storage for each call, would cost more than the analysis.
    scratch_trials = [optuna.trial.create_trial(value=t.value, params={name: t.params[name]},
                                                distributions={name: t.distributions[name]}) for t in trials]
    quantile = min(0.5, max(0.1, TOP_TRIALS / len(trials)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PED-ANOVA warns about small regimes; the table says how many trials
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line
        try:
            scratch = optuna.create_study(direction=direction)
            scratch.add_trials(scratch_trials)
            evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=quantile)
            result = optuna.importance.get_param_importances(scratch, evaluator=evaluator, normalize=False)
        except Exception as exc:  # noqa: BLE001 - importances are an extra; a report must still appear
            log.warning("importance of %s failed: %s", name, exc)
            return None
        finally:
            optuna.logging.set_verbosity(verbosity)
    return float(result.get(name, 0.0))
