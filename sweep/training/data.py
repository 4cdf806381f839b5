"""Training data: Fashion-MNIST (Keras' download, a folder of IDX files, synthetic images)
or the user's own arrays (an ``.npz`` file or a loader function: ``sweep.training.user_data``).

``load_dataset`` returns training and validation arrays (float32; Fashion-MNIST in
[0, 1], shape (N, 28, 28, 1)) with the input shape and number of classes the model is
built for; the validation split is carved out of the training set, stratified and seeded. The test split is read only by ``load_test_split``, which
only ``sweep evaluate`` calls. Results are cached, so a process loads data once.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.config import DataConfig
from sweep.errors import DataError
from sweep.training.entry_points import IN_MEMORY_PREFIX
from sweep.training.user_data import load_arrays, to_float_inputs

log = logging.getLogger(__name__)

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
SYNTHETIC_DEFAULT_SIZE = 3000
USER_SOURCES = ("npz", "python")  # the user's arrays: any shape, any number of classes


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int = NUM_CLASSES  # classes, or outputs of a regression (labels "values")
    labels: str = "classes"  # classes | onehot | values (sweep.training.user_data.LABEL_KINDS)

    @property
    def chance_classes(self) -> int | None:
        """The classes a loss at chance level is measured on (divergence); None for a regression."""
        return None if self.labels == "values" else self.num_classes

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the training and validation arrays as trials see them (after the seeded
        split): a study records it, so resuming on other data of the same size is noticed."""
        digest = hashlib.blake2b(digest_size=16)
        for array in (self.x_train, self.y_train, self.x_val, self.y_val):
            contiguous = np.ascontiguousarray(array)
            digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
            digest.update(contiguous)
        return digest.hexdigest()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, what the model is built for."""
        return tuple(int(d) for d in self.x_train.shape[1:])


def load_dataset(cfg: DataConfig, seed: int, code_dir: str | None = None) -> Dataset:
    """Training and validation splits for ``cfg``; loaded once per process.
    ``code_dir`` is where a ``data.loader`` module lives (``study.code_dir``)."""
    return _load_dataset_cached(cfg.model_dump_json(), seed, code_dir)


@functools.lru_cache(maxsize=4)
def _load_dataset_cached(cfg_json: str, seed: int, code_dir: str | None) -> Dataset:
    cfg = DataConfig.model_validate_json(cfg_json)
    own = cfg.source in USER_SOURCES
    if own:
        arrays = load_arrays(cfg, code_dir)
        x, y, num_classes, labels = arrays.x_train, arrays.y_train, arrays.num_classes, arrays.labels
    else:
        (x, y), num_classes, labels = _load_train(cfg), NUM_CLASSES, "classes"
    if cfg.limit is not None:
        if cfg.limit > len(y):
            raise DataError(f"data.limit: {cfg.limit} is more than the {len(y)} training images available")
        x, y = x[: cfg.limit], y[: cfg.limit]
    if labels == "values":  # a regression: a seeded random split
        train_idx, val_idx = random_split(len(y), cfg.validation_fraction, seed)
    else:
        train_idx, val_idx = stratified_split(y if labels == "classes" else y.argmax(axis=1),
                                              cfg.validation_fraction, seed)
    x = to_float_inputs(x) if own else _to_float_images(x)
    log.info("data: %d training and %d validation samples of shape %s, %d %s (%s)", len(train_idx),
             len(val_idx), x.shape[1:], num_classes, "outputs" if labels == "values" else "classes", cfg.source)
    return Dataset(x[train_idx], y[train_idx], x[val_idx], y[val_idx], num_classes, labels)


def load_test_split(cfg: DataConfig, code_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The held-out test images and labels. Only final evaluation may use these."""
    if cfg.source in USER_SOURCES:
        arrays = load_arrays(cfg, code_dir)
        if arrays.x_test is None or arrays.y_test is None:
            where = f"data.path {cfg.path}" if cfg.source == "npz" else f"data.loader {cfg.loader}"
            if (cfg.loader or "").startswith(IN_MEMORY_PREFIX):
                raise DataError("data: the arrays passed to sweep.run have no x_test and y_test; evaluation "
                                "needs a test split: pass data=(x, y, x_test, y_test)")
            raise DataError(f"{where}: has no x_test and y_test; evaluation needs a test split")
        return to_float_inputs(arrays.x_test), arrays.y_test
    if cfg.source == "keras":
        (_, _), (x, y) = _keras_fashion_mnist()
    elif cfg.source == "idx":
        folder = _idx_folder(cfg.path)
        images = _find_idx(folder, "t10k-images-idx3-ubyte")
        labels = _find_idx(folder, "t10k-labels-idx1-ubyte")
        if images is None or labels is None:
            raise DataError(
                f"data.path: {folder} has no test files (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte); "
                "evaluation needs them"
            )
        x, y = _read_idx_pair(images, labels)
    else:
        x, y = synthetic_images(SYNTHETIC_DEFAULT_SIZE // 3, seed=1)
    return _to_float_images(x), y


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): ``round(fraction * n_c)`` of each class c, chosen with ``seed``."""
    rng = np.random.default_rng(seed)
    train_parts, val_parts = [], []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        n_val = int(round(fraction * len(members)))
        if n_val == 0 or n_val == len(members):
            empty = "validation" if n_val == 0 else "training"
            raise DataError(
                f"data.validation_fraction: {fraction} leaves class {int(cls)} ({len(members)} images) "
                f"with no {empty} images; use more data or a fraction nearer 0.5"
            )
        members = rng.permutation(members)
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


def random_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of ``n`` samples, ``round(fraction * n)`` validation, chosen with ``seed``."""
    n_val = int(round(fraction * n))
    if n_val == 0 or n_val == n:
        raise DataError(f"data.validation_fraction: {fraction} of {n} samples leaves no "
                        f"{'validation' if n_val == 0 else 'training'} samples; use more data or a fraction nearer 0.5")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def synthetic_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic, learnable images: a noisy, shifted copy of one of 10 class prototypes.

    The noise and shifts make the task hard enough that the learning rate matters
    (too low learns little in a few epochs, too high diverges), yet a small CNN
    separates the classes well within a few epochs.
    """
    proto_rng = np.random.default_rng(12345)  # the prototypes never change
    coarse = proto_rng.random((NUM_CLASSES, 7, 7))
    prototypes = np.kron(coarse, np.ones((4, 4)))  # 28x28 blocky shapes
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % NUM_CLASSES
    rng.shuffle(labels)
    images = prototypes[labels]
    shifts = rng.integers(-2, 3, size=(n, 2))
    images = np.stack([np.roll(img, tuple(s), axis=(0, 1)) for img, s in zip(images, shifts)])
    images = images + rng.normal(0.0, 0.2, size=images.shape)
    pixels = np.clip(images * 255.0, 0, 255).astype(np.uint8)
    return pixels, labels.astype(np.uint8)


# --- sources ----------------------------------------------------------------------------


def _load_train(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    if cfg.source == "keras":
        (x, y), _ = _keras_fashion_mnist()
        return x, y
    if cfg.source == "idx":
        folder = _idx_folder(cfg.path)
        images = _find_idx(folder, "train-images-idx3-ubyte")
        labels = _find_idx(folder, "train-labels-idx1-ubyte")
        for found, stem in ((images, "train-images-idx3-ubyte"), (labels, "train-labels-idx1-ubyte")):
            if found is None:
                raise DataError(f"data.path: {folder} has no {stem}[.gz]; expected Fashion-MNIST IDX files")
        return _read_idx_pair(images, labels)
    return synthetic_images(cfg.limit or SYNTHETIC_DEFAULT_SIZE, seed=0)


def _keras_fashion_mnist():
    import keras

    try:
        return keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # noqa: BLE001 - any download failure means the same to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"data.source keras: could not download Fashion-MNIST ({reason}); without network use "
            "data.source: idx with data.path: a folder of IDX files, or data.source: synthetic to try the tool"
        ) from None


def _idx_folder(path: str | None) -> Path:
    folder = Path(path or "")
    if not folder.is_dir():
        raise DataError(f"data.path: {path!r} is not a folder; expected a folder of Fashion-MNIST IDX files")
    return folder


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {images.shape[1:]}, expected 28x28")
    if len(images) != len(labels):
        raise DataError(f"{images_path.parent}: {len(images)} images but {len(labels)} labels; expected equal counts")
    if len(labels) and labels.max() >= NUM_CLASSES:
        raise DataError(f"{labels_path}: label {int(labels.max())} found; expected classes 0-9")
    return images, labels


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read one IDX file (gzipped or not), checking its magic number, shape and length."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot be read as a (gzipped) IDX file ({exc})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path}: magic number {magic}, expected {expected_magic}; not the IDX file it is named after")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) if dims else 0
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: {len(raw) - header} data bytes, expected {expected} for shape {dims}; the file is truncated or corrupt"
        )
    if dims and dims[0] == 0:
        raise DataError(f"{path}: holds no items")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _to_float_images(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 255.0).reshape((-1, *IMAGE_SHAPE))
