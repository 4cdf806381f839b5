"""Fixtures shared by the study-layer tests."""

import pytest


@pytest.fixture
def study_raw(tiny_config, tmp_path, monkeypatch):
    """The tiny config as a dict without the range test, run inside tmp_path (studies/ lands there)."""
    monkeypatch.chdir(tmp_path)
    raw = tiny_config.to_dict()
    raw["lr_finder"]["enabled"] = False
    return raw
