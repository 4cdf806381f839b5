"""The Python API: ``sweep.run``, ``sweep.load``, ``sweep.lr_find`` and what they return.

A facade over the same layers the CLI drives (config, ``sweep.study``, ``sweep.report``),
for notebooks and scripts with their model and arrays in memory: no second engine. It
sits beside ``sweep.commands`` (both above ``sweep.study``); neither imports the other
(import-linter checks it). Modules: ``inputs`` (config, overrides, the caller's model and
arrays), ``running`` (run, load), ``study`` (Study, Report), ``lr_find``, ``progress``.
"""

from sweep.api.progress import import_tqdm

import_tqdm()  # first, quietly: Optuna imports tqdm.auto, which warns in a notebook without ipywidgets

from sweep.api.lr_find import LRFinderResult, lr_find  # noqa: E402
from sweep.api.running import load, run  # noqa: E402
from sweep.api.study import Report, Study  # noqa: E402

__all__ = ["LRFinderResult", "Report", "Study", "load", "lr_find", "run"]
