import json
import subprocess
import sys
import time

import pytest

from sweep.cli import main
from tests.conftest import ROOT


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "sweep", *args], capture_output=True, text=True, cwd=ROOT)


def test_help_is_fast_and_does_not_import_tensorflow():
    code = ("import sys, time; t = time.perf_counter(); from sweep.cli import main; "
            "rc = main(['--help']); from sweep.cli import COMMANDS; "
            "[main([name, '--help']) for name in COMMANDS]; "
            "print('TF' if any(m.startswith(('tensorflow', 'keras')) for m in sys.modules) else 'clean', rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip().endswith("clean 0"), proc.stdout + proc.stderr
    started = time.perf_counter()
    proc = run_cli("--help")
    assert proc.returncode == 0 and "train" in proc.stdout
    assert time.perf_counter() - started < 5  # the 2 s goal is measured in the note; CI machines are noisy


def test_config_errors_are_one_line_exit_2_and_import_no_tensorflow(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: -3}\n")
    code = (f"import sys; from sweep.cli import main; rc = main(['train', {str(bad)!r}, '--params', '{{}}']); "
            "print(rc, any(m.startswith(('tensorflow', 'keras')) for m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "2 False"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.epochs" in lines[0] and "-3" in lines[0], proc.stderr


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["train"], "the following arguments are required"),
        (["frobnicate"], "invalid choice"),
        (["train", "configs/quickstart.yaml", "--params", "{bad"], "invalid JSON"),
        (["train", "configs/quickstart.yaml", "--set", "nodot", "--params", "{}"], "expected KEY=VALUE"),
        (["train", "configs/missing.yaml", "--params", "{}"], "no such file"),
        (["train", "configs/quickstart.yaml", "--params", '{"initial_lr": 0}'], "initial_lr"),
        (["status", "--storage", ""], "--storage: empty URL"),
        (["run", "configs/quickstart.yaml", "--storage", " "], "--storage: empty URL"),
        (["report", "quickstart", "--storage", ""], "--storage: empty URL"),
        (["compare", "a", "b", "--storage", ""], "--storage: empty URL"),
        (["run", "configs/quickstart.yaml", "--set", "study.storage=''"], "study.storage"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, monkeypatch, argv, fragment):
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sweep: error:") and fragment in err[0]


def test_train_on_synthetic_prints_epochs_and_best(tmp_path):
    proc = run_cli("train", "configs/quickstart.yaml", "--set", "data.source=synthetic", "--set", "data.limit=300",
                   "--set", "train.epochs=2", "--params", json.dumps({"initial_lr": 0.003, "schedule": "cosine"}))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert lines[-1].startswith("best val_accuracy ")
    assert "Traceback" not in proc.stderr and "oneDNN" not in proc.stderr


@pytest.mark.slow
def test_train_on_the_real_sample_reaches_082(sample_dir):
    """The foundation's acceptance run: 10 epochs of constant 1e-3 on the 3,000-image sample."""
    proc = run_cli("train", "configs/fashion_mnist.yaml", "--set", "data.source=idx", "--set", f"data.path={sample_dir}",
                   "--params", '{"initial_lr": 0.001, "schedule": "constant", "warmup_fraction": 0}')
    assert proc.returncode == 0, proc.stderr
    best = float(proc.stdout.strip().splitlines()[-1].split()[2])
    assert best >= 0.82


def test_python_dash_m_matches_the_console_script():
    proc = subprocess.run(["sweep", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == run_cli("--version").stdout.strip()


def test_train_reads_params_from_a_best_config_yaml(tmp_path, capsys):
    from sweep.cli import main

    best = tmp_path / "best_config.yaml"
    best.write_text(
        "study: {name: tiny}\n"
        "data: {source: synthetic, limit: 300, validation_fraction: 0.2}\n"
        "model: {filters: [4], dense_units: 16}\n"
        "train: {epochs: 1, batch_size: 32}\n"
        "params: {initial_lr: 0.003, schedule: step, warmup_fraction: 0.0, decay_rate: 0.9, decay_steps: 60}\n"
    )
    assert main(["train", str(best)]) == 0
    out = capsys.readouterr().out
    assert "'schedule': 'step'" in out and "'decay_steps': 60" in out and "best val_accuracy" in out
    (tmp_path / "plain.yaml").write_text("study: {name: tiny}\n")
    assert main(["train", str(tmp_path / "plain.yaml")]) == 2
    assert "no params: section" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(__import__("sweep.commands", fromlist=["COMMANDS"]).COMMANDS))
@pytest.mark.parametrize("extra", [["--no-such-option"], ["--storage"]])
def test_every_commands_argparse_errors_say_sweep_once(capsys, monkeypatch, name, extra):
    # Each command with an unknown option, and with an option missing its value (or an
    # unknown one where the command has no --storage): argparse's own errors.
    monkeypatch.chdir(ROOT)
    assert main([name, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"sweep: error: {name}: ") and err[0].count("sweep") == 2  # the prefix and the hint
    assert "error: sweep" not in err[0] and err[0].endswith(f"(see 'sweep {name} --help')")


def test_top_level_argparse_errors_say_sweep_once(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sweep: error: argument COMMAND: invalid choice") and "error: sweep" not in err


@pytest.mark.parametrize("name", sorted(__import__("sweep.commands", fromlist=["COMMANDS"]).COMMANDS))
def test_every_commands_help_shows_examples(capsys, name):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    examples = out.split("examples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith(f"  sweep {name}") for line in examples if line.strip())


def test_status_accepts_url_hash_name_and_shows_absolute_sqlite_paths(tmp_path, monkeypatch, capsys):
    from tests.fake_study import build_study

    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    build_study(8, storage="sqlite:///studies/fake.db", name="fake")
    assert main(["status", "sqlite:///studies/fake.db#fake"]) == 0
    assert capsys.readouterr().out.startswith("study fake: 8/8 trials finished")
    assert main(["status", "sqlite:///studies/fake.db#fake", "--storage", "sqlite:///x.db"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["status"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[:2] == ["fake", f"sqlite:///{tmp_path / 'studies' / 'fake.db'}"]
    assert main(["status", "--help"]) == 0
    assert "default: study.storage" not in capsys.readouterr().out


def test_train_one_cycle_without_initial_lr_peaks_at_the_range_tests_suggestion(tmp_path, capsys):
    """Issue 21's acceptance: over 5 epochs the LR rises, then falls below a fifth of its peak."""
    import re

    config = tmp_path / "tiny.yaml"
    config.write_text("study: {name: tiny}\ndata: {source: synthetic, limit: 200, validation_fraction: 0.2}\n"
                      "model: {filters: [2], dense_units: 8}\ntrain: {epochs: 5, batch_size: 32}\n"
                      "lr_finder: {num_steps: 10}\n")
    assert main(["train", str(config), "--params", '{"schedule": "one_cycle", "pct_start": 0.3}']) == 0
    out = capsys.readouterr().out
    suggestion = float(re.search(r"range test suggests (\S+)", out).group(1))
    lrs = [float(v) for v in re.findall(r"epoch +\d+/5 .* lr (\S+)", out)]
    assert len(lrs) == 5 and lrs[1] > lrs[0]  # epoch 2 ends just past the peak (30 % of training)
    peak = max(lrs)
    assert lrs.index(peak) == 1 and peak == pytest.approx(suggestion, rel=0.1)
    assert all(b < a for a, b in zip(lrs[1:], lrs[2:])) and lrs[-1] < peak / 5
