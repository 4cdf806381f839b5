"""What a study records about itself at creation (and after ``--force``): the range test's
summary with its curve as an artifact, the model, the package versions. Names and where
each record lives: ``sweep.attrs`` and ``sweep.storage.records``."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import optuna

from sweep import attrs
from sweep.config import Config
from sweep.storage.records import set_study_attr

LR_FINDER_ARTIFACT = "lr_finder.json"

# What the study attr keeps of a range test: everything but the curves (lrs, losses,
# smoothed: about 6 KB at 100 steps), which go to the artifact store. Under 400 characters.
LR_FINDER_SUMMARY_KEYS = ("method", "suggestion", "lower", "upper", "seconds", "suggestions", "num_steps",
                          "diverged_at", "batch_size", "seed", "optimizer")


def artifact_location(config: Config) -> str | None:
    """Where the study's artifacts live: ``study.checkpoint_store`` when the config has it."""
    return config.study.checkpoint_store


def lr_finder_summary(study: optuna.Study, lr_result: dict[str, Any], location: str | None,
                      artifact: str | None = None) -> dict[str, Any]:
    """The range test's short summary for the ``LR_FINDER`` attr, its curve uploaded as the
    study artifact ``lr_finder.json`` (``artifact_id``): optuna-dashboard and Optuna's CLI
    cut or widen rows on long attrs, and cut every attr at 1,024 characters."""
    from sweep.storage.artifacts import upload_json

    artifact = artifact or LR_FINDER_ARTIFACT
    summary = {key: lr_result[key] for key in LR_FINDER_SUMMARY_KEYS if key in lr_result}
    summary["artifact_id"] = upload_json(study, artifact, lr_result, location)
    summary["artifact"] = artifact
    return summary


def refresh_model_record(study: optuna.Study, config: Config) -> None:
    """After ``--force`` adopted other data, model or code: record the model trials train from now on."""
    from sweep.training.data import load_dataset

    data = load_dataset(config.data, config.study.seed, config.study.code_dir)
    set_study_attr(study, attrs.MODEL, model_record(config, data))


def model_record(config: Config, data: Any) -> dict[str, Any]:
    """The ``MODEL`` record: the model ``config`` builds for ``data`` (a ``Dataset``)."""
    from sweep.training.model import make_model, model_name

    model = make_model(config, data.input_shape, data.num_classes, data.labels)
    return {"name": model_name(config), "parameters": int(model.count_params()),
            "input_shape": list(data.input_shape), "num_classes": data.num_classes}


def package_versions() -> dict[str, str]:
    """Versions at the study's creation, and Keras' backend (figures depend on it; GUIDE §5)."""
    import keras

    versions = {"python": platform.python_version()}
    for package in ("sweep", "keras", "tensorflow", "jax", "torch", "optuna", "numpy", "sqlalchemy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    versions["keras backend"] = keras.backend.backend()
    return versions
