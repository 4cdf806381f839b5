"""configs/examples/ run offline as a new user would run them, on a tiny slice of the real sample."""

import subprocess
import sys

import optuna
import pytest

from sweep import attrs
from sweep.cli import main
from sweep.storage.database import make_storage
from sweep.storage.records import study_attrs
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

TINY = ["--set", "data.limit=300", "--set", "train.epochs=1", "--set", "study.n_trials=2",
        "--set", "lr_finder.num_steps=10", "--set", "lr_finder.seed_trials=2"]


def make_npz(sample_dir, out, *flags):
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_npz.py"), str(sample_dir), str(out),
                    "--limit", "400", *flags], check=True, capture_output=True, cwd=ROOT)
    return out


@pytest.mark.parametrize(
    "config, flags, input_shape, parameters",
    [
        # conv 3*3*16 + BN 4*16, conv 3*3*16*32 + BN 4*32, dense 32*10+10
        ("bn_cnn.yaml", [], [28, 28], 144 + 64 + 4608 + 128 + 330),
        # dense 784*128+128, 128*64+64, 64*10+10
        ("mlp.yaml", ["--flatten"], [784], 100480 + 8256 + 650),
    ],
)
def test_an_example_config_runs_a_study_with_its_own_model(tmp_path, monkeypatch, sample_dir, capsys,
                                                          config, flags, input_shape, parameters):
    npz = make_npz(sample_dir, tmp_path / "data.npz", *flags)
    monkeypatch.chdir(tmp_path)  # studies/ and results/ go here; code_dir is relative to the config
    code = main(["run", str(ROOT / "configs" / "examples" / config), *TINY, "--set", f"data.path={npz}"])
    assert code == 0, capsys.readouterr().err
    name = "example-" + config.removesuffix(".yaml").replace("_", "-")
    study = optuna.load_study(study_name=name, storage=make_storage(f"sqlite:///{tmp_path}/studies/{name}.db",
                                                                    create=False))
    model = study_attrs(study)[attrs.MODEL]
    assert model == {"name": f"{config.removesuffix('.yaml')}:build", "parameters": parameters,
                     "input_shape": input_shape, "num_classes": 10}
    assert study.user_attrs[attrs.LR_FINDER]["num_steps"] >= 5
    assert [t.user_attrs[attrs.MODEL_PARAMETERS] for t in study.trials] == [parameters, parameters]
    # One epoch on 271 images says nothing about accuracy; that every trial completed does.
    assert all(t.state == optuna.trial.TrialState.COMPLETE and 0.0 <= t.value <= 1.0 for t in study.trials)
    assert (tmp_path / "results" / name / "index.html").exists()
    assert main(["evaluate", name]) == 0
    stored = study_attrs(optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/studies/{name}.db"))
    evaluations = [v for k, v in stored.items() if k.startswith(attrs.EVALUATION_PREFIX)]
    assert len(evaluations) == 1 and evaluations[0]["trial"] == study.best_trial.number
    (seed, accuracy, loss, _), = evaluations[0]["runs"]
    assert 0.0 <= accuracy <= 1.0 and loss > 0


def test_the_regression_example_minimises_the_validation_mae(tmp_path, monkeypatch, capsys):
    """A user's regressor (one linear output) on real-valued targets: mse loss, MAE scored and
    minimised, SGD with Nesterov momentum, the newer schedule families, the range test on."""
    npz = tmp_path / "regression.npz"
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_regression.py"), str(npz), "--samples", "400"],
                   check=True, capture_output=True, cwd=ROOT)
    monkeypatch.chdir(tmp_path)
    config = ROOT / "configs" / "examples" / "regression.yaml"
    code = main(["run", str(config), "--set", f"data.path={npz}", "--set", "train.epochs=3",
                 "--set", "lr_finder.num_steps=30"])
    assert code == 0, capsys.readouterr().err
    name = "example-regression"
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path}/studies/{name}.db")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE and len(study.trials) == 6
    records = study_attrs(study)
    assert records[attrs.CONFIG]["study"]["direction"] == "minimize"
    assert records[attrs.MODEL]["num_classes"] == 1  # one output per sample
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    history = done[0].user_attrs[attrs.HISTORY]
    assert done and all(t.value == min(e["val_mae"] for e in t.user_attrs[attrs.HISTORY]) for t in done)
    assert "val_accuracy" not in history[0] and history[0]["val_mae"] > 0
    families = {t.params["schedule"] for t in study.trials}
    assert len(families) >= 2 and families <= {"one_cycle", "wsd", "cosine_restarts", "polynomial"}
    assert all(not set(t.params) & {"optimizer", "momentum", "weight_decay"} for t in study.trials)
    page = (tmp_path / "results" / name / "index.html").read_text()
    assert "val_mae" in page and "accuracy" not in page.lower().replace("val_accuracy", "")
    capsys.readouterr()
    assert main(["evaluate", name]) == 0
    out = capsys.readouterr().out
    assert "test MAE" in out and "accuracy" not in out
