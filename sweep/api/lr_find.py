"""``sweep.lr_find``: the LR range test on the caller's model and arrays (fastai's ``lr_find``).

The same test a study runs when it is created (``sweep.search.lr_finder.run_range_test``),
on the training part of the same seeded split, with the study's defaults
(``configs``' ``lr_finder`` section) unless ``options`` say otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sweep.errors import ConfigError

# lr_find's options and the config fields they set.
OPTIONS = {
    "start_lr": "lr_finder.start_lr", "end_lr": "lr_finder.end_lr", "num_steps": "lr_finder.num_steps",
    "smoothing": "lr_finder.smoothing", "diverge_factor": "lr_finder.diverge_factor",
    "suggestion": "lr_finder.suggestion", "batch_size": "train.batch_size", "seed": "study.seed",
    "validation_fraction": "data.validation_fraction", "num_classes": "data.num_classes",
    "from_logits": "model.from_logits",
}


@dataclass(frozen=True)
class LRFinderResult:
    """A range test: the ``suggestion`` (by ``method``), its ``bounds``, each rule's
    suggestion, and the ``curve`` (a DataFrame: lr, loss, smoothed). ``plot()`` draws it."""

    suggestion: float
    bounds: tuple[float, float]
    method: str
    suggestions: dict[str, float]
    curve: Any  # pandas.DataFrame
    seconds: float
    diverged_at: float | None
    raw: dict[str, Any] = field(repr=False)  # lr_finder.json's content

    def plot(self) -> Any:
        """The curve, suggestions and bounds as a matplotlib ``Figure`` (the report's drawing)."""
        from sweep.search.lr_finder_plot import lr_finder_figure

        return lr_finder_figure(self.raw)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


def lr_find(model: Callable[..., Any] | None, x: Any, y: Any, *, config: str | Mapping | Any = None,
            **options: Any) -> LRFinderResult:
    """Run the LR range test on ``model`` (a builder ``(input_shape, num_classes) ->
    keras.Model``; None: the built-in CNN) with arrays ``x``, ``y``.

    ``options``: ``start_lr``, ``end_lr``, ``num_steps``, ``smoothing``, ``diverge_factor``,
    ``suggestion`` (valley | steep | minimum), ``batch_size``, ``seed``,
    ``validation_fraction``, ``num_classes``, ``from_logits``; ``config`` gives the rest
    (a YAML path, a dict or a ``Config``), as for ``sweep.run``.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"lr_find: unknown option {unknown[0]!r}; expected one of: {', '.join(OPTIONS)}")
    import pandas as pd

    from sweep.api.inputs import resolve
    from sweep.api.running import prepare

    resolved = resolve(config, {OPTIONS[key]: value for key, value in options.items()}, model=model,
                       data=(x, y))
    prepare()
    from sweep.search.lr_finder import run_range_test
    from sweep.training.data import load_dataset

    data = load_dataset(resolved.data, resolved.study.seed, resolved.study.code_dir)
    result = run_range_test(resolved, data, seed=resolved.study.seed).to_dict()
    curve = pd.DataFrame({"lr": result["lrs"], "loss": result["losses"],
                          "smoothed": result.get("smoothed") or [None] * len(result["lrs"])}, dtype=float)
    return LRFinderResult(suggestion=float(result["suggestion"]), bounds=(float(result["lower"]), float(result["upper"])),
                          method=result["method"], suggestions=dict(result.get("suggestions") or {}), curve=curve,
                          seconds=float(result["seconds"]), diverged_at=result.get("diverged_at"), raw=result)
