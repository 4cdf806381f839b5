"""Report data: a study read once into the tables and series every part of a report uses.

``collect(study, storage_url)`` returns a ``ReportData``; figures, findings and the
HTML and Markdown renderers only read it (GUIDE §3 item 9: compute apart from drawing).
Trials marked ``SURPLUS`` (asked for after the budget was taken, never trained) are
left out everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd

from sweep import attrs
from sweep.config import SCHEDULES
from sweep.report.analysis import importance, stats, uncertainty
from sweep.report.data.stored import lr_finder_record, stored_evaluations, validation_size
from sweep.storage.database import mask_url
from sweep.storage.records import study_attrs

TOP_K = 5
CSV_COLUMNS = [
    "number", "state", "value", *stats.PARAMS, "epochs_run", "best_epoch", "train_s", "duration_s",
    "started", "completed", "elapsed_s", "prune_reason", "seeded_by_prior", "retried_from",
    "resumed_from_epoch", "seed", "total_steps", "worker", "dropped",
]
_INT_COLUMNS = ("decay_steps", "epochs_run", "best_epoch", "retried_from", "resumed_from_epoch", "seed",
                "total_steps")


@dataclass
class ReportData:
    """Everything a study's report shows. ``trials`` holds one row per trial (CSV_COLUMNS)."""

    name: str
    storage: str  # masked: safe to show
    metric: str
    direction: str  # "maximize" | "minimize"
    objective: str | None
    config: dict | None
    search_space: dict | None
    lr_finder: dict | None
    prior: dict | None
    versions: dict
    budget: int | None
    evaluations: list[dict]
    epochs: int | None
    steps_per_epoch: int | None
    schedules: list[str]
    lr_range: tuple[float, float] | None
    trials: pd.DataFrame
    curves: dict[int, tuple[np.ndarray, np.ndarray]]  # epoch, metric: the intermediate values
    best_by_number: pd.DataFrame
    best_by_time: pd.DataFrame
    schedule_table: pd.DataFrame
    top: pd.DataFrame  # the TOP_K best COMPLETE trials, best first
    lr_curves: dict[int, tuple[np.ndarray, np.ndarray]]
    top_curves: dict[int, tuple[np.ndarray, np.ndarray]]  # epoch, the study's metric of the top trials
    importances: dict[str, float] | None  # ranked parameters over all trials: share, most important first
    importance_note: str
    pruning: stats.PruningSavings
    num_validation: int | None = None  # validation images each score is measured on
    validation_note: str = "unknown"  # "stored", or how the number was estimated
    importance_table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=importance.COLUMNS))
    extra_params: list[str] = field(default_factory=list)
    optimizer_table: pd.DataFrame = field(default_factory=pd.DataFrame)  # by optimizer, when it was searched

    @property
    def best(self) -> pd.Series | None:
        """The best COMPLETE trial's row (``study.best_trial``), or None."""
        return self.top.iloc[0] if len(self.top) else None

    @property
    def se(self) -> float:
        """Binomial standard error of the best score (NaN unless the metric is an accuracy
        and the validation size is known)."""
        if self.best is None or self.metric != "val_accuracy":
            return math.nan
        return uncertainty.binomial_se(float(self.best["value"]), self.num_validation)

    @property
    def best_params(self) -> dict[str, Any] | None:
        return None if self.best is None else stats.trial_params(self.best)

    def count(self, state: str) -> int:
        return int((self.trials["state"] == state).sum())


def collect(study: optuna.Study, storage_url: str = "") -> ReportData:
    """Read ``study`` once and compute everything its report shows."""
    records = study_attrs(study)
    stored = attrs.read_config(records)
    config = _masked(stored) if stored is not None else None
    section = (config or {}).get
    direction = "maximize" if study.direction == optuna.study.StudyDirection.MAXIMIZE else "minimize"
    epochs = (section("train") or {}).get("epochs")
    batch = (section("train") or {}).get("batch_size")
    num_train = records.get(attrs.NUM_TRAIN)
    steps_per_epoch = math.ceil(num_train / batch) if num_train and batch else None

    trials = [t for t in study.get_trials(deepcopy=False) if not _surplus(t)]
    frame, curves, extra = trials_frame(
        trials, direction, steps_per_epoch * epochs if steps_per_epoch and epochs else None
    )
    search_space = records.get(attrs.SEARCH_SPACE) if isinstance(records.get(attrs.SEARCH_SPACE), dict) else None
    configured = list((search_space or {}).get("schedules") or (section("search") or {}).get("schedules") or [])
    seen = [s for s in SCHEDULES if s in set(frame["schedule"].dropna())]
    schedules = configured + [s for s in seen if s not in configured]
    num_validation, validation_note = validation_size(records, config)
    accuracy_n = num_validation if metric_name(config) == "val_accuracy" else None
    top = stats.ranked(frame, direction).head(TOP_K)
    importance_table = importance.importances(trials, direction)
    found = importance.ranked(importance_table) or None
    note = (f"{importance.EVALUATOR}, each parameter over the complete trials that have it "
            f"(at least {importance.MIN_TRIALS})")
    metric = metric_name(config)

    return ReportData(
        name=study.study_name,
        storage=mask_url(storage_url),
        metric=metric,
        direction=direction,
        objective=(section("study") or {}).get("objective"),
        config=config,
        search_space=search_space,
        lr_finder=lr_finder_record(study.study_name, records.get(attrs.LR_FINDER), config),
        prior=records.get(attrs.PRIOR) if isinstance(records.get(attrs.PRIOR), dict) else None,
        versions=records.get(attrs.VERSIONS) if isinstance(records.get(attrs.VERSIONS), dict) else {},
        budget=records.get(attrs.N_TRIALS),
        evaluations=stored_evaluations(records),
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        schedules=schedules,
        lr_range=_lr_range(search_space, config),
        trials=frame,
        curves=curves,
        best_by_number=stats.best_so_far(frame, direction, by="number"),
        best_by_time=stats.best_so_far(frame, direction, by="elapsed_s"),
        schedule_table=stats.schedule_summary(frame, schedules, direction, accuracy_n),
        top=top,
        lr_curves=stats.lr_curves(stats.lr_curve_rows(frame, direction, TOP_K), steps_per_epoch),
        top_curves=_metric_curves(trials, top["number"].tolist(), metric, curves),
        optimizer_table=stats.optimizer_summary(frame, direction, accuracy_n),
        importances=found,
        importance_note=note,
        importance_table=importance_table,
        pruning=stats.pruning_savings(frame, epochs),
        extra_params=extra,
        num_validation=num_validation,
        validation_note=validation_note,
    )


def metric_name(config: dict | None) -> str:
    return ((config or {}).get("study") or {}).get("metric", "value")




def trials_frame(
    trials: list[optuna.trial.FrozenTrial], direction: str = "maximize", default_total_steps: int | None = None
) -> tuple[pd.DataFrame, dict[int, tuple[np.ndarray, np.ndarray]], list[str]]:
    """(the trials table, each trial's per-epoch metric curve, parameters beyond PARAMS)."""
    rows, curves = [], {}
    extra: list[str] = []
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    t0 = min(starts) if starts else None
    for t in trials:
        ua = t.user_attrs
        epochs, values = _curve(t.intermediate_values)
        if len(epochs):
            curves[t.number] = (epochs, values)
        finite = np.isfinite(values)
        best_epoch = None
        if finite.any():
            pick = np.nanargmax if direction == "maximize" else np.nanargmin
            best_epoch = int(epochs[pick(np.where(finite, values, np.nan))])
        row = {
            "number": t.number,
            "state": t.state.name,
            "value": t.values[0] if t.values else math.nan,
            **{p: t.params.get(p) for p in stats.PARAMS},
            "epochs_run": ua.get(attrs.EPOCHS_RUN, len(epochs) or None),
            "best_epoch": best_epoch,
            "train_s": ua.get(attrs.SECONDS),
            "duration_s": t.duration.total_seconds() if t.duration is not None else None,
            "started": t.datetime_start,
            "completed": t.datetime_complete,
            "elapsed_s": (t.datetime_complete - t0).total_seconds() if t.datetime_complete and t0 else None,
            "prune_reason": (ua.get(attrs.PRUNE_REASON) or "pruned") if t.state.name == "PRUNED" else None,
            "seeded_by_prior": bool(ua.get(attrs.SEEDED_BY_PRIOR, False)),
            "retried_from": t.system_attrs.get("failed_trial"),
            "dropped": ua.get(attrs.DROPPED),  # why its configuration was given up (worker deaths)
            "resumed_from_epoch": ua.get(attrs.RESUMED_FROM_EPOCH),
            "seed": ua.get(attrs.SEED),
            "total_steps": ua.get(attrs.TOTAL_STEPS, default_total_steps),
            "worker": ua.get(attrs.WORKER),
        }
        for name, value in t.params.items():
            if name not in stats.PARAMS:
                row[name] = value
                if name not in extra:
                    extra.append(name)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=CSV_COLUMNS + extra)
    for column in _INT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    for column in ("value", "initial_lr", "warmup_fraction", "decay_rate", "train_s", "duration_s", "elapsed_s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["seeded_by_prior"] = frame["seeded_by_prior"].astype(bool)
    return frame.sort_values("number", kind="stable").reset_index(drop=True), curves, extra


def _curve(intermediate: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    steps = sorted(intermediate)
    return np.asarray(steps, dtype=np.int64), np.asarray([intermediate[s] for s in steps], dtype=float)


def _metric_curves(trials: list[optuna.trial.FrozenTrial], numbers: list[int], metric: str,
                   curves: dict[int, tuple[np.ndarray, np.ndarray]]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per-epoch ``metric`` (the study's: val_accuracy, val_mae, ...) of trials ``numbers`` from
    their history; the intermediate values where a trial has no history."""
    by_number = {t.number: t for t in trials}
    result = {}
    for number in numbers:
        history = by_number[number].user_attrs.get(attrs.HISTORY) or []
        points = [(e["epoch"], e[metric]) for e in history if isinstance(e, dict) and "epoch" in e and metric in e]
        if points:
            epochs, values = zip(*points)
            result[number] = (np.asarray(epochs, dtype=np.int64), np.asarray(values, dtype=float))
        elif number in curves:
            result[number] = curves[number]
    return result


def _surplus(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state == optuna.trial.TrialState.FAIL and bool(trial.user_attrs.get(attrs.SURPLUS))


def _masked(config: dict) -> dict:
    """The config with any password in ``study.storage`` masked (sweep run stores it masked
    already; a study written by other means might not)."""
    study = config.get("study")
    if isinstance(study, dict) and isinstance(study.get("storage"), str):
        return {**config, "study": {**study, "storage": mask_url(study["storage"])}}
    return config


def _lr_range(search_space: dict | None, config: dict | None) -> tuple[float, float] | None:
    for source in ((search_space or {}).get("initial_lr"), ((config or {}).get("search") or {}).get("initial_lr")):
        if isinstance(source, dict) and source.get("low") and source.get("high"):
            return float(source["low"]), float(source["high"])
    return None
