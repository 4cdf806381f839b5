"""A study every Optuna client shows whole: short user attrs, the LR finder's curve in the
artifact store, the validation size stored for the report's noise level."""

import json
import shutil

import optuna
import pytest

from sweep import attrs
from sweep.config import config_from_dict
from sweep.report import write_report
from sweep.report.data import collect
from sweep.study.setup import open_study

DASHBOARD_ATTR_LIMIT = 1024  # optuna-dashboard cuts a study user attr after this many characters


@pytest.fixture
def created(tiny_config, tmp_path, monkeypatch):
    """A real study made by sweep (range test of 40 steps on synthetic data), in tmp_path."""
    monkeypatch.chdir(tmp_path)
    raw = tiny_config.to_dict()
    raw["lr_finder"].update({"enabled": True, "num_steps": 40})
    url = f"sqlite:///{tmp_path}/studies/tiny.db"
    return open_study(config_from_dict(raw), url), url


def test_every_study_user_attr_serializes_under_1024_characters(created):
    study, _ = created
    sizes = {key: len(json.dumps(value)) for key, value in study.user_attrs.items()}
    assert max(sizes.values()) < DASHBOARD_ATTR_LIMIT, sizes
    assert study.user_attrs[attrs.NUM_VALIDATION] == 80  # 20% of 400 synthetic images
    assert "lrs" not in study.user_attrs[attrs.LR_FINDER]


def test_the_lr_finder_curve_is_an_artifact_optuna_can_download(created, tmp_path):
    study, _ = created
    summary = study.user_attrs[attrs.LR_FINDER]
    assert set(summary) >= {"method", "suggestion", "lower", "upper", "seconds", "artifact_id"}
    target = tmp_path / "curve.json"
    store = optuna.artifacts.FileSystemArtifactStore(tmp_path / "studies" / "tiny" / "artifacts")
    optuna.artifacts.download_artifact(artifact_store=store, file_path=str(target), artifact_id=summary["artifact_id"])
    curve = json.loads(target.read_text())
    assert curve["suggestion"] == summary["suggestion"] and len(curve["lrs"]) == len(curve["losses"]) > 10
    metas = optuna.artifacts.get_all_artifact_meta(study)
    assert [m.filename for m in metas] == ["lr_finder.json"]  # what optuna-dashboard lists


def test_the_report_reads_the_curve_back_and_survives_without_it(created, tmp_path):
    study, url = created
    data = collect(study, url)
    assert len(data.lr_finder["lrs"]) > 10 and data.num_validation == 80 and data.validation_note == "stored"
    out = write_report(study, tmp_path / "report").parent
    assert (out / "figures" / "lr_finder.png").exists()
    assert json.loads((out / "lr_finder.json").read_text())["lrs"] == data.lr_finder["lrs"]
    shutil.rmtree(tmp_path / "studies" / "tiny" / "artifacts")  # say, a report on another machine
    write_report(study, out)
    assert not (out / "figures" / "lr_finder.png").exists() and not (out / "lr_finder.json").exists()
    assert "cannot be read here" in (out / "report.md").read_text()
    assert not (tmp_path / "studies" / "tiny" / "artifacts").exists()  # reading created nothing


@pytest.mark.parametrize("config_file", ["configs/quickstart.yaml", "configs/fashion_mnist.yaml"])
def test_the_config_is_split_into_attrs_under_1024_characters_and_joins_back(config_file):
    from sweep.config import load_config
    from sweep.study.setup import storable_config
    from tests.conftest import ROOT

    # A long data.path (as on a real machine) and a password-masked PostgreSQL URL.
    overrides = ["data.source=idx", f"data.path=/home/someone/datasets/{'fashion-mnist-sample/' * 3}",
                 "study.storage=postgresql+psycopg://sweep:secret@db.example.org:5432/sweeps"]
    stored = storable_config(load_config(ROOT / config_file, overrides))
    parts = attrs.split_config(stored)
    assert list(parts)[-1] == attrs.CONFIG  # written last: marks a complete study
    assert max(len(json.dumps(v)) for v in parts.values()) < DASHBOARD_ATTR_LIMIT
    assert attrs.read_config(parts) == stored
    assert attrs.read_config({attrs.CONFIG: stored}) == stored  # a study made before the split
