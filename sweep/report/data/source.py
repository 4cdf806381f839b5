"""Opening studies for a report: ``URL#name`` specs and read-only SQLite access.

``storage.make_storage`` makes every SQLite transaction ``BEGIN IMMEDIATE`` so that
workers never pop the same enqueued trial; a report opened through it would take the
write lock for each of its reads and hold up a running study's workers. A report only
reads, so for SQLite it opens a plain engine instead: Python's sqlite3 driver runs
SELECTs without a transaction lock, and in WAL mode (set when the study was created)
readers and the writer never wait for each other. Other databases read through
``storage.load_study`` as usual (their reads are MVCC snapshots).
"""

from __future__ import annotations

import optuna

from sweep.config import validate_study_name
from sweep.errors import StudyError
from sweep.storage.database import (SQLITE_BUSY_TIMEOUT_S, check_study_database, load_study, mask_url, resolve_storage_url,
                           sqlite_path, study_names)


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"NAME"`` -> ``(NAME, None)``; ``"URL#NAME"`` -> ``(NAME, URL)``.

    Study names never contain ``#``, so the last one separates the URL from the name.
    """
    url, sep, name = spec.rpartition("#")
    if not sep:
        url = ""
    try:
        validate_study_name(name)
    except ValueError as exc:
        raise StudyError(f"{spec!r}: {exc}; expected NAME or URL#NAME") from None
    if sep and not url:
        raise StudyError(f"{spec!r}: empty storage URL before '#'; expected URL#NAME")
    return name, url or None


def open_study_for_reading(name: str, url: str | None = None) -> tuple[optuna.Study, str]:
    """The study ``name`` in ``url`` (default ``sqlite:///studies/<name>.db``) and the URL used."""
    url = resolve_storage_url(name, url)
    path = sqlite_path(url)
    if path is None:
        return load_study(name, url), url
    if not path.is_file():
        raise StudyError(f"no study database at {path}; run 'sweep run CONFIG' first or pass --storage")
    check_study_database(path)
    try:
        storage = optuna.storages.RDBStorage(
            url, engine_kwargs={"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}, skip_table_creation=True
        )
        return optuna.load_study(study_name=name, storage=storage), url
    except KeyError:
        known = ", ".join(study_names(storage)) or "none"
        raise StudyError(f"no study named {name!r} in {mask_url(url)} (studies there: {known})") from None
    except Exception as exc:  # noqa: BLE001 - a foreign or corrupt file fails in driver-specific ways
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StudyError(f"storage {mask_url(url)}: cannot be read as an Optuna study ({reason[:200]})") from None
