import json

import pytest

from sweep.errors import ConfigError
from sweep.training.params import TrialParams, parse_params


def test_inline_json_and_dict_round_trip():
    p = parse_params('{"initial_lr": 0.01, "schedule": "step", "warmup_fraction": 0.1, '
                     '"decay_rate": 0.9, "decay_steps": 100}')
    assert p.to_dict() == {"initial_lr": 0.01, "schedule": "step", "warmup_fraction": 0.1,
                           "decay_rate": 0.9, "decay_steps": 100}
    assert TrialParams(initial_lr=0.1).to_dict() == {"initial_lr": 0.1, "schedule": "constant",
                                                       "warmup_fraction": 0.0}


def test_file_json_and_best_config_yaml(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"initial_lr": 0.002, "schedule": "cosine"}))
    assert parse_params(str(tmp_path / "p.json")).schedule == "cosine"
    (tmp_path / "best_config.yaml").write_text("study: {name: x}\nparams:\n  initial_lr: 3.0e-3\n  schedule: linear\n")
    assert parse_params(str(tmp_path / "best_config.yaml")).initial_lr == 0.003


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('{"initial_lr": -1}', "initial_lr"),
        ('{"initial_lr": 0.1, "schedule": "exponential"}', "needs decay_rate and decay_steps"),
        ('{"initial_lr": 0.1, "decay_rate": 0.5}', "apply only to"),
        ('{"initial_lr": 0.1, "lr": 3}', "lr: unknown parameter"),
        ('{"initial_lr": 0.1,', "invalid JSON"),
        ("[1, 2]", "neither a JSON object nor an existing file"),
        ('{"initial_lr": 0.1, "schedule": "sawtooth"}', "schedule"),
    ],
)
def test_bad_params(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_params(text)
