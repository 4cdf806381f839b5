"""Storage faults: each a clear error, and nothing already stored harmed."""

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from sweep.storage import make_storage
from tests.conftest import ROOT
from tests.robustness.conftest import snapshot

SECRET = "hunter2-Secret"


def _study_with_trials(root, name="tiny", n=3):
    (root / "studies").mkdir(exist_ok=True)
    study = optuna.create_study(study_name=name, storage=make_storage(f"sqlite:///studies/{name}.db", create=True),
                                direction="maximize")
    for value in range(n):
        study.add_trial(optuna.trial.create_trial(value=value / 10, params={"x": 0.5},
                                                  distributions={"x": optuna.distributions.FloatDistribution(0, 1)}))
    return study


@pytest.mark.parametrize("url", [
    f"postgresql+psycopg://sweep:{SECRET}@127.0.0.1:1/sweeps",       # nothing listens on port 1
    f"postgresql+psycopg://sweep:{SECRET}@no-such-host.invalid/sweeps",
    f"mysql://sweep:{SECRET}@127.0.0.1:1/sweeps",                     # driver not installed
    "sqlite:////proc/no/such/dir/x.db",
    "nosuchdialect://x",
])
def test_unusable_storage_urls(cli, url):
    for argv in (["run", "tiny.yaml", "--storage", url], ["status", "--storage", url],
                 ["status", "tiny", "--storage", url], ["report", "tiny", "--storage", url]):
        line = cli.assert_clear_error(*argv)
        assert SECRET not in line


def test_a_corrupt_sqlite_file_is_reported_and_left_as_it_was(cli):
    (cli.root / "studies").mkdir()
    (cli.root / "studies" / "tiny.db").write_bytes(b"this is not a database" * 100)
    for argv in (["run", "tiny.yaml"], ["status"], ["status", "tiny"], ["resume", "tiny"], ["report", "tiny"]):
        cli.assert_clear_error(*argv, expect="tiny.db")


def test_a_truncated_study_database(cli):
    _study_with_trials(cli.root)
    db = cli.root / "studies" / "tiny.db"
    db.write_bytes(db.read_bytes()[:2048])
    for argv in (["status", "tiny"], ["resume", "tiny"], ["report", "tiny"]):
        cli.assert_clear_error(*argv)


def test_studies_folder_that_cannot_be_created(cli):
    # Tests run as root, for whom chmod does not make a folder read-only: a file where
    # the studies/ folder should be is the fault root also meets.
    (cli.root / "studies").write_text("not a folder")
    cli.assert_clear_error("run", "tiny.yaml", expect="studies")


def test_a_study_that_is_not_a_sweep_study(cli):
    _study_with_trials(cli.root)
    before = snapshot(cli.root)
    cli.assert_clear_error("resume", "tiny", expect="not created by sweep")
    cli.assert_clear_error("run", "tiny.yaml", expect="not created by sweep")
    assert snapshot(cli.root) == before


@pytest.mark.slow
def test_a_study_deleted_while_a_worker_runs(tmp_path):
    config = tmp_path / "d.yaml"
    config.write_text("study: {name: d, n_trials: 6, seed: 0, pruner: none}\n"
                      "data: {source: synthetic, limit: 900, validation_fraction: 0.2}\n"
                      "model: {filters: [8], dense_units: 32, dropout: 0.0}\n"
                      "train: {epochs: 4, batch_size: 32}\nlr_finder: {enabled: false}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen([sys.executable, "-m", "sweep", "run", "d.yaml", "--no-report"], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"sqlite:///{tmp_path}/studies/d.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (tmp_path / "studies" / "d.db").exists():
            try:
                study = optuna.load_study(study_name="d", storage=make_storage(url, create=False))
                if study.get_trials(states=(TrialState.RUNNING,)):
                    break
            except KeyError:
                pass
        assert run.poll() is None, run.stdout.read()
        time.sleep(0.3)
    optuna.delete_study(study_name="d", storage=make_storage(url, create=False))
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 1, output
    assert "Traceback" not in output
    assert "was deleted while this worker ran" in output.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_full_disk_fails_clearly_and_keeps_what_was_stored(cli, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        os.chdir(disk)
        (disk / "tiny.yaml").write_text((cli.root / "tiny.yaml").read_text().replace("n_trials: 2", "n_trials: 40"))
        code, out, err = cli("run", "tiny.yaml", "--no-report")
        assert code != 0 and "Traceback" not in err, err[-3000:]
        assert "sweep: error:" in err.strip().splitlines()[-1]
        # What was stored before the disk filled up is still readable and intact.
        study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{disk}/studies/tiny.db")
        assert all(t.value is not None for t in study.get_trials(states=(TrialState.COMPLETE,)))
    finally:
        os.chdir(tmp_path)
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
