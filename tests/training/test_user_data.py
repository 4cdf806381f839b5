"""The user's arrays: an .npz file or a loader function, with every bad input one DataError line."""

import uuid

import numpy as np
import pytest

from sweep.config import DataConfig
from sweep.errors import ConfigError, DataError
from sweep.training.data import load_dataset, load_test_split


pytestmark = pytest.mark.usefixtures("trusted_tmp_path")  # the loaders are written there

def arrays(n=200, shape=(6, 5), classes=4, dtype=np.uint8, test=40, seed=0):
    rng = np.random.default_rng(seed)
    out = {"x_train": (rng.random((n, *shape)) * 255).astype(dtype), "y_train": np.arange(n) % classes}
    if test:
        out |= {"x_test": (rng.random((test, *shape)) * 255).astype(dtype), "y_test": np.arange(test) % classes}
    return out


def npz(tmp_path, **content):
    path = tmp_path / f"{uuid.uuid4().hex[:6]}.npz"
    np.savez(path, **content)
    return path


def test_npz_images_any_shape_scaled_stratified_with_the_classes_inferred(tmp_path):
    path = npz(tmp_path, **arrays())
    ds = load_dataset(DataConfig(source="npz", path=str(path), validation_fraction=0.25), seed=0)
    assert ds.input_shape == (6, 5) and ds.num_classes == 4
    assert np.bincount(ds.y_val).tolist() == [12] * 4 and ds.num_train == 200 - 48  # round(0.25 * 50) of each
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    x_test, y_test = load_test_split(DataConfig(source="npz", path=str(path)))
    assert x_test.shape == (40, 6, 5) and x_test.max() <= 1.0 and y_test.tolist() == (np.arange(40) % 4).tolist()


def test_floats_are_used_as_they_are_and_num_classes_and_limit_apply(tmp_path):
    content = arrays(shape=(3,), dtype=np.float64, test=0)
    content["x_train"] = content["x_train"] - 100.0  # not scaled, not clipped
    path = npz(tmp_path, **content)
    ds = load_dataset(DataConfig(source="npz", path=str(path), num_classes=6, limit=100, validation_fraction=0.2), seed=1)
    assert ds.num_classes == 6 and ds.num_train + len(ds.y_val) == 100 and ds.input_shape == (3,)
    assert ds.x_train.min() < 0 and ds.x_train.dtype == np.float32
    with pytest.raises(DataError, match="has no x_test and y_test; evaluation needs a test split"):
        load_test_split(DataConfig(source="npz", path=str(path)))


def test_a_python_loader_gives_the_same_mapping(tmp_path):
    name = f"loader_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "import numpy as np\n"
        "def load():\n"
        "    return {'x_train': np.ones((60, 4), 'float32') * (np.arange(60) % 3)[:, None],\n"
        "            'y_train': np.arange(60) % 3}\n"
    )
    ds = load_dataset(DataConfig(source="python", loader=f"{name}:load", validation_fraction=0.2), 0, str(tmp_path))
    assert ds.num_classes == 3 and ds.input_shape == (4,) and ds.num_train == 48


def _bad(tmp_path, change):
    content = arrays()
    change(content)
    return npz(tmp_path, **content)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.pop("y_train"), "no y_train \\(has x_test, x_train, y_test\\)"),
        (lambda c: c.pop("y_test"), "has x_test without its partner"),
        (lambda c: c.update(y_train=c["y_train"][:-1]), "x_train has 200 samples but y_train 199; expected equal lengths"),
        (lambda c: c.update(y_test=c["y_test"][:5]), "x_test has 40 samples but y_test 5"),
        (lambda c: c.update(y_train=c["y_train"] - 1), "y_train holds label -1; expected labels 0..C-1"),
        (lambda c: c.update(y_test=c["y_test"].astype(float)), "y_test has dtype float64; expected integer class labels"),
        (lambda c: c.update(y_train=c["y_train"].astype(float)), "y_test has shape \\(40,\\) and dtype int64; expected real"),
        (lambda c: c.update(y_train=np.eye(3)[c["y_train"] % 3], y_test=c["y_test"]), "y_test is not one-hot rows"),
        (lambda c: c.update(x_train=c["x_train"].astype(np.int32)), "x_train has dtype int32; expected uint8"),
        (lambda c: c.update(x_test=c["x_test"][:, :3]), "x_test samples are \\(3, 5\\), x_train samples \\(6, 5\\)"),
        (lambda c: c.update(x_train=np.full((200, 2), np.nan)), "x_train holds NaN or infinite values"),
        (lambda c: c.update(y_train=np.zeros(200, int), y_test=np.zeros(40, int)), "every label is 0"),
    ],
)
def test_bad_npz_contents_are_one_line_data_errors(tmp_path, change, message):
    path = _bad(tmp_path, change)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(DataConfig(source="npz", path=str(path)), seed=0)
    assert "\n" not in str(info.value)


def test_labels_beyond_num_classes_and_unreadable_files_are_refused(tmp_path):
    path = npz(tmp_path, **arrays(classes=4))
    with pytest.raises(DataError, match="label 3 found but data.num_classes is 3; expected labels 0 to 2"):
        load_dataset(DataConfig(source="npz", path=str(path), num_classes=3), seed=0)
    with pytest.raises(DataError, match="is not a file; expected an .npz file"):
        load_dataset(DataConfig(source="npz", path=str(tmp_path / "missing.npz")), seed=0)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match="cannot be read as an .npz file"):
        load_dataset(DataConfig(source="npz", path=str(tmp_path / "junk.npz")), seed=0)
    objects = npz(tmp_path, x_train=np.array([{"a": 1}] * 30, dtype=object), y_train=np.arange(30) % 2)
    with pytest.raises(DataError, match="holds Python objects .*expected numeric arrays"):
        load_dataset(DataConfig(source="npz", path=str(objects)), seed=0)


@pytest.mark.parametrize(
    "body, error, message",
    [
        ("def load():\n    return [1, 2]\n", DataError, "returned a list; expected a dict of numpy arrays"),
        ("def load():\n    return {'x_train': [[1.0]] * 30, 'y_train': [0, 1] * 15}\n", DataError,
         "x_train is a list; expected a numpy array"),
        ("def load():\n    raise OSError('disk gone')\n", DataError, "raised OSError: disk gone"),
        ("import nope_not_here\n", ConfigError, "data.loader: module .* does not import: ModuleNotFoundError"),
    ],
)
def test_bad_loaders_are_one_line_errors(tmp_path, body, error, message):
    name = f"loader_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(body)
    with pytest.raises(error, match=message) as info:
        load_dataset(DataConfig(source="python", loader=f"{name}:load"), 0, str(tmp_path))
    assert "\n" not in str(info.value)


def test_one_hot_rows_and_real_values_are_labels_too(tmp_path):
    content = arrays(classes=3)
    onehot = load_dataset(DataConfig(source="npz", path=str(npz(tmp_path, **{
        **content, "y_train": np.eye(3)[content["y_train"]], "y_test": np.eye(3)[content["y_test"]]}))), seed=0)
    assert onehot.labels == "onehot" and onehot.num_classes == 3 and onehot.y_train.shape[1:] == (3,)
    # Stratified by class, as integer labels are: each class keeps its share of validation rows.
    assert sorted(np.bincount(onehot.y_val.argmax(axis=1))) == sorted(round(0.1 * c) for c in np.bincount(content["y_train"]))
    real = dict(content, y_train=content["y_train"] * 0.5 + 0.25, y_test=content["y_test"] * 0.5)
    (tmp_path / "r").mkdir()
    values = load_dataset(DataConfig(source="npz", path=str(npz(tmp_path / "r", **real))), seed=0)
    assert values.labels == "values" and values.num_classes == 1 and values.chance_classes is None
    assert values.y_train.dtype == np.float32 and values.y_train.shape[1:] == (1,) and len(values.y_val) == 20
