"""``sweep status`` as text: a table of studies, or one study in detail. No Keras here."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from sweep import attrs
from sweep.errors import StudyError
from sweep.storage.database import STUDIES_DIR, make_storage, mask_url, sqlite_path
from sweep.storage.records import read_config

log = logging.getLogger(__name__)

_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL)


def study_table(storage_url: str | None = None) -> str:
    """One row per study: in ``storage_url``, or in every ``studies/*.db``."""
    urls = [storage_url] if storage_url else [f"sqlite:///{path}" for path in sorted(STUDIES_DIR.glob("*.db"))]
    rows, skipped = [], []
    for url in urls:
        try:
            storage = make_storage(url, create=False)
        except StudyError as exc:
            if storage_url:
                raise
            skipped.append(exc)  # one stray file in studies/ must not hide every other study
            continue
        for summary in storage.get_all_studies():
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            rows.append(_row(study, url))
    if skipped and not rows:
        raise skipped[0]
    for exc in skipped:
        log.warning("skipped: %s", exc)
    if not rows:
        where = mask_url(storage_url) if storage_url else f"{STUDIES_DIR}/"
        return f"no studies in {where}; start one with 'sweep run CONFIG'"
    header = ["study", "storage", "complete", "pruned", "running", "waiting", "failed", "best", "budget left"]
    return _format_table(header, rows)


def _row(study: optuna.Study, url: str) -> list[str]:
    counts = count_states(study)
    total = int(study.user_attrs.get(attrs.N_TRIALS, 0))
    finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    return [
        study.study_name,
        shown_url(url),
        *(str(counts[state]) for state in _STATES),
        _best(study),
        str(max(total - finished, 0)),
    ]


def shown_url(url: str) -> str:
    """``url`` as a row shows it: masked, and a SQLite file by its absolute path (a relative
    one means nothing once you are in another folder)."""
    path = sqlite_path(url)
    if path is not None and not path.is_absolute():
        url = f"sqlite:///{path.resolve()}"
    return mask_url(url)


def count_states(study: optuna.Study) -> Counter:
    """Trials per state; surplus trials (asked after the budget was taken, never trained) left out."""
    return Counter(t.state for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(attrs.SURPLUS))


def _best(study: optuna.Study) -> str:
    try:
        return f"{study.best_value:.4f}"
    except ValueError:
        return "-"


def study_detail(name: str, storage_url: str | None = None) -> str:
    from sweep.report.data.source import open_study_for_reading  # never holds up the workers' writes

    study, _ = open_study_for_reading(name, storage_url)
    counts = count_states(study)
    total = int(study.user_attrs.get(attrs.N_TRIALS, 0))
    finished = counts[TrialState.COMPLETE] + counts[TrialState.PRUNED]
    metric = (read_config(study) or {}).get("study", {}).get("metric", "value")
    lines = [
        f"study {name}: {finished}/{total} trials finished "
        f"({counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} pruned), "
        f"{counts[TrialState.RUNNING]} running, {counts[TrialState.WAITING]} waiting, {counts[TrialState.FAIL]} failed",
    ]
    lr_finder = study.user_attrs.get(attrs.LR_FINDER)
    if lr_finder:
        lines.append(f"LR range test: suggestion {lr_finder['suggestion']:.3g} ({lr_finder['method']}), "
                     f"bounds {lr_finder['lower']:.3g} to {lr_finder['upper']:.3g}")
    try:
        best = study.best_trial
        lines.append(f"best {metric} {best.value:.4f} (trial {best.number}, "
                     f"{best.user_attrs.get(attrs.EPOCHS_RUN, '?')} epochs):")
        lines.extend(f"  {key}: {_fmt(value)}" for key, value in best.params.items())
    except ValueError:
        lines.append("no complete trial yet")
    dropped = [t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.user_attrs.get(attrs.DROPPED)]
    for trial in dropped:
        lines.append(f"dropped: trial {trial.number} ({' '.join(f'{k}={_fmt(v)}' for k, v in trial.params.items())}): "
                     f"{trial.user_attrs[attrs.DROPPED]}")
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if running:
        lines.append("running:")
        rows = [[str(t.number), str(t.user_attrs.get(attrs.WORKER, "?")),
                 str(t.user_attrs.get(attrs.EPOCHS_RUN, 0)), _fmt(_last(t.intermediate_values)),
                 " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())] for t in running]
        lines.append(_format_table(["trial", "worker", "epochs", metric, "params"], rows, indent="  "))
    return "\n".join(lines)


def _last(values: dict[int, float]) -> float:
    return values[max(values)] if values else math.nan


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _format_table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    return "\n".join(indent + line for line in lines)
