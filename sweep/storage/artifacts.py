"""Where a study keeps files too large for its database rows: Optuna's artifact stores.

One function chooses the store from ``study.checkpoint_store``, so trial checkpoints
(issue "trial identity") and study artifacts such as the LR finder's curve (issue
"reports") live in the same place:

- ``None`` (default): ``studies/NAME/artifacts/`` on the local disk;
- a folder path: ``PATH/NAME/``, for a folder every machine mounts;
- ``s3://bucket/prefix``: S3 or any S3-compatible server (``boto3``, the optional extra
  ``sweep[s3]``; credentials and ``AWS_ENDPOINT_URL`` come from boto3's usual sources),
  objects under ``prefix/NAME/``.

Files go in with ``optuna.artifacts.upload_artifact`` and come back with
``download_artifact``; optuna-dashboard lists them as downloadable artifacts.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import optuna
from optuna.artifacts import Boto3ArtifactStore, FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial

from sweep import attrs
from sweep.errors import ConfigError
from sweep.storage.database import STUDIES_DIR

log = logging.getLogger(__name__)

S3_SCHEME = "s3://"
CHECKPOINT_FILE = re.compile(r"trial-\d+-epoch-\d+\.zip")  # how sweep.search.checkpoints names them
_UPLOAD_ATTR_PREFIX = "artifacts:"  # optuna.artifacts.upload_artifact: a system attr per upload, JSON meta


def open_artifact_store(study_name: str, location: str | None = None):
    """The artifact store for ``study_name`` at ``location`` (see the module docstring)."""
    if location is not None and location.startswith(S3_SCHEME):
        bucket, prefix = split_s3_location(location)
        try:
            store = Boto3ArtifactStore(bucket)
        except ImportError:
            raise ConfigError(f"study.checkpoint_store {location!r} needs boto3: pip install 'sweep[s3]'") from None
        return _PrefixedStore(store, f"{prefix}{study_name}/")
    path = _folder(study_name, location)
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(path)


def folder_files(study_name: str, location: str | None = None) -> list[Path]:
    """The files a folder store holds under ``study_name`` (none for S3: listing a bucket
    needs rights a worker may lack, and what is left there is never loaded, because every
    checkpoint names its owner). Several studies may share the folder: one study name in
    two storages (``sweep.search.checkpoints.remove_owned_checkpoints`` tells them apart)."""
    if location is not None and location.startswith(S3_SCHEME):
        return []
    path = _folder(study_name, location)
    return sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else []


def remove_artifact(store, artifact_id: str) -> bool:
    """Remove one artifact; whether it was there. Never raises: a leftover file must not fail
    a trial that trained."""
    try:
        store.remove(artifact_id)
    except ArtifactNotFound:
        return False  # removed already (by the trial itself, or an earlier clean-up)
    except Exception as exc:  # noqa: BLE001 - S3 and file systems fail in many ways
        log.warning("could not remove artifact %s from the checkpoint store: %s", artifact_id, exc)
        return False
    return True


def remove_checkpoints(store, trials: list[FrozenTrial]) -> int:
    """Remove every checkpoint uploaded for ``trials``; returns how many were still there.

    ``upload_artifact`` records each upload on its trial (after writing the file), so this
    finds also a checkpoint whose worker was killed before pointing ``attrs.CHECKPOINT``
    at it; a file whose worker was killed between writing and recording it is found by its
    owner instead (``sweep.search.checkpoints.remove_owned_checkpoints``). Checkpoints set
    aside (``attrs.SET_ASIDE``) and other artifacts (a study's LR finder curve, files a user
    uploaded) stay."""
    ids = {t.user_attrs[attrs.CHECKPOINT]["artifact_id"] for t in trials if t.user_attrs.get(attrs.CHECKPOINT)}
    kept = {ref["artifact_id"] for t in trials for ref in t.user_attrs.get(attrs.SET_ASIDE, [])}
    for trial in trials:
        for key, value in trial.system_attrs.items():
            if key.startswith(_UPLOAD_ATTR_PREFIX) and CHECKPOINT_FILE.fullmatch(json.loads(value).get("filename", "")):
                ids.add(key[len(_UPLOAD_ATTR_PREFIX):])
    return sum(remove_artifact(store, artifact_id) for artifact_id in ids - kept)


def upload_json(study: optuna.Study, filename: str, payload: Any, location: str | None = None) -> str:
    """Store ``payload`` as the JSON file ``filename`` among the study's artifacts; return its id.

    ``optuna.artifacts.download_artifact(artifact_store=..., artifact_id=..., file_path=...)``
    brings it back; optuna-dashboard lists it as a downloadable artifact of the study.
    """
    store = open_artifact_store(study.study_name, location)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / filename
        path.write_text(json.dumps(payload), encoding="utf-8")
        return optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=study,
                                                mimetype="application/json", encoding="utf-8")


def download_json(study_name: str, artifact_id: str, location: str | None = None) -> Any | None:
    """The JSON artifact ``artifact_id`` of ``study_name``, or None when it cannot be read here
    (another machine's local store, a deleted folder, a damaged file)."""
    if location is not None and location.startswith(S3_SCHEME):
        store, path = open_artifact_store(study_name, location), location
    else:
        path = _folder(study_name, location)
        if not path.is_dir():  # reading must not create folders
            return None
        store = FileSystemArtifactStore(path)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "artifact.json"
        try:
            optuna.artifacts.download_artifact(artifact_store=store, file_path=str(target), artifact_id=artifact_id)
            return json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, ArtifactNotFound) as exc:
            log.warning("artifact %s of study %s cannot be read from %s: %s", artifact_id, study_name, path, exc)
            return None


def split_s3_location(location: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")``; ConfigError if no bucket."""
    bucket, _, prefix = location[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise ConfigError(f"checkpoint store {location!r}: expected s3://bucket or s3://bucket/prefix")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _folder(study_name: str, location: str | None) -> Path:
    return STUDIES_DIR / study_name / "artifacts" if location is None else Path(location).expanduser() / study_name


class _PrefixedStore:
    """An artifact store whose objects live under ``prefix`` (Optuna's Boto3 store uses the
    artifact id as the whole key; one bucket then serves many studies)."""

    def __init__(self, store: Boto3ArtifactStore, prefix: str):
        self._store = store
        self._prefix = prefix

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self._store.open_reader(self._prefix + artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self._store.write(self._prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self._store.remove(self._prefix + artifact_id)
