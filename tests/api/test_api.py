"""The Python API (sweep.run, sweep.load, sweep.lr_find): the issue's acceptance in a fresh
process, and the pieces that need no training (config, overrides, in-memory code and arrays)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

import sweep
from sweep.api.inputs import resolve
from sweep.cli import main
from sweep.errors import ConfigError, DataError, StudyError
from sweep.training.entry_points import load_entry_point
from sweep.training.in_memory import register_arrays, register_builder
from tests.conftest import ROOT

ACCEPTANCE = textwrap.dedent("""
    import html, json, os, sys
    import numpy as np
    import keras
    import sweep
    from sweep.errors import ConfigError, StudyError

    def build(input_shape, num_classes):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dense(num_classes, activation="softmax")])

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    storage = "sqlite:///api.db"
    out = {}
    study = sweep.run({"study": {"name": "api", "n_trials": 3}, "train": {"epochs": 1}},
                      model=build, data=(x, y), storage=storage)
    out["best_params"] = sorted(study.best_params)
    out["finished_first"] = study.n_finished
    report = study.report()
    out["report_is_page"] = (html.unescape(report._repr_html_().split('srcdoc="', 1)[1].split('"', 1)[0])
                             == report.path.read_text() and report.html.startswith("<!DOCTYPE html>"))
    out["suggestion_type"] = type(sweep.lr_find(build, x, y).suggestion).__name__
    study = sweep.run({"study": {"name": "api", "n_trials": 3}, "train": {"epochs": 1}},
                      model=build, data=(x, y), storage=storage, n_trials=4)
    out["trials_after_second"] = len(study.trials)
    loaded = sweep.load("api", storage=storage)
    out["loaded_finished"] = loaded.n_finished
    out["dataframe_columns"] = list(loaded.trials_dataframe().columns)

    def other(input_shape, num_classes):  # another function: a config change
        return build(input_shape, num_classes)
    for name, call in [("other_builder", lambda: sweep.run({"study": {"name": "api"}, "train": {"epochs": 1}},
                                                           model=other, data=(x, y), storage=storage)),
                       ("other_arrays", lambda: sweep.run({"study": {"name": "api"}, "train": {"epochs": 1}},
                                                          model=build, data=(x * 2, y), storage=storage)),
                       ("wrong_key", lambda: sweep.run({"study": {"name": "api", "nme": 3}},
                                                       model=build, data=(x, y), storage=storage))]:
        try:
            call()
        except (ConfigError, StudyError) as exc:
            out[name] = [type(exc).__name__, str(exc)]
    out["after_refusals"] = sweep.load("api", storage=storage).n_finished
    # Two loky processes train a builder defined in __main__ (only cloudpickle ships it) on these arrays.
    workers = sweep.run({"study": {"name": "w", "n_trials": 2}, "train": {"epochs": 1}, "lr_finder": {"enabled": False}},
                        model=build, data=(x, y), storage="sqlite:///w.db", workers=2, report=False)
    out["workers_finished"] = workers.n_finished
    out["worker_pids"] = sorted({t.user_attrs.get("worker", "").rsplit(":", 1)[-1] for t in workers.trials
                                 if t.state.name == "COMPLETE"})
    out["parent_pid"] = str(os.getpid())
    print("RESULT " + json.dumps(out))
""")


@pytest.mark.slow
def test_acceptance_in_a_fresh_process(tmp_path, monkeypatch, capsys):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", ACCEPTANCE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("RESULT "), "library code printed to stdout: " + proc.stdout[:500]
    out = json.loads(lines[0].removeprefix("RESULT "))
    assert "initial_lr" in out["best_params"]
    assert out["finished_first"] == 3
    assert out["report_is_page"]
    assert out["suggestion_type"] == "float"
    assert out["trials_after_second"] == 4 and out["loaded_finished"] == 4  # exactly one more trial
    for column in ("number", "value", "params_initial_lr", "epochs_run", "best_epoch", "seeded_by_prior", "worker"):
        assert column in out["dataframe_columns"]
    kind, message = out["other_builder"]
    assert kind == "StudyError" and "model.builder: '__memory__.__main__:build' -> '__memory__.__main__:other'" in message
    kind, message = out["other_arrays"]
    assert kind == "ConfigError" and "data (the arrays passed to sweep.run) gives other images" in message
    assert out["after_refusals"] == 4  # nothing ran, nothing changed
    assert out["workers_finished"] == 2
    assert out["worker_pids"] and out["parent_pid"] not in out["worker_pids"], "trained in the worker processes"
    # A wrong key is the CLI's one line, word for word after the source (a file's path, "config").
    kind, message = out["wrong_key"]
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump({"study": {"name": "api", "nme": 3}}))
    cli = subprocess.run([sys.executable, "-m", "sweep", "run", "wrong.yaml"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2
    assert kind == "ConfigError" and message.startswith("config: study.nme: unknown key")
    assert cli.stderr.strip() == f"sweep: error: wrong.yaml: {message.removeprefix('config: ')}"
    # The study lives on in its database, but its builder lived only in that process: one line says so.
    monkeypatch.chdir(tmp_path)
    assert main(["resume", "api", "--storage", "sqlite:///api.db", "--n-trials", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "put it in a module file and set model.builder: module:function" in err
    assert sweep.load("api", storage="sqlite:///api.db").n_finished == 4


def build_dense(input_shape, num_classes):  # a builder in a module file under the working directory
    import keras

    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(num_classes, activation="softmax")])


def test_a_builder_from_a_module_file_is_a_plain_entry_point_and_one_from_a_notebook_is_in_memory(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert register_builder(build_dense) == "tests.api.test_api:build_dense"
    namespace: dict = {"__name__": "__main__"}
    exec("def build(input_shape, num_classes):\n    return 1\n", namespace)
    first = register_builder(namespace["build"])
    assert first == "__memory__.__main__:build"
    record = load_entry_point(first, None, "model.builder").describe()
    exec("def build(input_shape, num_classes):\n    return 2\n", namespace)  # edited and run again
    assert register_builder(namespace["build"]) == first
    assert load_entry_point(first, None, "model.builder").describe()["sha256"] != record["sha256"]
    with pytest.raises(ConfigError, match="expected a function"):
        register_builder(3)


def test_arrays_are_checked_and_named_by_their_content():
    x, y = np.zeros((40, 4), "float32"), np.arange(40) % 2
    spec = register_arrays({"x_train": x, "y_train": y})
    assert spec == register_arrays({"x_train": x.copy(), "y_train": y.copy()})
    assert spec != register_arrays({"x_train": x + 1, "y_train": y})
    with pytest.raises(DataError, match=r"^data: x_train has 40 samples but y_train 39"):
        register_arrays({"x_train": x, "y_train": y[:39]})
    with pytest.raises(ConfigError, match=r"^data: expected \(x, y\), \(x, y, x_test, y_test\)"):
        resolve({}, {}, data=(x,))


def test_overrides_in_every_form_reach_the_config(tmp_path):
    base = {"study": {"name": "o"}}
    assert resolve(base, {"train__epochs": 3}).train.epochs == 3
    assert resolve(base, {"train.epochs": 4}).train.epochs == 4
    assert resolve(base, {"train": {"epochs": 5}, "search__initial_lr": {"low": 1e-4, "high": 0.1}}).search.initial_lr.low == 1e-4
    assert resolve(base, {"model__filters": (8, 16)}).model.filters == [8, 16]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base))
    assert resolve(path, {"train__epochs": np.int64(2)}).train.epochs == 2
    assert resolve(resolve(base, {}), {"study__seed": 7}).study.seed == 7
    with pytest.raises(ConfigError, match=r"^config: train.epochs: Input should be a valid integer"):
        resolve(base, {"train__epochs": "three"})


def test_run_refuses_bad_counts_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kwargs, expected in [({"n_trials": 0}, "n_trials: expected a whole number from 1"),
                             ({"workers": 2.5}, "workers: expected a whole number from 1")]:
        with pytest.raises(ConfigError, match=expected):
            sweep.run({"study": {"name": "bad"}}, **kwargs)
    with pytest.raises(sweep.ConfigError, match="on_epoch: called only for trials trained in this process"):
        sweep.run({"study": {"name": "bad"}}, workers=2, on_epoch=print)
    with pytest.raises(ConfigError, match="lr_find: unknown option 'steps'"):
        sweep.lr_find(None, np.zeros((40, 28, 28), "uint8"), np.arange(40) % 2, steps=10)
    assert not (tmp_path / "studies").exists()


def test_load_and_report_of_a_stored_study(tmp_path):
    from tests.fake_study import build_study

    fake = build_study(8)
    study = sweep.Study(fake, "sqlite:///fake.db")
    frame = study.trials_dataframe()
    assert len(frame) == len(fake.get_trials()) and {"params_initial_lr", "epochs_run", "prune_reason"} <= set(frame)
    assert study.best_value == pytest.approx(fake.best_value)
    report = study.report(tmp_path / "r")
    assert report.path == tmp_path / "r" / "index.html" and report.html.startswith("<!DOCTYPE html>")
    written = report.path.stat().st_mtime_ns
    assert study.report(tmp_path / "r") is report and report.path.stat().st_mtime_ns == written  # unchanged study
    fake.set_user_attr("sweep:n_trials", 9)
    assert study.report(tmp_path / "r") is not report  # changed: written again
    with pytest.raises(StudyError):
        sweep.load("missing", storage=f"sqlite:///{tmp_path / 'none.db'}")


def test_the_bar_counts_finished_trials_of_the_budget_and_the_running_trials_epochs(capsys):
    from types import SimpleNamespace

    from sweep.api.progress import StudyProgress, in_notebook
    from sweep.study.budget import budget
    from tests.fake_study import build_study

    assert not in_notebook()  # pytest is a terminal: log lines, no bar, unless asked
    study = build_study(6)
    bar = StudyProgress(study, epochs_per_trial=4, epochs=True)
    status = budget(study)
    assert (bar._bar.n, bar._bar.total) == (status.finished, status.total)
    bar.epoch(7, SimpleNamespace(epoch=1, val_accuracy=0.5))
    bar.epoch(7, SimpleNamespace(epoch=3, val_accuracy=0.75))
    assert (bar._epochs.n, bar._epochs.desc) == (3, "trial 7: ")
    bar.epoch(8, SimpleNamespace(epoch=1, val_accuracy=0.6))
    assert (bar._epochs.n, bar._epochs.desc) == (1, "trial 8: ")
    bar.close()
    err = capsys.readouterr().err
    assert f"{status.finished}/{status.total}" in err and f"best {study.best_value:.4f}" in err
