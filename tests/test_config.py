import pytest

from sweep.config import DEFAULT_SCHEDULES as SCHEDULES, Config, apply_overrides, config_from_dict, load_config
from sweep.errors import ConfigError


def test_defaults_follow_the_guide():
    c = Config()
    assert (c.study.n_trials, c.study.metric, c.study.objective, c.study.sampler, c.study.pruner) == (
        40, "val_accuracy", "best", "tpe", "median")
    assert c.data.validation_fraction == 0.1 and c.data.source == "keras"
    assert (c.model.filters, c.model.dense_units, c.model.dropout) == ([32], 128, 0.1)
    assert (c.train.epochs, c.train.batch_size, c.train.optimizer) == (10, 64, "adam")
    assert (c.search.initial_lr.low, c.search.initial_lr.high) == (1e-5, 1.0)
    assert c.search.schedules == list(SCHEDULES)
    assert (c.search.decay_steps.low, c.search.decay_steps.high) == (50, 5000)
    assert (c.lr_finder.start_lr, c.lr_finder.end_lr, c.lr_finder.num_steps) == (1e-7, 10.0, 100)
    assert c.study.direction == "maximize"


def test_shipped_configs_are_valid():
    from tests.conftest import ROOT

    for path in (ROOT / "configs").glob("*.yaml"):
        load_config(path)


def test_exponent_without_dot_is_a_float(write_config):
    c = load_config(write_config("search:\n  initial_lr: {low: 1e-5, high: 1e-1}\n"))
    assert c.search.initial_lr.low == pytest.approx(1e-5)


def test_overrides_parse_values_as_yaml(write_config):
    c = load_config(write_config("study: {name: a}\n"), ["train.epochs=3", "data.source=idx", "data.path=/x",
                                                         "search.schedules=[cosine, linear]"])
    assert c.train.epochs == 3 and c.data.path == "/x" and c.search.schedules == ["cosine", "linear"]


def test_an_override_into_a_missing_section_keeps_that_sections_defaults(write_config):
    c = load_config(write_config("study: {name: a}\n"), ["search.initial_lr.high=0.5", "lr_finder.narrow=false"])
    assert (c.search.initial_lr.low, c.search.initial_lr.high) == (pytest.approx(1e-5), 0.5)
    assert c.lr_finder.narrow is False and c.lr_finder.num_steps == 100
    given = load_config(write_config("search: {initial_lr: {low: 1.0e-4, high: 1.0}}\n"), ["search.initial_lr.high=0.5"])
    assert (given.search.initial_lr.low, given.search.initial_lr.high) == (pytest.approx(1e-4), 0.5)


def test_overrides_do_not_mutate_input():
    raw = {"train": {"epochs": 1}}
    apply_overrides(raw, ["train.epochs=5"], "x")
    assert raw == {"train": {"epochs": 1}}


def test_every_objective_is_accepted_and_others_are_refused(write_config):
    from typing import get_args

    from sweep.config import OBJECTIVES, StudyConfig

    assert get_args(StudyConfig.model_fields["objective"].annotation) == OBJECTIVES
    for objective in OBJECTIVES:
        assert load_config(write_config("study: {name: a}\n"), [f"study.objective={objective}"]).study.objective == objective
    with pytest.raises(ConfigError, match="study.objective"):
        load_config(write_config("study: {name: a}\n"), ["study.objective=mean"])


def test_family_ranges_fixed_or_searched(write_config):
    c = load_config(write_config("search: {schedules: [one_cycle, cosine_restarts], t_mul: {low: 1.0, high: 3.0}, "
                                 "min_lr_ratio: null}\n"), ["search.m_mul=0.8"])
    assert c.search.t_mul.high == 3.0 and c.search.m_mul == 0.8 and c.search.min_lr_ratio is None
    assert config_from_dict(c.to_dict()) == c


def test_round_trip_through_dict():
    c = config_from_dict({"study": {"name": "rt"}, "train": {"epochs": 2}})
    assert config_from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "text, overrides, fragment",
    [
        ("study: {nmae: x}\n", [], "study.nmae: unknown key; expected one of: name,"),
        ("train: {epochs: ten}\n", [], "train.epochs"),
        ("train: {epochs: true}\n", [], "train.epochs"),
        ("search: {initial_lr: {low: -1.0e-3, high: 1.0}}\n", [], "search.initial_lr.low"),
        ("search: {initial_lr: {low: 0, high: 1.0}}\n", [], "search.initial_lr.low"),
        ("search: {initial_lr: {low: 0.1, high: 0.01}}\n", [], "low must be below high"),
        ("search: {schedules: [cosine, sawtooth]}\n", [], "search.schedules.1"),
        ("search: {schedules: []}\n", [], "search.schedules"),
        ("search: {initial_lr: {low: .nan, high: 1.0}}\n", [], "finite"),
        ("study: {name: ../evil}\n", [], "study.name"),
        ("study: {name: 'a b'}\n", [], "study.name"),
        ("study: [1, 2\n", [], "invalid YAML"),
        ("study: {name: a}\nstudy: {name: b}\n", [], "duplicate key 'study'"),
        ("data: {source: idx}\n", [], "data.path"),
        ("study: {name: ok}\n", ["train.epochs"], "expected KEY=VALUE"),
        ("study: {name: ok}\n", ["=3"], "expected KEY=VALUE"),
        ("study: {name: ok}\n", ["study.name.x=3"], "study.name is a value"),
        ("study: {name: ok}\n", ["train.epochz=3"], "train.epochz: unknown key"),
        ("- just\n- a list\n", [], "expected a mapping"),
        ("search: {pct_start: {low: 0.1, high: 1.0}}\n", [], "pct_start must lie in (0, 1)"),
        ("search: {decay_shapes: [sqrt, sqrt]}\n", [], "decay_shapes must not repeat"),
        ("search: {decay_shapes: [exp]}\n", [], "search.decay_shapes.0"),
        ("search: {t_mul: 0.5}\n", [], "t_mul must lie in [1, 10]"),
        ("search: {m_mul: {low: 0.5, high: 2.0}}\n", [], "m_mul must lie in (0, 1]"),
        ("search: {min_lr_ratio: {low: 0.0, high: 0.1}}\n", [], "0 itself is always searched"),
        ("lr_finder: {seed_schedule: sawtooth}\n", [], "lr_finder.seed_schedule"),
    ],
)
def test_invalid_configs_name_the_field(write_config, text, overrides, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text), overrides)
    message = str(info.value)
    assert fragment in message
    assert ("config.yaml" in message or "--set" in message) and "\n" not in message


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is not a file"):
        load_config(tmp_path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"study: {name: \xff\xfe}\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_yaml_is_loaded_safely(write_config):
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write_config("study: !!python/object/apply:os.system ['echo hacked']\n"))
