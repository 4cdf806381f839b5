import csv
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from sweep import attrs
from sweep.cli import main
from sweep.config import config_from_dict
from sweep.training.params import parse_params
from sweep.report import write_comparison, write_report
from sweep.report.analysis import importance
from sweep.report.data.collect import collect
from sweep.report.findings.summary import findings
from sweep.report.render.markdown import escape
from sweep.report.data.source import open_study_for_reading, split_spec
from tests.conftest import ROOT
from tests.fake_study import build_study

XSS = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def study():
    return build_study(40)


@pytest.fixture(scope="module")
def report_dir(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    write_report(study, out, storage_url="sqlite:///studies/fake.db")
    return out


def reported(study):
    return [t for t in study.trials if not t.user_attrs.get(attrs.SURPLUS)]


def markdown_table(text: str, first_header: str) -> list[dict]:
    """The rows of the Markdown table whose first column is ``first_header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")))))
    return rows


def test_best_value_in_report_md_equals_study_best_value(study, report_dir):
    text = (report_dir / "report.md").read_text()
    line = next(line for line in text.splitlines() if line.startswith("- **Best value**"))
    assert line == f"- **Best value**: {study.best_value:.4f} (trial #{study.best_trial.number})"
    top = markdown_table(text, "rank")
    assert top[0]["trial"] == f"#{study.best_trial.number}" and top[0]["val\\_accuracy"] == f"{study.best_value:.4f}"


def test_schedule_table_counts_equal_trials_per_type(study, report_dir):
    rows = markdown_table((report_dir / "report.md").read_text(), "schedule")
    expected = Counter(t.params["schedule"] for t in reported(study))
    assert {r["schedule"]: int(r["trials"]) for r in rows} == dict(expected)
    complete = Counter(t.params["schedule"] for t in reported(study) if t.state.name == "COMPLETE")
    assert {r["schedule"]: int(r["complete"]) for r in rows} == dict(complete)
    for row in rows:  # best per type, and the table sorted best first
        values = [t.value for t in reported(study) if t.state.name == "COMPLETE" and t.params["schedule"] == row["schedule"]]
        assert row["best val\\_accuracy"] == f"{max(values):.4f}"
    bests = [float(r["best val\\_accuracy"]) for r in rows]
    assert bests == sorted(bests, reverse=True)


def test_trials_csv_has_one_row_per_trial_and_leaves_surplus_out(study, report_dir):
    frame = pd.read_csv(report_dir / "trials.csv")
    trials = reported(study)
    assert len(trials) < len(study.trials)  # the fixture has surplus trials to leave out
    assert frame["number"].tolist() == [t.number for t in trials]
    assert frame["state"].tolist() == [t.state.name for t in trials]
    best = frame.set_index("number").loc[study.best_trial.number]
    assert best["value"] == pytest.approx(study.best_value)
    assert best["initial_lr"] == pytest.approx(study.best_params["initial_lr"])
    pruned = frame[frame["state"] == "PRUNED"]
    assert set(pruned["prune_reason"]) == {"pruned", "diverged"}
    assert frame["seeded_by_prior"].sum() == 3
    assert frame.set_index("number").loc[6, "retried_from"] == 5


def test_every_string_from_the_study_is_escaped_and_passwords_are_masked(tmp_path):
    study = build_study(12, title=XSS)
    study.set_user_attr(attrs.LR_FINDER, {**study.user_attrs[attrs.LR_FINDER], "method": XSS})
    study.set_user_attr(attrs.VERSIONS, {"sweep": XSS})
    config = study.user_attrs[attrs.CONFIG]
    config["study"]["storage"] = "postgresql://me:s3cret@db/sweeps"  # sweep run masks it; other writers may not
    study.set_user_attr(attrs.CONFIG, config)
    write_report(study, tmp_path, storage_url="postgresql://me:s3cret@db/sweeps")
    for path in ("index.html", "report.md", "best_config.yaml"):
        text = (tmp_path / path).read_text()
        assert "s3cret" not in text and "postgresql://me:***@db/sweeps" in text
    page = (tmp_path / "index.html").read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    markdown = (tmp_path / "report.md").read_text()
    outside_code = re.sub(r"```.*?```", "", markdown, flags=re.S)
    assert "<script>" not in outside_code and r"\<script\>" in outside_code
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and p.parent == tmp_path) == [
        "best_config.yaml", "index.html", "lr_finder.json", "report.md", "trials.csv"]


def test_markdown_escape_neutralises_markup():
    assert escape("a|b*c_d`e") == r"a\|b\*c\_d\`e"
    assert escape("[x](javascript:y)") == r"\[x\](javascript:y)"
    assert escape("# title\nnext") == r"\# title next"
    assert escape("0.8760 (trial #6)") == "0.8760 (trial #6)"


def test_page_is_self_contained_with_every_figure_inline(study, report_dir):
    page = (report_dir / "index.html").read_text()
    figures = sorted(p.stem for p in (report_dir / "figures").glob("*.png"))
    assert figures == sorted(["best_so_far", "lr_vs_value", "schedules", "top_epochs", "top_lr_curves",
                              "lr_finder", "importances", "intermediate"])
    assert page.count('src="data:image/png;base64,') == len(figures)
    assert not re.search(r'src="(?!data:)', page)  # nothing loaded from elsewhere


def test_at_phone_width_tables_scroll_in_their_box_and_their_notes_wrap_outside_it(report_dir):
    page = (report_dir / "index.html").read_text()
    tables = re.findall(r'<div class="scroll"><table.*?</table></div>(<p class="note">)?', page, re.S)
    assert len(tables) == page.count("<table") >= 3, "every table sits in a scroll box"
    assert any(tables) and "<caption" not in page, "a note is a paragraph after the box, not inside it"


def test_best_config_yaml_holds_the_config_and_the_best_params(study, report_dir):
    path = report_dir / "best_config.yaml"
    raw = yaml.safe_load(path.read_text())
    assert parse_params(str(path)).to_dict() == study.best_params
    config = config_from_dict({k: v for k, v in raw.items() if k != "params"})
    assert config.to_dict() == attrs.read_config(study.user_attrs)
    assert f"--seed {study.best_trial.user_attrs[attrs.SEED]}" in path.read_text()


def test_lr_finder_json_has_the_guide_keys(study, report_dir):
    result = json.loads((report_dir / "lr_finder.json").read_text())
    stored = study.user_attrs[attrs.LR_FINDER]
    for key in ("method", "suggestion", "lower", "upper", "lrs", "losses", "seconds"):
        assert result[key] == pytest.approx(stored[key]) if key != "method" else result[key] == stored[key]


def test_findings_name_the_best_trial_the_prior_and_pruning_savings(study):
    data = collect(study)
    texts = [f.text for f in findings(data)]
    best = study.best_trial
    assert any(t.startswith(f"Best: trial #{best.number} reached val_accuracy {best.value:.4f}") for t in texts)
    complete = sorted((t for t in reported(study) if t.state.name == "COMPLETE"), key=lambda t: (-t.value, t.number))
    rank = next(i for i, t in enumerate(complete, 1) if t.user_attrs.get(attrs.SEEDED_BY_PRIOR))
    assert any("seeded 3 trials" in t and f"ranked {rank}" in t and f"of {len(complete)} complete" in t for t in texts)
    epochs = 4
    stopped = [t for t in reported(study) if t.state.name == "PRUNED"]
    saved = sum(epochs - t.user_attrs[attrs.EPOCHS_RUN] for t in stopped)
    assert data.pruning.epochs_saved == saved > 0
    assert any(f"saving {saved} epochs" in t for t in texts)
    assert not any(f.warning and "edge" in f.text for f in findings(data))


def test_a_best_lr_at_the_edge_of_the_range_is_warned_about():
    study = build_study(20)
    best_lr = study.best_params["initial_lr"]
    space = {**study.user_attrs[attrs.SEARCH_SPACE], "initial_lr": {"low": 1e-5, "high": best_lr * 1.2}}
    study.set_user_attr(attrs.SEARCH_SPACE, space)
    warnings = [f.text for f in findings(collect(study)) if f.warning]
    assert any("upper edge" in t and "widen search.initial_lr" in t and f"#{study.best_trial.number}" in t
               for t in warnings)


def test_best_so_far_ends_at_the_best_value_and_never_gets_worse(study):
    data = collect(study)
    for frame in (data.best_by_number, data.best_by_time):
        assert frame["best"].iloc[-1] == pytest.approx(study.best_value)
        assert (np.diff(frame["best"]) >= 0).all()
    assert data.best_by_time["elapsed_s"].is_monotonic_increasing


def test_lr_curves_follow_the_schedule_formulas(study):
    data = collect(study)
    assert set(data.top["number"]) <= set(data.lr_curves)  # then each other schedule type's best
    drawn = {study.trials[n].params["schedule"] for n in data.lr_curves}
    assert drawn == set(data.trials.loc[data.trials["state"] == "COMPLETE", "schedule"])
    for number, (x, lr) in data.lr_curves.items():
        params = study.trials[number].params
        assert x[-1] == pytest.approx(4.0)  # in epochs
        if params["warmup_fraction"] == 0:
            assert lr[0] == pytest.approx(params["initial_lr"])
        if params["schedule"] in ("cosine", "linear"):
            assert lr[-1] == pytest.approx(0.0, abs=1e-12)


def test_importances_rank_the_parameter_the_value_depends_on():
    found = importance.ranked(importance.importances(build_study(40).trials, "maximize"))
    assert max(found, key=found.get) == "initial_lr"  # the fabricated value depends mostly on it
    assert sum(found.values()) == pytest.approx(1.0)


def test_report_of_a_study_without_finished_trials_says_so(tmp_path):
    study = optuna.create_study(direction="maximize")
    write_report(study, tmp_path)
    assert "No trial has completed yet" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "best_config.yaml").exists()
    assert pd.read_csv(tmp_path / "trials.csv").empty


def test_a_running_study_is_reported_as_unfinished_and_stale_files_go(report_dir, tmp_path):
    shutil.copytree(report_dir, tmp_path, dirs_exist_ok=True)  # an older report with an LR finder figure
    assert (tmp_path / "figures" / "lr_finder.png").exists()
    running = build_study(6, running=True)
    running.set_user_attr(attrs.LR_FINDER, None)  # as with lr_finder.enabled: false
    write_report(running, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "**Warning:** The study is not finished: 5 of 6 trials done; 1 running" in text
    assert not (tmp_path / "figures" / "lr_finder.png").exists()
    assert not (tmp_path / "lr_finder.json").exists()


def test_report_command_writes_results_name_from_the_default_storage(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    study = build_study(10, storage="sqlite:///studies/demo.db", name="demo")
    assert main(["report", "demo"]) == 0
    assert capsys.readouterr().out.strip() == f"report written to {Path('results/demo/index.html')}"
    assert f"(trial #{study.best_trial.number})" in (tmp_path / "results" / "demo" / "report.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "studies"]


@pytest.mark.parametrize("argv, fragment", [
    (["report", "nope"], "no study database"),
    (["report", "bad/name"], "must match"),
    (["compare", "a"], "at least two"),
    (["compare", "a", "b", "c", "--storage", "sqlite:///x.db", "--storage", "sqlite:///y.db"], "--storage given 2"),
])
def test_report_and_compare_refuse_bad_input_with_one_line(tmp_path, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert list(tmp_path.iterdir()) == []


def test_compare_two_studies_in_different_sqlite_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    a = build_study(20, storage=f"sqlite:///{tmp_path / 'a.db'}", name="sweep", seed=1)
    b = build_study(12, storage=f"sqlite:///{tmp_path / 'b.db'}", name="sweep", seed=2)
    argv = ["compare", f"sqlite:///{tmp_path / 'a.db'}#sweep", "sweep", "--storage", f"sqlite:///{tmp_path / 'b.db'}"]
    assert main(argv) == 0
    out = tmp_path / "results" / "compare-sweep-sweep"
    assert capsys.readouterr().out.strip() == f"comparison written to {Path('results/compare-sweep-sweep/index.html')}"
    text = (out / "report.md").read_text()
    rows = {r["schedule"]: r for r in markdown_table(text, "schedule")}
    for label, study in (("sweep (a.db)", a), ("sweep (b.db)", b)):
        for schedule, row in rows.items():
            values = [t.value for t in study.trials if t.state.name == "COMPLETE" and t.params["schedule"] == schedule]
            assert row[escape(label)] == (f"{max(values):.4f} ({len(values)})" if values else "")
    summary = pd.read_csv(out / "comparison.csv")
    assert summary["best"].tolist() == pytest.approx([a.best_value, b.best_value])
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["best_so_far.png", "importances.png"]


def test_compare_warns_when_the_objectives_differ(tmp_path):
    index = write_comparison([build_study(10, name="acc"), build_study(10, name="loss", metric="val_loss")], tmp_path)
    assert "different objectives" in index.read_text()


@pytest.mark.parametrize("spec, expected", [("name", ("name", None)), ("sqlite:///a.db#x_1", ("x_1", "sqlite:///a.db")),
                                            ("postgresql://u:p#w@h/db#s", ("s", "postgresql://u:p#w@h/db"))])
def test_split_spec(spec, expected):
    assert split_spec(spec) == expected


def test_reading_does_not_wait_for_a_writer_holding_the_lock(tmp_path):
    db = tmp_path / "busy.db"
    study = build_study(10, storage=f"sqlite:///{db}", name="busy")
    writer = sqlite3.connect(db, timeout=1, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")  # a worker in the middle of a write transaction
    writer.execute("UPDATE studies SET study_name = study_name")
    try:
        started = time.perf_counter()
        opened, _ = open_study_for_reading("busy", f"sqlite:///{db}")
        data = collect(opened)
        assert time.perf_counter() - started < 10  # the busy timeout is 60 s
        assert data.best["value"] == pytest.approx(study.best_value)
    finally:
        writer.execute("ROLLBACK")
        writer.close()


@pytest.mark.slow
def test_report_code_imports_no_tensorflow_or_keras(tmp_path):
    code = ("import sys; import sweep.report, sweep.commands.report; from sweep.report import figures, compare; "
            "from tests.fake_study import build_study; from pathlib import Path; "
            f"sweep.report.write_report(build_study(10), Path({str(tmp_path)!r})); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'; print('clean')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "clean", proc.stderr[-2000:]


def test_trials_csv_columns_are_documented_names(report_dir):
    with open(report_dir / "trials.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[:8] == ["number", "state", "value", "initial_lr", "schedule", "warmup_fraction",
                          "decay_rate", "decay_steps"]
    assert {"epochs_run", "duration_s", "prune_reason", "seeded_by_prior", "dropped"} <= set(header)


def test_a_dropped_configuration_is_named_in_the_findings_with_its_reason():
    from optuna.trial import TrialState, create_trial

    from tests.fake_study import distributions

    study = build_study(12, name="dropped")
    params = {"initial_lr": 0.02, "schedule": "cosine", "warmup_fraction": 0.1}
    space = {k: v for k, v in distributions().items() if k in params}
    reason = "its worker died 4 times while training it"
    study.add_trial(create_trial(state=TrialState.FAIL, params=params, distributions=space,
                                 user_attrs={attrs.DROPPED: reason}))
    texts = [f.text for f in findings(collect(study))]
    number = study.trials[-1].number
    assert any(t.startswith(f"Trial #{number}'s configuration (") and "'initial_lr': 0.02" in t and reason in t
               for t in texts), texts
