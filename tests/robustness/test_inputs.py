"""Malformed configs and command lines: exit 2, one clear line, nothing written."""

import math
import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.robustness.conftest import TINY

BASE = yaml.safe_load(TINY)

# (what the config file holds, what the line must mention)
BAD_CONFIGS = [
    ("stduy: {name: x}\n", "stduy"),                                          # unknown section
    ("study: {name: x, trials: 3}\n", "trials"),                              # unknown key
    ("study: {n_trials: three}\n", "n_trials"),                               # wrong type
    ("study: {n_trials: 2.5}\n", "n_trials"),
    ("study: {n_trials: 0}\n", "n_trials"),                                   # zero
    ("study: {n_trials: -4}\n", "n_trials"),                                  # negative
    ("study: {n_trials: 100000000000000000000}\n", "n_trials"),               # huge
    ("study: {seed: -1}\n", "seed"),
    ("study: {workers: 0}\n", "workers"),
    ("study: {timeout_s: .nan}\n", "timeout_s"),                              # NaN
    ("study: {metric: accuracy}\n", "metric"),
    ("study: {pruner: sometimes}\n", "pruner"),
    ("study: {sampler: grid}\n", "sampler"),
    ("study: {name: ../x}\n", "name"),                                        # path traversal
    ("study: {name: /etc/passwd}\n", "name"),                                 # absolute path
    ("study: {name: a/b}\n", "name"),                                         # separator
    ("study: {name: 'a b'}\n", "name"),                                       # space
    ("study: {name: ｆｍｎｉｓｔ}\n", "name"),                                  # look-alike unicode
    ("study: {name: ''}\n", "name"),
    ("study: {name: " + "x" * 65 + "}\n", "name"),
    ("data: {source: ftp}\n", "source"),
    ("data: {source: idx}\n", "path"),                                        # idx without a folder
    ("data: {limit: 0}\n", "limit"),
    ("data: {validation_fraction: 1.5}\n", "validation_fraction"),
    ("data: {validation_fraction: .inf}\n", "validation_fraction"),           # inf
    ("model: {filters: []}\n", "filters"),                                    # empty list
    ("model: {filters: [0]}\n", "filters"),
    ("model: {dropout: 1.0}\n", "dropout"),
    ("train: {epochs: 0}\n", "epochs"),
    ("train: {batch_size: -64}\n", "batch_size"),
    ("train: {optimizer: sgd2}\n", "optimizer"),
    ("search: {initial_lr: {low: 0.1, high: 0.01}}\n", "initial_lr"),         # low above high
    ("search: {initial_lr: {low: 0, high: 1}}\n", "initial_lr"),              # zero on a log scale
    ("search: {initial_lr: {low: -1.0e-3, high: 1}}\n", "initial_lr"),
    ("search: {initial_lr: {low: .nan, high: 1}}\n", "initial_lr"),
    ("search: {schedules: []}\n", "schedules"),                               # empty list
    ("search: {schedules: [cosine, cyclic]}\n", "schedules"),
    ("search: {schedules: [cosine, cosine]}\n", "schedules"),
    ("search: {decay_rate: {low: 0.5, high: 1.5}}\n", "decay_rate"),
    ("search: {decay_steps: {low: 10.5, high: 20}}\n", "decay_steps"),
    ("search: {warmup_fraction: {low: 0, high: 1}}\n", "warmup_fraction"),
    ("lr_finder: {start_lr: 10, end_lr: 1}\n", "lr_finder"),
    ("lr_finder: {num_steps: 0}\n", "num_steps"),
    ("lr_finder: {suggestion: median}\n", "suggestion"),
    ("study: {name: a}\nstudy: {name: b}\n", "duplicate"),                    # duplicate YAML keys
    ("study: {name: a, name: b}\n", "duplicate"),
    ("study: [1, 2\n", "yaml"),                                               # invalid YAML
    ("- just\n- a list\n", "mapping"),
    ("!!python/object/apply:os.system ['touch pwned']\n", ""),                # no object construction
    ("study: !!python/name:os.system {}\n", ""),
    ("[" * 10_000 + "]" * 10_000 + "\n", "nested too deeply"),                # RecursionError in PyYAML
    ("search: {initial_lr: {low: 1.0e-3, high: 1.0e+300}}\n", "initial_lr"),  # above what a trial accepts
    ("search: {initial_lr: {low: 1.0e-300, high: 1.0e+300}}\n", "initial_lr"),
    ("train: {epochs: 1.0e+400}\n", "epochs"),                                # overflows to inf
    ("study: {name: 2020-01-01}\n", "name"),                                  # YAML reads a date
    ("study: {name: \"a\\0b\"}\n", "name"),                                    # a NUL byte
    ("study: {n_trials: true}\n", "n_trials"),                                # a bool is not a number
    ("study: {timeout_s: -1}\n", "timeout_s"),
    ("study: {timeout_s: .inf}\n", "timeout_s"),
    ("study: {workers: 100000}\n", "workers"),
    ("study: null\n", "study"),
    ("data: {limit: 5}\n", "limit"),
    ("model: {filters: [4, 4, 4, 4, 4, 4, 4, 4]}\n", "filters"),
    ("model: {dense_units: 100000000000}\n", "dense_units"),
    ("lr_finder: {num_steps: 10000000000}\n", "num_steps"),
    ("base: &b {name: x}\nstudy: {<<: *b}\n", "merge"),                         # YAML merge keys are not read
    ("study:\n\tname: x\n", "yaml"),                                           # a tab for indentation
]


@pytest.mark.parametrize("text, expect", BAD_CONFIGS,
                         ids=[f"{i:02d}-{expect or 'tag'}" for i, (_, expect) in enumerate(BAD_CONFIGS)])
def test_bad_config_files(cli, text, expect):
    (cli.root / "bad.yaml").write_text(text)
    cli.assert_clear_error("run", "bad.yaml", expect=expect)
    assert not (cli.root / "pwned").exists()


def test_non_utf8_bytes(cli):
    (cli.root / "bad.yaml").write_bytes(b"study: {name: \xff\xfe}\n")
    cli.assert_clear_error("run", "bad.yaml", expect="UTF-8")


def test_utf16_text(cli):
    (cli.root / "bad.yaml").write_bytes("study: {name: x}\n".encode("utf-16"))
    cli.assert_clear_error("run", "bad.yaml", expect="UTF-8")


def test_a_directory_instead_of_a_file(cli):
    (cli.root / "adir.yaml").mkdir()
    cli.assert_clear_error("run", "adir.yaml", expect="not a file")
    cli.assert_clear_error("run", "/", expect="not a file")
    cli.assert_clear_error("run", "/dev/null", expect="not a file")


def test_a_missing_file(cli):
    cli.assert_clear_error("run", "nope.yaml", expect="no such file")


BAD_COMMAND_LINES = [
    (["run", "tiny.yaml", "--set", "noequals"], "KEY=VALUE"),
    (["run", "tiny.yaml", "--set", "=3"], "KEY=VALUE"),
    (["run", "tiny.yaml", "--set", "study..name=x"], "study..name"),
    (["run", "tiny.yaml", "--set", "study.nonexistent=1"], "nonexistent"),
    (["run", "tiny.yaml", "--set", "train.epochs=many"], "epochs"),
    (["run", "tiny.yaml", "--set", "study.name=../../etc"], "name"),
    (["run", "tiny.yaml", "--workers", "0"], "--workers"),
    (["run", "tiny.yaml", "--n-trials", "-1"], "--n-trials"),
    (["run", "tiny.yaml", "--n-trials", "lots"], "--n-trials"),
    (["run"], "CONFIG"),
    (["fly"], "fly"),
    (["resume", "ghost"], "ghost"),                      # unknown study
    (["resume", "../ghost"], "name"),
    (["resume", "tiny", "--set", "train.epochs=3"], "resume can only change"),
    (["status", "ghost"], "ghost"),
    (["report", "ghost"], "ghost"),
    (["report", "a/b"], "a/b"),
    (["compare", "only-one"], ""),
    (["evaluate", "ghost"], "ghost"),
    (["evaluate", "ghost", "--top", "0"], "--top"),
    (["train", "tiny.yaml", "--params", "{not json"], "JSON"),
    (["train", "tiny.yaml", "--params", '{"initial_lr": -1, "schedule": "constant"}'], "initial_lr"),
    (["train", "tiny.yaml", "--params", '{"initial_lr": 0.1, "schedule": "step"}'], "decay"),
    (["lr-find", "tiny.yaml", "--set", "lr_finder.num_steps=-5"], "num_steps"),
    (["run", "tiny.yaml", "--storage", "notaurl"], "notaurl"),
    (["run", "tiny.yaml", "--workers", "100000"], "--workers"),          # would start 100000 processes
    (["resume", "tiny", "--workers", "65"], "--workers"),
    (["run", "tiny.yaml", "--n-trials", "99999999999999999999"], "--n-trials"),
    (["run", "tiny.yaml", "--set", "train.epochs=1e400"], "epochs"),
    (["run", "tiny.yaml", "--set", "study.name="], "name"),
    (["run", "tiny.yaml", "--set", "search.schedules=["], "invalid YAML"),
    (["run", "tiny.yaml", "--set", "study=3"], "study"),
    (["run", "tiny.yaml", "--set", "study.name.x=3"], "not a section"),
    (["run", "tiny.yaml", "--set", "study.name=nul\x00byte"], "invalid YAML"),
    (["run", "tiny.yaml", "--set"], "--set"),
    ([], "COMMAND"),
    (["-v"], "COMMAND"),
    (["train", "tiny.yaml", "--params", "[]"], "neither"),
    (["train", "tiny.yaml", "--params", '{"initial_lr": NaN, "schedule": "constant"}'], "finite"),
    (["train", "tiny.yaml", "--params", '{"initial_lr": 0.1, "schedule": "constant", "x": 1}'], "unknown parameter"),
    (["compare", "a", "../b"], "study name"),
    (["status", "x y"], "study name"),
    (["evaluate", "x", "--top", "-3"], "--top"),
]


@pytest.mark.parametrize("argv, expect", BAD_COMMAND_LINES)
def test_bad_command_lines(cli, argv, expect):
    cli.assert_clear_error(*argv, expect=expect)


# --- generated cases ------------------------------------------------------------------

NUMERIC_FIELDS = {  # field -> a strategy of values the schema must refuse
    ("study", "n_trials"): st.one_of(st.integers(max_value=0), st.integers(min_value=1_000_001)),
    ("train", "epochs"): st.integers(max_value=0),
    ("train", "batch_size"): st.integers(max_value=0),
    ("data", "validation_fraction"): st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0),
                                               st.just(math.nan), st.just(math.inf)),
    ("model", "dropout"): st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1.0)),
}
WRONG_TYPES = st.one_of(st.text(min_size=1).filter(lambda s: not s.strip().lstrip("-").replace(".", "").isdigit()),
                        st.lists(st.integers(), min_size=1), st.dictionaries(st.text(min_size=1), st.integers(),
                                                                                 min_size=1), st.booleans())


def _write(cli, raw) -> None:
    (cli.root / "gen.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(NUMERIC_FIELDS)), data=st.data())
def test_generated_out_of_range_values(cli, field, data):
    value = data.draw(NUMERIC_FIELDS[field])
    raw = yaml.safe_load(TINY)
    raw[field[0]][field[1]] = value
    _write(cli, raw)
    cli.assert_clear_error("run", "gen.yaml", expect=field[1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(NUMERIC_FIELDS)), value=WRONG_TYPES)
def test_generated_wrong_types(cli, field, value):
    raw = yaml.safe_load(TINY)
    raw[field[0]][field[1]] = value
    _write(cli, raw)
    cli.assert_clear_error("run", "gen.yaml", expect=field[1])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from(sorted(BASE)),
       key=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20))
def test_generated_unknown_keys(cli, section, key):
    raw = yaml.safe_load(TINY)
    if key in raw[section]:
        return
    raw[section][key] = 1
    _write(cli, raw)
    cli.assert_clear_error("run", "gen.yaml")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=1, max_size=80).filter(
    lambda s: not (s.isascii() and len(s) <= 64 and all(c.isalnum() or c in "-_" for c in s))))
def test_generated_bad_study_names(cli, name):
    raw = yaml.safe_load(TINY)
    raw["study"]["name"] = name
    _write(cli, raw)
    cli.assert_clear_error("run", "gen.yaml", expect="name")
    cli.assert_clear_error("resume", name)


KNOWN_KEYS = {f"{section}.{key}" for section, fields in BASE.items() for key in fields} | set(BASE) | {
    "search", "search.initial_lr", "search.schedules", "search.decay_rate", "search.decay_steps",
    "search.warmup_fraction", "study.storage", "study.timeout_s", "study.metric", "study.objective", "study.sampler",
    "study.pruner", "study.workers", "data.source", "data.path", "train.optimizer"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
                    max_size=30).filter(lambda s: s.partition("=")[0].strip() not in KNOWN_KEYS))
def test_generated_set_overrides(cli, item):
    """Any --set whose key is not a config field (or that has no "=") is refused in one line."""
    cli.assert_clear_error("run", "tiny.yaml", "--set", item)


@pytest.mark.slow
@pytest.mark.parametrize("argv", [
    ["run", "bad.yaml"],
    ["run", "tiny.yaml", "--set", "train.epochs=0"],
    ["resume", "../x"],
    ["resume", "ghost"],
    ["run", "tiny.yaml", "--storage", "postgresql+psycopg://u:pw@127.0.0.1:1/x"],
    ["run", "tiny.yaml", "--set", "data.source=idx", "--set", "data.path=/etc"],
], ids=["config", "set", "name", "unknown", "url", "data"])
def test_as_a_real_process(tmp_path, argv):
    """The same contract through ``python -m sweep``: no TensorFlow or Optuna noise on stderr."""
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "bad.yaml").write_text("study: {n_trials: 0}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "sweep", *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and done.stderr.count("\n") == 1 and done.stderr.startswith("sweep: error: "), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "tiny.yaml"]


@pytest.mark.slow
def test_commands_write_only_under_studies_and_results(cli):
    """Names never become paths outside studies/ and results/ (run: test_injection.py)."""
    assert cli("lr-find", "tiny.yaml", "--set", "lr_finder.num_steps=20")[0] == 0
    assert cli("train", "tiny.yaml", "--params", '{"initial_lr": 0.001, "schedule": "constant"}')[0] == 0
    written = sorted(str(p.relative_to(cli.root)) for p in cli.root.rglob("*") if p.is_file())
    assert written == ["results/tiny/lr_finder.json", "results/tiny/lr_finder.png", "tiny.yaml"], written
