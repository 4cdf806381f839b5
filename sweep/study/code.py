"""The user's code in a study: fingerprinted when the study is created, checked on every later run.

A study stores its config in the database, and ``sweep resume`` (on any machine) runs
the code it names. So every run resolves the config's entry points first, through
``sweep.training.entry_points``, which refuses anything but the user's own module
files, from folders this run chose, before running any of it. The SHA-256 of the module
file each entry point names is stored in the study (``attrs.CODE``) and compared, on every
later run, with the file's bytes *before* they are imported: a changed model or loader
file changes what a trial means, so like any search-relevant config change it is refused
(unexecuted) unless the run passes ``--force``, which adopts it.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna

from sweep import attrs
from sweep.config import Config
from sweep.errors import StudyError
from sweep.storage.records import set_study_attr, study_attrs
from sweep.training.entry_points import Located, import_located, is_in_memory, locate_entry_point

log = logging.getLogger(__name__)


def locate_code(config: Config) -> dict[str, Located]:
    """Each entry point the config names, found and hashed; none of its code run."""
    loss = config.model.loss if config.model.loss and ":" in config.model.loss else None
    named = {"model.builder": config.model.builder, "data.loader": config.data.loader, "model.loss": loss}
    if is_in_memory(config.data.loader):
        del named["data.loader"]  # arrays, not code: the study's data fingerprint covers them
    return {key: locate_entry_point(spec, config.study.code_dir, key) for key, spec in named.items() if spec}


def describe(located: dict[str, Located]) -> dict[str, dict[str, str]]:
    """``{config key: {"entry_point", "file", "sha256"}}``: what a study stores."""
    return {key: {"entry_point": loc.spec, "file": str(loc.file), "sha256": loc.sha256} for key, loc in located.items()}


def code_fingerprint(config: Config) -> dict[str, dict[str, str]]:
    """``describe`` of the config's entry points, once each has imported (calling nothing)."""
    located = locate_code(config)
    for loc in located.values():
        import_located(loc)
    return describe(located)


def code_differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One entry per entry point whose defining file changed (a renamed entry point is a
    config difference, reported with the config's)."""
    differences = []
    for key in sorted(set(stored) & set(current)):
        old, new = stored[key], current[key]
        if old.get("sha256") != new.get("sha256"):
            differences.append(f"{key} source {new['file']}: changed since the study last ran it "
                               f"(sha256 {str(old.get('sha256'))[:12]} -> {new['sha256'][:12]})")
    return differences


def check_code(study: optuna.Study, config: Config, *, force: bool = False) -> list[str]:
    """Resolve ``config``'s entry points and compare their files with the study's record.

    Each file is hashed before it is imported: a changed file raises ``StudyError`` (naming
    it) unexecuted unless ``force``, which imports it and stores the new hashes. Returns the differences found (adopted when ``force``).
    """
    located = locate_code(config)  # hashed before anything is imported: a refused file never runs
    current = describe(located)
    stored = study_attrs(study).get(attrs.CODE) or {}
    differences = code_differences(stored, current)
    if differences and not force:
        raise StudyError(
            f"study {study.study_name!r} was run with other code: " + "; ".join(differences)
            + " (restore the file, choose a new study.name, or pass --force to continue with this code)"
        )
    for loc in located.values():
        import_located(loc)
    if differences or set(current) != set(stored):
        if differences:
            log.warning("adopting changed code for study %s (--force): %s", study.study_name, "; ".join(differences))
        set_study_attr(study, attrs.CODE, current)
    return differences
