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
