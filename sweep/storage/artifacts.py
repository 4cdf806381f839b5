"""Where a study keeps files too large for its database rows: Optuna's artifact stores.

One function chooses the store from ``study.checkpoint_store``, so trial checkpoints
(issue "trial identity") and study artifacts such as the LR finder's curve (issue
"reports") live in the same place:

- ``None`` (default): ``studies/NAME/artifacts/`` on the local disk;
- a folder path: ``PATH/NAME/``, for a folder every machine mounts;
- ``s3://bucket/prefix``: S3 or any S3-compatible server (``boto3``, optional extra).

Files go in with ``optuna.artifacts.upload_artifact`` and come back with
``download_artifact``; optuna-dashboard lists them as downloadable artifacts.
"""

from __future__ import annotations

from pathlib import Path

from optuna.artifacts import FileSystemArtifactStore

from sweep.storage.database import STUDIES_DIR


def open_artifact_store(study_name: str, location: str | None = None):
    """The artifact store for ``study_name`` at ``location`` (see the module docstring)."""
    if location is None:
        path = STUDIES_DIR / study_name / "artifacts"
    else:
        path = Path(location).expanduser() / study_name
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(path)
