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
