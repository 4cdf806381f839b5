"""What every run of a study does around its workers, for ``sweep run``/``resume`` and
the Python API alike: quiet Optuna's own log, and tidy up once the budget is spent."""

from __future__ import annotations

import shutil
import warnings

import optuna

from sweep import attrs
from sweep.storage.artifacts import open_artifact_store, remove_checkpoints
from sweep.storage.database import checkpoints_dir
from sweep.study.budget import budget


def quiet_optuna() -> None:
    """Our log says what each trial did; Optuna's per-trial lines and its warnings about
    the experimental heartbeat API (used on purpose, outside optimize) would only repeat it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def finish(study: optuna.Study, config) -> bool:
    """Remove the trials' checkpoints once the study is done (no trial will be continued);
    returns whether it is done."""
    status = budget(study)
    if status.finished < status.total or status.running:
        return False
    trials = study.get_trials(deepcopy=False)
    remove_checkpoints(open_artifact_store(study.study_name, config.study.checkpoint_store), trials)
    # Also a file whose worker was killed between writing and recording it (none knows its id).
    aside = {ref["artifact_id"] for t in trials for ref in t.user_attrs.get(attrs.SET_ASIDE, [])}
    uuid = study.user_attrs.get(attrs.STUDY_UUID)
    # Imported here: it loads Keras (checkpoint archives), which `sweep resume BADNAME` and
    # `sweep --help` must not pay for (tests/robustness/test_inputs.py).
    from sweep.search.checkpoints import remove_owned_checkpoints

    remove_owned_checkpoints(study.study_name, config.study.checkpoint_store,
                             lambda owner, path: owner["study"] == uuid and path.name not in aside)
    for legacy in checkpoints_dir(study.study_name).glob("trial-*"):  # written by sweep before 2026-11-30
        shutil.rmtree(legacy, ignore_errors=True)
    return True
