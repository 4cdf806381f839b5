"""A study every Optuna client shows whole: short user attrs, the LR finder's curve in the
artifact store, the validation size stored for the report's noise level."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from sweep import attrs
from sweep.config import config_from_dict
from sweep.report import write_report
from sweep.report.data.collect import collect
from sweep.storage.records import read_config, set_study_attr, study_attrs
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


def test_optuna_studies_prints_rows_under_1000_characters_and_resume_reads_the_rest(created, tmp_path):
    study, url = created
    optuna_cli = Path(sys.executable).with_name("optuna")  # the console script beside this Python
    result = subprocess.run([str(optuna_cli), "studies", "--storage", url],
                            capture_output=True, text=True, check=True, cwd=tmp_path)
    rows = [line for line in result.stdout.splitlines() if "tiny" in line]
    assert len(rows) == 1 and len(rows[0]) < 1000, rows
    assert "sweep:n_trials" in rows[0] and "sweep:config" not in rows[0]
    # The long records are system attrs in the same database: a fresh reader gets them all.
    records = study_attrs(optuna.load_study(study_name="tiny", storage=url))
    assert set(records) >= {attrs.CONFIG, attrs.SEARCH_SPACE, attrs.VERSIONS, attrs.MODEL, attrs.CODE}
    assert attrs.CONFIG not in study.user_attrs and read_config(study)["train"]["epochs"] == 1


def test_a_study_made_before_the_split_still_reads_whole(created):
    """Older studies keep every record in user attrs; the config may be split in two there."""
    study, _ = created
    whole = read_config(study)
    old = optuna.create_study(study_name="old", storage=study._storage)  # noqa: SLF001
    old.set_user_attr(attrs.CONFIG_EXTRA, {k: v for k, v in whole.items() if k in ("search", "lr_finder")})
    old.set_user_attr(attrs.CONFIG, {k: v for k, v in whole.items() if k not in ("search", "lr_finder")})
    old.set_user_attr(attrs.SEARCH_SPACE, {"schedules": ["cosine"]})
    assert read_config(old) == whole and study_attrs(old)[attrs.SEARCH_SPACE] == {"schedules": ["cosine"]}
    changed = {**whole, "search": {**whole["search"], "schedules": ["constant"]}}
    set_study_attr(old, attrs.CONFIG, changed)  # --force on an old study writes the new form
    assert read_config(old) == changed, "the old split half must not override a whole config"
