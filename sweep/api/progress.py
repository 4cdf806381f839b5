"""Progress where people look: a ``tqdm.auto`` bar per study in a notebook (trials done of
the budget, best so far, time left; epochs of the running trial when asked), and in a
terminal the log lines ``sweep run`` prints.

Library code never prints: the bar is the one exception the API allows, and log lines
reach a terminal only when the caller configured no logging of their own.
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (where a bar beats log lines)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def import_tqdm() -> Any:
    with warnings.catch_warnings():  # without ipywidgets tqdm.auto warns, then draws a text bar
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm


class StudyProgress:
    """A bar over the study's budget; ``epochs=True`` adds one over the running trial's epochs.

    ``update(study)`` after each finished trial (or each poll, with worker processes),
    ``epoch(trial, entry)`` after each epoch trained in this process.
    """

    def __init__(self, study: Any, *, epochs_per_trial: int, epochs: bool = False,
                 metric: str = "val_accuracy") -> None:
        from sweep.study.budget import budget

        tqdm = import_tqdm()
        status = budget(study)
        self._budget = budget
        self._bar = tqdm(total=status.total, initial=status.finished, desc=study.study_name, unit="trial",
                         dynamic_ncols=True)
        self._epochs = tqdm(total=epochs_per_trial, desc="epochs", unit="epoch", leave=False,
                            dynamic_ncols=True) if epochs else None
        self._trial: int | None = None
        self._metric = metric  # the study's: shown for each epoch
        self.update(study)

    def update(self, study: Any) -> None:
        status = self._budget(study)
        self._bar.total = status.total
        self._bar.update(status.finished - self._bar.n)
        try:
            self._bar.set_postfix_str(f"best {study.best_value:.4f} (trial {study.best_trial.number})")
        except ValueError:
            self._bar.set_postfix_str("no complete trial yet")

    def epoch(self, trial: int, entry: Any) -> None:
        if self._epochs is None:
            return
        if trial != self._trial:
            self._trial = trial
            self._epochs.reset()
            self._epochs.set_description(f"trial {trial}")
        self._epochs.update(entry.epoch - self._epochs.n)
        value = entry.value(self._metric) if callable(getattr(entry, "value", None)) else \
            getattr(entry, self._metric, math.nan)
        self._epochs.set_postfix_str(f"{self._metric} {value:.4f}" if math.isfinite(value) else "")

    def close(self) -> None:
        if self._epochs is not None:
            self._epochs.close()
        self._bar.close()


@contextmanager
def terminal_log_lines() -> Iterator[None]:
    """``sweep run``'s log lines on stderr for the call, unless the caller set up logging."""
    sweep_log, root = logging.getLogger("sweep"), logging.getLogger()
    if sweep_log.handlers or root.handlers:
        yield
        return
    from sweep.logs import setup_logging

    saved = sweep_log.level, sweep_log.propagate
    setup_logging(logging.INFO)
    try:
        yield
    finally:
        sweep_log.handlers[:] = []
        sweep_log.setLevel(saved[0])
        sweep_log.propagate = saved[1]
