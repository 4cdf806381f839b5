"""The user's own data: an ``.npz`` file or a loader function, checked before anything trains.

Both give the same mapping of numpy arrays: ``x_train``, ``y_train`` and optionally
``x_test``, ``y_test``. Inputs may have any per-sample shape (images H x W or
H x W x C, vectors, ...); uint8 inputs are scaled to [0, 1], floats are used as they
are. Labels are one of (``LABEL_KINDS``):

- ``classes``: integers 0..C-1, C inferred as the largest label + 1 unless ``data.num_classes`` says;
- ``onehot``: rows of C zeros and a single one (integers or floats);
- ``values``: real-valued targets (floats, one per sample or rows of K): a regression with K
  outputs, which is what the model's builder receives as its second argument.

Every problem is a one-line ``DataError`` naming the array and what was expected.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.config import DataConfig
from sweep.errors import DataError, exception_summary
from sweep.training.entry_points import IN_MEMORY_PREFIX, load_entry_point

LABEL_KINDS = ("classes", "onehot", "values")
REQUIRED = ("x_train", "y_train")
OPTIONAL = ("x_test", "y_test")


@dataclass(frozen=True)
class Arrays:
    x_train: np.ndarray  # as stored: uint8 or float
    y_train: np.ndarray  # int64 classes, float32 one-hot rows or float32 values
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    num_classes: int  # classes, or outputs of a regression
    labels: str = "classes"  # LABEL_KINDS


def load_arrays(cfg: DataConfig, code_dir: str | None) -> Arrays:
    """The checked arrays of an ``npz`` or ``python`` source; loaded once per process."""
    return _load_cached(cfg.model_dump_json(), code_dir)


@functools.lru_cache(maxsize=2)
def _load_cached(cfg_json: str, code_dir: str | None) -> Arrays:
    cfg = DataConfig.model_validate_json(cfg_json)
    if cfg.source == "npz":
        where = f"data.path {cfg.path}"
        raw = _read_npz(Path(cfg.path or ""))
    else:
        where = "data" if (cfg.loader or "").startswith(IN_MEMORY_PREFIX) else f"data.loader {cfg.loader}"
        loader = load_entry_point(cfg.loader or "", code_dir, "data.loader")
        try:
            raw = loader.function()
        except Exception as exc:  # noqa: BLE001 - the user's loader failing is bad input, reported in one line
            raise DataError(f"{where}: raised {exception_summary(exc)}") from None
        if not isinstance(raw, Mapping):
            raise DataError(f"{where}: returned a {type(raw).__name__}; expected a dict of numpy arrays "
                            "with keys x_train, y_train (and optionally x_test, y_test)")
    return check_arrays(raw, where, cfg.num_classes)


def check_arrays(raw: Mapping, where: str, num_classes: int | None = None) -> Arrays:
    """Validate the mapping: keys, types, lengths, shapes, dtypes and label range."""
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise DataError(f"{where}: no {' or '.join(missing)} (has {', '.join(sorted(map(str, raw))) or 'nothing'}); "
                        "expected x_train and y_train, optionally x_test and y_test")
    if ("x_test" in raw) != ("y_test" in raw):
        raise DataError(f"{where}: has {'x_test' if 'x_test' in raw else 'y_test'} without its partner; "
                        "give both x_test and y_test, or neither")
    arrays = {key: _array(raw[key], key, where) for key in REQUIRED + OPTIONAL if key in raw}
    kind = label_kind(arrays["y_train"])
    x_train, y_train = _inputs(arrays["x_train"], "x_train", where), _labels(arrays["y_train"], "y_train", where, kind)
    _same_length(x_train, y_train, "train", where)
    x_test = y_test = None
    if "x_test" in arrays:
        x_test, y_test = _inputs(arrays["x_test"], "x_test", where), _labels(arrays["y_test"], "y_test", where, kind)
        _same_length(x_test, y_test, "test", where)
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(f"{where}: x_test samples are {x_test.shape[1:]}, x_train samples {x_train.shape[1:]}; "
                            "expected the same shape")
        if y_test.shape[1:] != y_train.shape[1:]:
            raise DataError(f"{where}: y_test labels are {y_test.shape[1:]} per sample, y_train's "
                            f"{y_train.shape[1:]}; expected the same shape")
    if kind != "classes":
        outputs = int(y_train.shape[1]) if y_train.ndim == 2 else 1
        if kind == "onehot" and num_classes is not None and num_classes != outputs:
            raise DataError(f"{where}: one-hot labels of {outputs} classes but data.num_classes is {num_classes}")
        if kind == "values" and num_classes is not None:
            raise DataError(f"{where}: y_train holds real values (a regression); data.num_classes applies to "
                            "class labels")
        return Arrays(x_train, y_train, x_test, y_test, outputs, kind)
    seen = int(max(y_train.max(), y_test.max() if y_test is not None and len(y_test) else 0)) + 1
    classes = num_classes if num_classes is not None else seen
    if seen > classes:
        raise DataError(f"{where}: label {seen - 1} found but data.num_classes is {classes}; "
                        f"expected labels 0 to {classes - 1}")
    if classes < 2:
        raise DataError(f"{where}: every label is 0; expected at least 2 classes (labels 0..C-1)")
    return Arrays(x_train, y_train, x_test, y_test, classes)


def to_float_inputs(x: np.ndarray) -> np.ndarray:
    """uint8 scaled to [0, 1]; floats as they are (as float32)."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    return x.astype(np.float32, copy=False)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"data.path: {str(path)!r} is not a file; expected an .npz file with x_train and y_train")
    if not zipfile.is_zipfile(path):  # np.load would try other formats, pickle among them
        raise DataError(f"data.path {path}: cannot be read as an .npz file (not a zip archive); "
                        "expected one written by numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError:  # object arrays need pickle, which could run code: refused
        raise DataError(f"data.path {path}: holds Python objects (pickled arrays), which sweep does not load; "
                        "expected numeric arrays") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"data.path {path}: cannot be read as an .npz file ({exception_summary(exc)})") from None


def _array(value: object, key: str, where: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise DataError(f"{where}: {key} is a {type(value).__name__}; expected a numpy array")
    if value.ndim == 0 or len(value) == 0:
        raise DataError(f"{where}: {key} is empty; expected one entry per sample")
    return value


def _inputs(x: np.ndarray, key: str, where: str) -> np.ndarray:
    if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{where}: {key} has dtype {x.dtype}; expected uint8 (scaled to [0, 1]) or floats")
    if x.ndim < 2:
        raise DataError(f"{where}: {key} has shape {x.shape}; expected (samples, ...features)")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise DataError(f"{where}: {key} holds NaN or infinite values; expected finite inputs")
    return x


def label_kind(y: np.ndarray) -> str:
    """``classes`` for integers (one per sample), ``onehot`` for rows of zeros and one one,
    ``values`` for other floats (real-valued targets)."""
    if not isinstance(y, np.ndarray) or y.size == 0:
        return "classes"
    if y.ndim == 2 and y.shape[1] > 1 and (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        if np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all():
            return "onehot"
    return "values" if np.issubdtype(y.dtype, np.floating) else "classes"


def _labels(y: np.ndarray, key: str, where: str, kind: str = "classes") -> np.ndarray:
    if kind == "onehot":
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise DataError(f"{where}: {key} is not one-hot rows like y_train; expected one 1 per row")
        return y.astype(np.float32)
    if kind == "values":
        if y.ndim not in (1, 2) or not np.issubdtype(y.dtype, np.floating):
            raise DataError(f"{where}: {key} has shape {y.shape} and dtype {y.dtype}; expected real values "
                            "like y_train (one per sample, or rows of K)")
        if not np.isfinite(y).all():
            raise DataError(f"{where}: {key} holds NaN or infinite values; expected finite targets")
        return (y.reshape(-1, 1) if y.ndim == 1 else y).astype(np.float32)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: {key} has shape {y.shape}; expected one integer class label per sample")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: {key} has dtype {y.dtype}; expected integer class labels 0..C-1")
    if y.min() < 0:
        raise DataError(f"{where}: {key} holds label {int(y.min())}; expected labels 0..C-1")
    return y.astype(np.int64)


def _same_length(x: np.ndarray, y: np.ndarray, split: str, where: str) -> None:
    if len(x) != len(y):
        raise DataError(f"{where}: x_{split} has {len(x)} samples but y_{split} {len(y)}; expected equal lengths")

