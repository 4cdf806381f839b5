"""Reading what a sweep study stores, tolerantly: studies made by older versions, by other
clients, or on another machine still report.

- ``validation_size``: the stored number of validation images, else an estimate from the
  config, else unknown;
- ``lr_finder_record``: the range test's summary attr plus its curve from the artifact
  store (or, in older studies, from the attr itself);
- ``stored_evaluations``: ``sweep evaluate``'s per-trial attrs and the older single-run list.
"""

from __future__ import annotations

from typing import Any

from sweep import attrs
from sweep.storage.artifacts import download_json


# Training images each data source has when data.limit is unset (Fashion-MNIST's 60,000;
# sweep.training.data's synthetic default); an IDX folder's size is not known without it.
_SOURCE_SIZES = {"keras": 60000, "synthetic": 3000}


def validation_size(user: dict, config: dict | None) -> tuple[int | None, str]:
    """(validation images, how the number is known): stored at creation, or, for a study
    created before that attr existed, estimated from data.limit x data.validation_fraction."""
    stored = user.get(attrs.NUM_VALIDATION)
    if isinstance(stored, int) and stored > 0:
        return stored, "stored"
    data = (config or {}).get("data") or {}
    size = data.get("limit") or _SOURCE_SIZES.get(data.get("source"))
    fraction = data.get("validation_fraction")
    if size and isinstance(fraction, (int, float)) and 0 < fraction < 1:
        # The split takes round(fraction * n) of each class: within a few images of this.
        return int(round(size * fraction)), "estimated from data.limit and data.validation_fraction"
    return None, "unknown"


def stored_evaluations(user: dict[str, Any]) -> list[dict[str, Any]]:
    """``sweep evaluate``'s results, one ``{"trial", "mean", "sd", "runs": [[seed, acc, loss, s]]}``
    per trial, by number; the older single-run ``EVALUATIONS`` entries become one-run ones."""
    found: dict[Any, dict] = {}
    for entry in user.get(attrs.EVALUATIONS) or []:
        if isinstance(entry, dict) and isinstance(entry.get("test_accuracy"), (int, float)):
            found[entry.get("trial")] = {"trial": entry.get("trial"), "mean": entry["test_accuracy"], "sd": None,
                                         "runs": [[None, entry["test_accuracy"], entry.get("test_loss"),
                                                   entry.get("seconds")]]}
    for key, value in user.items():
        if key.startswith(attrs.EVALUATION_PREFIX) and isinstance(value, dict) and value.get("runs") \
                and isinstance(value.get("mean"), (int, float)):
            found[value.get("trial")] = value
    return [found[k] for k in sorted(found, key=lambda k: k if isinstance(k, int) else -1)]


def lr_finder_record(study_name: str, stored: Any, config: dict | None) -> dict | None:
    """The range test's full result: the summary attr plus the curve from the study's
    artifact store; a study made before the curve moved there holds it in the attr itself.
    When the artifact cannot be read here (another machine's local store), the summary
    with ``curve_missing: True``."""
    if not isinstance(stored, dict):
        return None
    if "lrs" in stored or not stored.get("artifact_id"):
        return stored
    location = ((config or {}).get("study") or {}).get("checkpoint_store")
    curve = download_json(study_name, str(stored["artifact_id"]), location)
    if not isinstance(curve, dict):
        return {**stored, "curve_missing": True}
    return {**curve, **stored}
