"""A study of the user's own model: bad code and data refused before anything is written,
a changed model file refused on resume (``--force`` adopts it), and a stored config edited
to name other code refused without calling it."""

import os
import re
import sys

import numpy as np
import optuna
import pytest
import yaml

from sweep import attrs
from sweep.cli import main
from sweep.storage.database import make_storage
from sweep.training.entry_points import file_sha256
from sweep.storage.records import set_study_attr, study_attrs
from tests.conftest import BN_DROPOUT_BUILDER

MLP = """
import keras

def build(input_shape, num_classes):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(num_classes, activation="softmax")])
"""


def write_npz(path, n=90, features=6, classes=3, **change):
    rng = np.random.default_rng(0)
    content = {"x_train": rng.random((n, features)).astype("float32"), "y_train": np.arange(n) % classes,
               "x_test": rng.random((30, features)).astype("float32"), "y_test": np.arange(30) % classes}
    content.update(change)
    content = {k: v for k, v in content.items() if v is not None}
    np.savez(path, **content)


@pytest.fixture
def own_study(tmp_path, monkeypatch, user_module):
    """A config next to its model module and data, run from that folder (as a new user would)."""
    monkeypatch.chdir(tmp_path)
    write_npz(tmp_path / "data.npz")

    def make(builder_source=MLP, **sections):
        name = user_module(builder_source)
        raw = {
            "study": {"name": "own", "n_trials": 1, "seed": 0, "pruner": "none"},
            "data": {"source": "npz", "path": "data.npz", "validation_fraction": 0.2},
            "model": {"builder": f"{name}:build"},
            "train": {"epochs": 1, "batch_size": 16},
            "lr_finder": {"enabled": False},
        }
        for section, values in sections.items():
            raw[section] = {**raw.get(section, {}), **values}
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
        return tmp_path / f"{name}.py"

    return make


def error_line(err: str) -> str:
    """The one line of a refusal (log lines, "[hh:mm:ss I] ...", may come before it)."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("sweep: error: ") and "Traceback" not in err, err
    return lines[0]


def load(tmp_path):
    return optuna.load_study(study_name="own", storage=make_storage(f"sqlite:///{tmp_path}/studies/own.db", create=False))


def test_resume_refuses_a_changed_model_file_and_force_adopts_it(tmp_path, own_study, capsys):
    module = own_study()
    assert main(["run", "config.yaml", "--no-report"]) == 0
    study = load(tmp_path)
    stored = study_attrs(study)[attrs.CODE]["model.builder"]
    assert stored["sha256"] == file_sha256(module) and stored["file"] == str(module.resolve())
    assert study_attrs(study)[attrs.CONFIG]["study"]["code_dir"] == str(tmp_path.resolve())
    assert study_attrs(study)[attrs.MODEL]["parameters"] == 6 * 8 + 8 + 8 * 3 + 3
    assert study.trials[0].user_attrs[attrs.MODEL_PARAMETERS] == 83

    module.write_text(MLP.replace("Dense(8,", "Dense(9,"))
    capsys.readouterr()
    for argv in (["resume", "own", "--n-trials", "2"], ["run", "config.yaml", "--n-trials", "2"]):
        assert main(argv) == 2
        err = error_line(capsys.readouterr().err)
        assert f"model.builder source {module.resolve()}: changed" in err
        assert "--force" in err
    assert len(load(tmp_path).trials) == 1 and load(tmp_path).user_attrs[attrs.N_TRIALS] == 1  # nothing written

    assert main(["resume", "own", "--force", "--n-trials", "2", "--no-report"]) == 0
    study = load(tmp_path)
    assert study_attrs(study)[attrs.CODE]["model.builder"]["sha256"] == file_sha256(module)
    assert [t.user_attrs[attrs.MODEL_PARAMETERS] for t in study.trials] == [83, 6 * 9 + 9 + 9 * 3 + 3]
    assert study_attrs(study)[attrs.MODEL]["parameters"] == 6 * 9 + 9 + 9 * 3 + 3  # the record follows the code


@pytest.mark.parametrize(
    "builder, code_dir, message",
    [
        ("os:abort", None, "standard library module 'os'"),
        ("shutil:rmtree", None, "standard library module 'shutil'"),
        ("numpy:zeros", "SITE_PACKAGES", "study.code_dir .*site-packages is not a folder this run may import code"),
    ],
)
def test_a_stored_config_edited_to_name_other_code_is_refused_and_nothing_is_called(
    tmp_path, own_study, capsys, monkeypatch, builder, code_dir, message
):
    own_study()
    assert main(["run", "config.yaml", "--no-report"]) == 0
    study = load(tmp_path)
    raw = study_attrs(study)[attrs.CONFIG]
    raw["model"]["builder"] = builder
    if code_dir:
        raw["study"]["code_dir"] = os.path.dirname(os.path.dirname(np.__file__))
    set_study_attr(study, attrs.CONFIG, raw)  # what someone with access to the database could do
    calls = []
    monkeypatch.setattr(os, "abort", lambda: calls.append("abort"))
    capsys.readouterr()
    assert main(["resume", "own", "--n-trials", "3"]) == 2
    err = error_line(capsys.readouterr().err)
    assert err.startswith("sweep: error: model.builder: " if code_dir is None else "sweep: error: study.code_dir ")
    assert re.search(message, err)
    assert calls == [] and len(load(tmp_path).trials) == 1 and load(tmp_path).user_attrs[attrs.N_TRIALS] == 1


def test_a_stored_code_dir_and_matching_hash_cannot_choose_the_code_resume_runs(tmp_path, own_study, capsys):
    """Someone with write access to the database points study.code_dir at another folder with
    a builder of theirs, and makes the stored hash match it: resume refuses, unexecuted."""
    own_study()
    assert main(["run", "config.yaml", "--no-report"]) == 0
    other = tmp_path.parent / f"{tmp_path.name}-other"
    other.mkdir()
    marker = other / "ran"
    planted = other / "planted_model.py"
    planted.write_text(f"open({str(marker)!r}, 'w').close()\n" + MLP)
    study = load(tmp_path)
    raw = study_attrs(study)[attrs.CONFIG]
    raw["study"]["code_dir"], raw["model"]["builder"] = str(other), "planted_model:build"
    set_study_attr(study, attrs.CONFIG, raw)
    set_study_attr(study, attrs.CODE, {"model.builder": {"entry_point": "planted_model:build", "file": str(planted),
                                                        "sha256": file_sha256(planted)}})
    capsys.readouterr()
    assert main(["resume", "own", "--n-trials", "2"]) == 2
    err = error_line(capsys.readouterr().err)
    assert f"study.code_dir {other} is not a folder this run may import code from ({tmp_path}" in err, err
    assert not marker.exists() and "planted_model" not in sys.modules
    assert len(load(tmp_path).trials) == 1 and load(tmp_path).user_attrs[attrs.N_TRIALS] == 1
    # The folder's owner says it is theirs: then it is their code, and it runs.
    assert main(["resume", "own", "--n-trials", "2", "--code-dir", str(other), "--no-report"]) == 0
    assert marker.exists() and len(load(tmp_path).trials) == 2


def test_a_changed_model_file_is_refused_before_its_new_code_runs(tmp_path, own_study, capsys):
    module = own_study()
    assert main(["run", "config.yaml", "--no-report"]) == 0
    marker = tmp_path / "ran"
    module.write_text(f"open({str(marker)!r}, 'w').close()\n" + MLP)
    capsys.readouterr()
    assert main(["resume", "own", "--n-trials", "2"]) == 2
    assert "changed since the study last ran it" in error_line(capsys.readouterr().err)
    assert not marker.exists()


BAD_BUILDERS = [
    ("def build(shape, classes):\n    raise RuntimeError('no GPU here')\n", "raised RuntimeError: no GPU here"),
    ("def build(shape, classes):\n    return 'a model'\n", "returned a str; expected an uncompiled keras.Model"),
    (MLP.replace("Dense(num_classes,", "Dense(4,"), r"output has shape \(None, 4\); expected \(None, 3\)"),
    ("def make(shape, classes):\n    pass\n", "has no function 'build'"),
    ("import keras\nkeras.no_such_thing()\n", "does not import: AttributeError"),
]


@pytest.mark.parametrize("source, message", BAD_BUILDERS)
def test_bad_builders_fail_the_run_before_anything_is_written(tmp_path, own_study, capsys, source, message):
    own_study(source)
    assert main(["run", "config.yaml"]) == 2
    assert re.search(message, error_line(capsys.readouterr().err))
    assert not (tmp_path / "studies").exists() and not (tmp_path / "results").exists()


BAD_DATA = [
    ({"y_train": None}, "no y_train"),
    ({"y_train": np.arange(89) % 3}, "x_train has 90 samples but y_train 89"),
    ({"y_test": np.arange(30) % 5}, "label 4 found but data.num_classes is 3"),
]


@pytest.mark.parametrize("change, message", BAD_DATA)
def test_bad_data_fails_the_run_before_anything_is_written(tmp_path, own_study, capsys, change, message):
    own_study(data={"num_classes": 3})
    write_npz(tmp_path / "data.npz", **change)
    assert main(["run", "config.yaml"]) == 2
    assert message in error_line(capsys.readouterr().err)
    assert not (tmp_path / "studies").exists()


def test_a_loader_returning_the_wrong_type_fails_before_anything_is_written(tmp_path, own_study, capsys, user_module):
    loader = user_module("def load():\n    return ('x', 'y')\n", prefix="loader")
    own_study(data={"source": "python", "loader": f"{loader}:load", "path": None})
    assert main(["run", "config.yaml"]) == 2
    assert "returned a tuple; expected a dict of numpy arrays" in error_line(capsys.readouterr().err)
    assert not (tmp_path / "studies").exists()


def test_train_and_lr_find_use_the_builder_too(tmp_path, own_study, capsys):
    module = own_study(BN_DROPOUT_BUILDER)
    assert main(["train", "config.yaml", "--params", '{"initial_lr": 0.01}']) == 0
    # Dense(16, no bias) 96 + BatchNormalization 4 * 16 + Dense(3) 51
    assert f"model {module.stem}:build with 211 parameters" in capsys.readouterr().out
    assert main(["lr-find", "config.yaml", "--set", "lr_finder.num_steps=10"]) == 0
    assert (tmp_path / "results" / "own" / "lr_finder.json").exists()
