"""Creating a study, or loading it and checking that the config still matches.

A study records its inputs when it is created (GUIDE §3.10): the resolved config, the
search space it uses from then on, the LR range test's result and the prior drawn from
it, the package versions, the budget and the training-set size. Resuming reads them
back, so it never reruns the range test and works with no config file at all.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import optuna

from sweep import attrs
from sweep.config import Config, apply_overrides, config_from_dict
from sweep.errors import ConfigError, StudyError
from sweep.study.code import check_code, code_fingerprint
from sweep.study.leftovers import remove_leftover_checkpoints, retire_checkpoints
from sweep.study.records import (artifact_location, lr_finder_summary, model_record, package_versions,
                                 refresh_model_record)
from sweep.search.space import clip_params, space_from_config
from sweep.storage.database import load_study, make_storage, mask_url, sqlite_path
from sweep.storage.records import read_config, set_study_attr, study_attrs
from sweep.training.entry_points import is_in_memory

log = logging.getLogger(__name__)

# Config fields that may change between runs of one study: they do not change what a
# trial means (the budget is the study's to change; data.path differs between machines).
# train.steps_per_execution changes how fast, not what, a trial trains. study.code_dir is
# where the user's modules are on this machine; their content is checked by sweep.study.code.
MUTABLE_FIELDS = frozenset(
    {"study.n_trials", "study.workers", "study.timeout_s", "study.storage", "study.checkpoint_store", "data.path",
     "train.steps_per_execution", "study.code_dir"}
)
# The range test runs once, when the study is created; its stored result and prior are
# what the study uses from then on, so later lr_finder settings cannot change it.
CREATION_ONLY_PREFIX = "lr_finder."


def stored_config(study: optuna.Study) -> Config:
    raw = read_config(study)
    if raw is None:
        raise StudyError(
            f"study {study.study_name!r} has no sweep config: it was not created by sweep, or its creation "
            "was interrupted; delete it (optuna delete-study) or choose another study.name"
        )
    return config_from_dict(raw, f"study {study.study_name}")


def storable_config(config: Config) -> dict[str, Any]:
    """The config as the study stores it: ``study.storage`` without its password.

    Reports, best_config.yaml and optuna-dashboard show the stored config to whoever
    reads them; nothing connects with it (resume takes the URL from --storage).
    """
    raw = config.to_dict()
    if raw["study"]["storage"]:
        raw["study"]["storage"] = mask_url(raw["study"]["storage"])
    return raw


def store_config(study: optuna.Study, config: Config) -> None:
    """Store ``config`` in the study (a system attr: out of `optuna studies` rows)."""
    set_study_attr(study, attrs.CONFIG, storable_config(config))


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``field: old -> new`` for each field that differs and matters to the search."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    # Arrays handed to sweep.run are named by their hash; whether they are the study's is
    # the data fingerprint's to say (check_training_set), in its own words.
    arrays = is_in_memory(flat_old.get("data.loader")) and is_in_memory(flat_new.get("data.loader"))
    return [
        f"{key}: {flat_old.get(key)!r} -> {flat_new.get(key)!r}"
        for key in sorted(set(flat_old) | set(flat_new))
        if key not in MUTABLE_FIELDS and not key.startswith(CREATION_ONLY_PREFIX) and flat_old.get(key) != flat_new.get(key)
        and not (arrays and key == "data.loader")
    ]


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def open_study(config: Config, storage_url: str, *, force: bool = False, n_trials: int | None = None) -> optuna.Study:
    """The config's study in ``storage_url``: created (range test, prior, seeds) or loaded.

    A loaded study must have been created with the same search-relevant config;
    ``force`` adopts the new config instead of refusing. ``n_trials`` (or the
    config's ``study.n_trials``) becomes the study-wide budget.
    """
    name = config.study.name
    storage = _existing_storage(storage_url)
    if storage is not None and name in {s.study_name for s in storage.get_all_studies()}:
        study = optuna.load_study(study_name=name, storage=storage)
        _check_same_config(study, config, force)
        check_data(study, config)
    else:
        study = _create(config, storage_url)
    ensure_study_uuid(study)
    budget = n_trials if n_trials is not None else config.study.n_trials
    if study.user_attrs.get(attrs.N_TRIALS) != budget:
        set_study_attr(study, attrs.N_TRIALS, budget)
    return study


def reopen_study(name: str, storage_url: str | None, *, n_trials: int | None = None,
                 overrides: list[str] | tuple[str, ...] = (), force: bool = False) -> tuple[optuna.Study, Config]:
    """An existing study and the config stored in it, with ``overrides`` (``sweep resume``).

    The code the config names is resolved and checked (``sweep.study.code``), and the data's
    size against the study's, before anything is written: a stored config naming anything
    but the user's own modules, or data of another size, is refused.
    """
    study = load_study(name, storage_url)
    config = config_from_dict(apply_overrides(stored_config(study).to_dict(), list(overrides), "--set"), "--set")
    code_changed = check_code(study, config, force=force)
    check_data(study, config)
    if code_changed:
        refresh_model_record(study, config)
        retire_checkpoints(study, config.study.checkpoint_store, "its model's code changed (--force)")
    ensure_study_uuid(study)
    if n_trials is not None:
        set_study_attr(study, attrs.N_TRIALS, n_trials)
    return study, config


def _check_same_config(study: optuna.Study, config: Config, force: bool) -> None:
    old = stored_config(study)
    differences = config_differences(old.to_dict(), config.to_dict())
    if differences and not force:
        raise StudyError(
            f"the config differs from the one study {study.study_name!r} was created with: "
            + "; ".join(differences)
            + f" (run 'sweep resume {study.study_name}' to continue with the stored config, "
            "choose a new study.name, or pass --force to adopt this config)"
        )
    code_changed = check_code(study, config, force=force)
    if code_changed or (differences and (old.data != config.data or old.model != config.model)):
        refresh_model_record(study, config)
    if code_changed or old.model != config.model or _trained_by(old) != _trained_by(config):
        retire_checkpoints(study, config.study.checkpoint_store,
                           "--force adopted another model, model code or optimizer")
    if not differences:
        return
    log.warning("adopting a changed config for study %s (--force): %s", study.study_name, "; ".join(differences))
    if old.data != config.data:
        from sweep.training.data import load_dataset

        data = load_dataset(config.data, config.study.seed, config.study.code_dir)
        set_study_attr(study, attrs.NUM_TRAIN, data.num_train)
        set_study_attr(study, attrs.DATA_FINGERPRINT, data.fingerprint)
    store_config(study, config)
    if old.search != config.search:
        from sweep.search.prior import plan_prior

        records = study_attrs(study)
        tests = records.get(attrs.LR_FINDERS) if config.search.optimizers else None
        space, _, _ = plan_prior(config, space_from_config(config.search), tests or records.get(attrs.LR_FINDER))
        set_study_attr(study, attrs.SEARCH_SPACE, space)


def _trained_by(config: Config) -> dict[str, Any]:
    return config.train.model_dump(mode="json", exclude={"steps_per_execution"})


def _existing_storage(storage_url: str) -> optuna.storages.BaseStorage | None:
    """The storage if its database exists already (None: the study will be the first)."""
    path = sqlite_path(storage_url)
    if path is not None and not path.exists():
        _check_creatable(path.parent)  # fail now, not after the data and the range test
        return None
    return make_storage(storage_url, create=True)


def _check_creatable(folder: Path) -> None:
    """Raise StudyError unless ``folder`` exists or can be made; leaves nothing behind."""
    missing = []
    probe = folder
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise StudyError(f"cannot create {folder}: {probe} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"cannot create {folder}: {exc.strerror}") from None
    finally:
        for created in missing:
            try:
                created.rmdir()
            except OSError:
                pass


def _create(config: Config, storage_url: str) -> optuna.Study:
    # Everything slow or fallible (data, the range test) happens before the database or
    # the study exists, so bad data, a failed range test or an interruption leave nothing
    # behind, and another process never sees a half-made study.
    from sweep.training.data import load_dataset
    from sweep.search.prior import plan_prior

    from sweep.training.model import check_compile

    code = code_fingerprint(config)  # first: code that is not the user's is refused before it runs
    check_compile(config)  # a misspelt optimizer argument, loss or metric: one line, before the data loads
    data = load_dataset(config.data, config.study.seed, config.study.code_dir)
    model_info = model_record(config, data)  # a wrong model fails here, in one line
    log.info("model: %s, %d parameters, for %s samples of %d classes", model_info["name"], model_info["parameters"],
             data.input_shape, data.num_classes)
    lr_results: dict[str, dict] = {}
    if config.lr_finder.enabled:
        from sweep.search.lr_finder import run_range_test

        # One range test per searched optimizer: their useful rates differ by orders of magnitude.
        for optimizer in config.optimizers():
            lr_results[optimizer] = run_range_test(config, data, seed=config.study.seed, optimizer=optimizer).to_dict()
    lr_result = next(iter(lr_results.values()), None)
    searched = bool(config.search.optimizers)
    space, prior, seeds = plan_prior(config, space_from_config(config.search), lr_results if searched else lr_result)

    storage = make_storage(storage_url, create=True)
    study = optuna.create_study(study_name=config.study.name, storage=storage, direction=config.study.direction)
    own_uuid = uuid.uuid4().hex
    set_study_attr(study, attrs.STUDY_UUID, own_uuid)
    remove_leftover_checkpoints(config, storage, storage_url, own_uuid)
    for key, value in ((attrs.VERSIONS, package_versions()), (attrs.NUM_TRAIN, data.num_train), (attrs.CODE, code),
                       (attrs.MODEL, model_info), (attrs.NUM_VALIDATION, len(data.y_val)), (attrs.SEARCH_SPACE, space),
                       (attrs.DATA_FINGERPRINT, data.fingerprint)):
        set_study_attr(study, key, value)
    if lr_result is not None:
        summaries = {name: lr_finder_summary(study, result, artifact_location(config),
                                             f"lr_finder_{name}.json" if searched else None)
                     for name, result in lr_results.items()}
        set_study_attr(study, attrs.LR_FINDER, next(iter(summaries.values())))
        if searched:
            set_study_attr(study, attrs.LR_FINDERS, summaries)
    if prior is not None:
        set_study_attr(study, attrs.PRIOR, prior)
    for params in seeds:
        study.enqueue_trial(clip_params(params, space), user_attrs={attrs.SEEDED_BY_PRIOR: True})
    store_config(study, config)  # last: marks the study complete
    log.info("created study %s in %s (%d seed trials from the prior)", config.study.name, mask_url(storage_url),
             len(seeds))
    return study


def check_data(study: optuna.Study, config: Config) -> None:
    """``check_training_set`` on the config's data (loaded once per process: cached)."""
    from sweep.training.data import load_dataset

    check_training_set(study, config, load_dataset(config.data, config.study.seed, config.study.code_dir))


def check_training_set(study: optuna.Study, config: Config, data: Any) -> None:
    """Refuse data (a ``Dataset``) other than the study was created with: another number of
    training images (trials' step counts, schedules and checkpoints are laid out on it) or
    the same number with other content (its trials would mix two datasets)."""
    records = study_attrs(study)
    stored = records.get(attrs.NUM_TRAIN)
    where = f"data.path {config.data.path}" if config.data.path else f"data.source {config.data.source}"
    fix = "point data.path at the data the study was created with"
    if is_in_memory(config.data.loader):
        where, fix = "data (the arrays passed to sweep.run)", "pass the arrays the study was created with"
    if stored is not None and stored != data.num_train:
        raise ConfigError(f"{where} gives {data.num_train} training images, but study {study.study_name!r} was "
                          f"created with {stored}; {fix}")
    fingerprint = records.get(attrs.DATA_FINGERPRINT)
    if fingerprint is None:
        set_study_attr(study, attrs.DATA_FINGERPRINT, data.fingerprint)  # a study made before sweep kept one
    elif fingerprint != data.fingerprint:
        raise ConfigError(f"{where} gives other images than study {study.study_name!r} was created with (the same "
                          f"{data.num_train} training images in number, another content: fingerprint "
                          f"{data.fingerprint[:12]} against {fingerprint[:12]}); {fix}")


def ensure_study_uuid(study: optuna.Study) -> str:
    """The study's ``attrs.STUDY_UUID``, given now to a study made before sweep kept one."""
    if attrs.STUDY_UUID not in study.user_attrs:
        set_study_attr(study, attrs.STUDY_UUID, uuid.uuid4().hex)
    return study.user_attrs[attrs.STUDY_UUID]
