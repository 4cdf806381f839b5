"""``Study`` and ``Report``: a stored study as a notebook sees it.

A ``Study`` is a view of the study in its storage (nothing is cached: every property
reads the storage, so it sees what other workers and machines did). Its report is the
``results/<name>/`` folder ``sweep report`` writes, and shows inline in Jupyter.
"""

from __future__ import annotations

import hashlib
import html
import math
from pathlib import Path
from typing import Any

import optuna

from sweep.errors import StudyError

RESULTS_DIR = Path("results")
# Optuna's own trials_dataframe columns the API keeps (sweep's columns say the rest, readably:
# its user attrs hold per-epoch histories, its system attrs the sampler's internals).
OPTUNA_COLUMNS = ("number", "value", "datetime_start", "datetime_complete", "duration", "params", "state")
SAME_AS_OPTUNA = ("started", "completed", "duration_s")  # trials.csv's names for Optuna's datetime columns


class Report:
    """A written report folder: ``path`` is its ``index.html``; in Jupyter it shows inline."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def html(self) -> str:
        """The page itself (self-contained: figures are embedded)."""
        return self.path.read_text(encoding="utf-8")

    def _repr_html_(self) -> str:
        # The very page of index.html, in an iframe so that its styles stay inside it and
        # do not restyle the notebook around it.
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" title="sweep report" '
                'style="width: 100%; height: 720px; border: 1px solid #ddd;"></iframe>')

    def __repr__(self) -> str:
        return f"Report({str(self.path)!r})"


class Study:
    """A sweep study in its storage (``sweep.load`` or ``sweep.run`` give one).

    ``optuna`` is the underlying ``optuna.Study``, for anything this class does not say.
    """

    def __init__(self, study: optuna.Study, storage_url: str) -> None:
        self.optuna = study
        self.storage_url = storage_url
        self._written: tuple[Path, Report, str] | None = None  # the last report, and the state it shows

    @property
    def name(self) -> str:
        return self.optuna.study_name

    @property
    def best_trial(self) -> optuna.trial.FrozenTrial:
        try:
            return self.optuna.best_trial
        except ValueError:
            raise StudyError(f"study {self.name!r} has no complete trial yet") from None

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    @property
    def best_value(self) -> float:
        return float(self.best_trial.value)

    @property
    def trials(self) -> list[optuna.trial.FrozenTrial]:
        """Every trial, as Optuna stores it (trials refused as surplus included)."""
        return self.optuna.get_trials()

    @property
    def n_trials(self) -> int:
        """The study-wide budget of finished trials."""
        from sweep.study.budget import budget

        return budget(self.optuna).total

    @property
    def n_finished(self) -> int:
        """Finished trials (complete and pruned): what the budget counts."""
        from sweep.study.budget import budget

        return budget(self.optuna).finished

    def trials_dataframe(self, **kwargs: Any) -> Any:
        """Optuna's ``trials_dataframe`` (``kwargs`` pass to it), joined on ``number`` with the
        columns sweep's ``trials.csv`` adds (epochs run, best epoch, seconds, prune reason,
        seeded by the prior, retried from, worker, ...)."""
        from sweep.report.data.collect import trials_frame

        kwargs.setdefault("attrs", OPTUNA_COLUMNS)
        frame = self.optuna.trials_dataframe(**kwargs)
        ours, _, _ = trials_frame(self.trials, self.optuna.direction.name.lower())
        known = set(frame.columns) | _param_columns(frame) | set(SAME_AS_OPTUNA)
        extra = [c for c in ours.columns if c == "number" or c not in known]
        if frame.empty:
            return ours
        return frame.merge(ours[extra], on="number", how="left")

    def evaluate(self, top: int = 1, repeats: int = 1, *, workers: int | None = None) -> Any:
        """Retrain the ``top`` best trials ``repeats`` times on training + validation data and
        score them on the test split (``sweep evaluate``); stored in the study, and returned
        as a DataFrame: one row per trial, its validation value and test score (``test_<metric>``)."""
        import pandas as pd

        from sweep.logs import import_keras_quietly, quiet_tensorflow
        from sweep.study.evaluate import evaluate_study, study_config, test_metric

        if top < 1:
            raise StudyError(f"top must be at least 1, got {top}")
        quiet_tensorflow()
        import_keras_quietly()
        results = evaluate_study(self.optuna, top, repeats, workers=workers)
        values = {t.number: t.value for t in self.optuna.get_trials(deepcopy=False)}
        score = f"test_{test_metric(study_config(self.optuna))}"  # test_accuracy, test_mae, ...
        return pd.DataFrame([{"trial": r.trial, "validation": values.get(r.trial), score: r.mean,
                              "test_sd": r.sd if len(r.runs) > 1 else math.nan, "runs": len(r.runs), **r.params}
                             for r in results])

    def report(self, out: str | Path | None = None) -> Report:
        """Write the report folder (default ``results/<name>/``, as ``sweep report``) and return it;
        the one written last is returned as it is while the study has not changed since."""
        from sweep.report import write_report

        folder = Path(out) if out else RESULTS_DIR / self.name
        state = self._state()
        if self._written and self._written[0] == folder and self._written[2] == state and self._written[1].path.is_file():
            return self._written[1]
        report = Report(write_report(self.optuna, folder, storage_url=self.storage_url))
        self._written = (folder, report, state)
        return report

    def _state(self) -> str:
        """What a report shows, in short: every trial's state and value, and the study's records."""
        from sweep.storage.records import study_attrs

        trials = [(t.number, t.state.name, t.value, t.datetime_complete and t.datetime_complete.isoformat())
                  for t in self.optuna.get_trials(deepcopy=False)]
        return hashlib.sha256(repr((trials, sorted(study_attrs(self.optuna).items(), key=str))).encode()).hexdigest()

    def __repr__(self) -> str:
        from sweep.storage.database import mask_url

        try:
            best = f", best {self.best_value:.4f} (trial {self.best_trial.number})"
        except StudyError:
            best = ""
        return f"<sweep.Study {self.name!r} in {mask_url(self.storage_url)}: {self.n_finished}/{self.n_trials} finished{best}>"


def _param_columns(frame: Any) -> set[str]:
    return {c.removeprefix("params_") for c in frame.columns if c.startswith("params_")}
