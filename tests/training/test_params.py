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
        ('{"initial_lr": 0.1, "decay_rate": 0.5}', "decay_rate applies only to exponential and step"),
        ('{"initial_lr": 0.1, "lr": 3}', "lr: unknown parameter"),
        ('{"initial_lr": 0.1,', "invalid JSON"),
        ("[1, 2]", "neither a JSON object nor an existing file"),
        ('{"initial_lr": 0.1, "schedule": "sawtooth"}', "schedule"),
        ('{"initial_lr": 0.1, "schedule": "one_cycle"}', "needs pct_start"),
        ('{"initial_lr": 0.1, "schedule": "one_cycle", "pct_start": 1.0}', "pct_start"),
        ('{"initial_lr": 0.1, "schedule": "wsd", "decay_fraction": 0.2}', "needs decay_fraction and decay_shape"),
        ('{"initial_lr": 0.1, "schedule": "wsd", "decay_fraction": 0.2, "decay_shape": "exp"}', "decay_shape"),
        ('{"initial_lr": 0.1, "schedule": "cosine_restarts"}', "needs restart_fraction"),
        ('{"initial_lr": 0.1, "schedule": "cosine_restarts", "restart_fraction": 0.2, "t_mul": 0.5}', "t_mul"),
        ('{"initial_lr": 0.1, "schedule": "polynomial", "power": 0}', "power"),
        ('{"initial_lr": 0.1, "schedule": "cosine", "pct_start": 0.3}', "pct_start applies only to one_cycle"),
        ('{"initial_lr": 0.1, "schedule": "cosine", "t_mul": 2.0}', "t_mul applies only to cosine_restarts"),
        ('{"initial_lr": 0.1, "min_lr_ratio": 0.1}', "min_lr_ratio applies to every schedule but constant"),
        ('{"initial_lr": 0.1, "schedule": "cosine", "min_lr_ratio": 1.0}', "min_lr_ratio"),
    ],
)
def test_bad_params(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_params(text)


def test_every_family_takes_its_own_parameters():
    for text in ('{"initial_lr": 0.1, "schedule": "one_cycle", "pct_start": 0.3}',
                 '{"initial_lr": 0.1, "schedule": "wsd", "decay_fraction": 0.2, "decay_shape": "sqrt", "min_lr_ratio": 0.01}',
                 '{"initial_lr": 0.1, "schedule": "cosine_restarts", "restart_fraction": 0.2, "t_mul": 1.0, "m_mul": 0.5}',
                 '{"initial_lr": 0.1, "schedule": "polynomial", "power": 2.0, "warmup_fraction": 0.1}',
                 '{"initial_lr": 0.1, "schedule": "cosine", "min_lr_ratio": 0.0}'):
        assert parse_params(text).to_dict() == {"warmup_fraction": 0.0, **json.loads(text)}
