import gzip

import numpy as np
import pytest

from sweep.config import DataConfig
from sweep.training.data import load_dataset, load_test_split, read_idx, stratified_split, synthetic_images
from sweep.errors import DataError


def write_idx(folder, stem, array, magic, gz=True, truncate=0):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    raw = raw[: len(raw) - truncate]
    path = folder / (stem + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.fixture
def idx_folder(tmp_path):
    x, y = synthetic_images(200, seed=3)
    write_idx(tmp_path, "train-images-idx3-ubyte", x, 2051)
    write_idx(tmp_path, "train-labels-idx1-ubyte", y, 2049, gz=False)
    return tmp_path


def test_idx_folder_loads_scaled_and_stratified(idx_folder):
    ds = load_dataset(DataConfig(source="idx", path=str(idx_folder), validation_fraction=0.1), seed=0)
    assert ds.x_train.shape == (180, 28, 28, 1) and ds.x_val.shape == (20, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert np.bincount(ds.y_val, minlength=10).tolist() == [2] * 10


def test_real_sample_loads(sample_dir):
    ds = load_dataset(DataConfig(source="idx", path=str(sample_dir)), seed=0)
    assert ds.num_train == 2700 and len(ds.y_val) == 300
    assert set(np.unique(ds.y_val)) == set(range(10))


def test_limit_keeps_the_first_images(idx_folder):
    ds = load_dataset(DataConfig(source="idx", path=str(idx_folder), limit=100, validation_fraction=0.2), seed=0)
    assert ds.num_train + len(ds.y_val) == 100
    with pytest.raises(DataError, match="more than the 200 training images"):
        load_dataset(DataConfig(source="idx", path=str(idx_folder), limit=500), seed=0)


def test_split_is_seeded_disjoint_and_stratified():
    y = np.repeat(np.arange(10), 50)
    train_a, val_a = stratified_split(y, 0.2, seed=1)
    train_b, val_b = stratified_split(y, 0.2, seed=1)
    _, val_c = stratified_split(y, 0.2, seed=2)
    assert np.array_equal(val_a, val_b) and not np.array_equal(val_a, val_c)
    assert not set(train_a) & set(val_a) and len(train_a) + len(val_a) == 500
    assert np.bincount(y[val_a]).tolist() == [10] * 10


def test_split_that_empties_a_class_is_refused():
    y = np.repeat(np.arange(10), 4)
    with pytest.raises(DataError, match="leaves class 0 .* no validation images"):
        stratified_split(y, 0.1, seed=0)
    with pytest.raises(DataError, match="no training images"):
        stratified_split(y, 0.9, seed=0)


def test_synthetic_is_deterministic_and_balanced():
    x1, y1 = synthetic_images(100, seed=0)
    x2, y2 = synthetic_images(100, seed=0)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert np.bincount(y1).tolist() == [10] * 10


@pytest.mark.parametrize(
    "damage, fragment",
    [
        ("missing", "has no train-labels-idx1-ubyte"),
        ("truncated", "truncated or corrupt"),
        ("magic", "magic number 2049, expected 2051"),
        ("lengths", "200 images but 150 labels"),
        ("empty", "too short"),
        ("gzip", "cannot be read"),
        ("label", "label 12 found"),
    ],
)
def test_damaged_idx_files_give_clear_errors(tmp_path, damage, fragment):
    x, y = synthetic_images(200, seed=0)
    write_idx(tmp_path, "train-images-idx3-ubyte", x, 2049 if damage == "magic" else 2051,
              truncate=100 if damage == "truncated" else 0)
    labels = {"lengths": y[:150], "label": np.where(y == 3, 12, y)}.get(damage, y)
    if damage != "missing":
        path = write_idx(tmp_path, "train-labels-idx1-ubyte", labels, 2049, gz=False)
        if damage == "empty":
            path.write_bytes(b"")
        if damage == "gzip":
            path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match=fragment):
        load_dataset(DataConfig(source="idx", path=str(tmp_path)), seed=0)


def test_not_a_folder(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset(DataConfig(source="idx", path=str(tmp_path / "nope")), seed=0)


def test_read_idx_reads_uncompressed_files(tmp_path):
    x, _ = synthetic_images(20)
    path = write_idx(tmp_path, "imgs", x, 2051, gz=False)
    assert np.array_equal(read_idx(path, 2051), x)


def test_test_split_only_from_t10k_files(idx_folder):
    cfg = DataConfig(source="idx", path=str(idx_folder))
    with pytest.raises(DataError, match="no test files"):
        load_test_split(cfg)
    x, y = synthetic_images(50, seed=9)
    write_idx(idx_folder, "t10k-images-idx3-ubyte", x, 2051)
    write_idx(idx_folder, "t10k-labels-idx1-ubyte", y, 2049)
    x_test, y_test = load_test_split(cfg)
    assert x_test.shape == (50, 28, 28, 1) and np.array_equal(y_test, y)


def test_keras_download_failure_names_the_alternatives(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: [Errno -3] name resolution")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(DataError) as info:
        load_dataset(DataConfig(source="keras", limit=1000), seed=123)
    message = str(info.value)
    assert "could not download" in message and "data.source: idx" in message and "synthetic" in message
    assert "\n" not in message
