import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT.parent / "shared" / "data" / "fashion-mnist-sample"


@pytest.fixture
def sample_dir() -> Path:
    if not (SAMPLE_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"the real Fashion-MNIST sample is missing at {SAMPLE_DIR}")
    return SAMPLE_DIR


@pytest.fixture
def tiny_config():
    """A config for fast tests: synthetic data, a very small CNN, one epoch."""
    from sweep.config import config_from_dict

    return config_from_dict(
        {
            "study": {"name": "tiny", "n_trials": 3, "seed": 0},
            "data": {"source": "synthetic", "limit": 400, "validation_fraction": 0.2},
            "model": {"filters": [8], "dense_units": 32, "dropout": 0.0},
            "train": {"epochs": 1, "batch_size": 32},
        }
    )


@pytest.fixture
def write_config(tmp_path):
    """Write YAML text to a config file in tmp_path and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


# --- PostgreSQL (tests/postgres.py) -------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """The test server's URL from SWEEP_TEST_POSTGRES_URL: skip locally without it, fail in CI."""
    from tests.postgres import ENV, server_url

    url = server_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {ENV} is not: .ci/run must start PostgreSQL (.ci/postgres.sh) and export it")
        pytest.skip(f'PostgreSQL tests need {ENV}; run: export {ENV}="$(bash .ci/postgres.sh)"')
    return url


@pytest.fixture
def postgres_url(postgres_server_url):
    """A fresh, empty PostgreSQL database for this test (dropped afterwards): its SQLAlchemy URL."""
    from tests.postgres import fresh_database

    with fresh_database(postgres_server_url) as url:
        yield url


# --- the user's own code (model.builder, data.loader) ---------------------------------------


@pytest.fixture
def user_module(tmp_path):
    """Write Python source as a uniquely named module in tmp_path; returns its name.
    (sys.modules outlives a test, so no two tests share a module name.) tmp_path is trusted
    for code, as the folder of a config file this run read would be."""
    import uuid

    from sweep.config.code_dirs import trust

    trust(tmp_path)

    def write(source: str, prefix: str = "usermodel") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(source)
        return name

    return write


BN_DROPOUT_BUILDER = '''
import keras

def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(16, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Dropout(0.3)(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
'''


@pytest.fixture
def sweep_caplog(caplog, monkeypatch):
    """``caplog`` for sweep's loggers, also after an in-process CLI run set up its own handler
    (sweep.logs.setup_logging stops propagation to the root logger, where caplog listens)."""
    import logging

    monkeypatch.setattr(logging.getLogger("sweep"), "propagate", True)
    caplog.set_level(logging.INFO, logger="sweep")
    return caplog


@pytest.fixture(autouse=True)
def _fresh_code_dirs(monkeypatch):
    """Each test starts with only its working directory trusted for code (sweep.config.code_dirs)."""
    from sweep.config.code_dirs import ENV

    monkeypatch.delenv(ENV, raising=False)


@pytest.fixture
def trusted_tmp_path(tmp_path):
    """tmp_path trusted for code, as the folder of a config file this run read would be."""
    from sweep.config.code_dirs import trust

    trust(tmp_path)
    return tmp_path
