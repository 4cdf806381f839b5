"""sweep: learning-rate and schedule sweeps for Keras, seeded by an LR range test.

From Python (a notebook, a script)::

    import sweep
    study = sweep.run({"study": {"name": "demo", "n_trials": 20}}, model=build, data=(x, y))
    study.best_params, study.report()        # the report shows inline in Jupyter
    sweep.lr_find(build, x, y).plot()
    sweep.load("demo").evaluate(top=3)

The names below come from ``sweep.api`` when first used, so ``import sweep`` (and
``sweep --help``) stays light.
"""

from sweep.errors import ConfigError, DataError, StudyError, SweepError, TrainingError

__version__ = "0.1.0"
_API = ["LRFinderResult", "Report", "Study", "load", "lr_find", "run"]
__all__ = [*_API, "ConfigError", "DataError", "StudyError", "SweepError", "TrainingError"]


def __getattr__(name: str):
    if name in _API:
        import sweep.api

        return getattr(sweep.api, name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
