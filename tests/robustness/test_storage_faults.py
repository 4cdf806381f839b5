"""Storage faults: each a clear error, and nothing already stored harmed."""

import os
import sqlite3
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from sweep.errors import StudyError
from sweep.storage.database import make_storage
from tests.conftest import ROOT
from tests.robustness.conftest import copy_study, fill, read_only, small_disk, snapshot, study_rows

SECRET = "hunter2-Secret"


def _study_with_trials(root, name="tiny", n=3, db=None):
    (root / "studies").mkdir(exist_ok=True)
    url = f"sqlite:///{root}/studies/{db or name}.db"
    study = optuna.create_study(study_name=name, storage=make_storage(url, create=True), direction="maximize")
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
    "sqlite://",                                                      # in-memory: no other process sees it
    "sqlite:///:memory:",
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


def test_status_lists_the_good_studies_beside_a_corrupt_file(cli, capsys):
    _study_with_trials(cli.root)
    (cli.root / "studies" / "stray.db").write_bytes(b"this is not a database" * 100)
    from sweep.cli import main

    assert main(["status"]) == 0
    out, err = capsys.readouterr()
    assert "tiny" in out and "stray.db" not in out
    assert "stray.db: not a usable SQLite database" in err
    assert (cli.root / "studies" / "stray.db").read_bytes() == b"this is not a database" * 100


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
    _study_with_trials(tmp_path, name="keep", db="d")  # another study in the same file: must be left as it was
    keep_rows = study_rows(tmp_path / "studies" / "d.db")
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
            except (KeyError, StudyError):
                pass  # the database or the study is being created
        assert run.poll() is None, run.stdout.read()
        time.sleep(0.3)
    optuna.delete_study(study_name="d", storage=make_storage(url, create=False))
    output, _ = run.communicate(timeout=120)
    assert run.returncode == 1, output
    assert "Traceback" not in output
    assert "was deleted while this worker ran" in output.strip().splitlines()[-1]
    assert study_rows(tmp_path / "studies" / "d.db") == keep_rows


@pytest.mark.slow
def test_a_full_disk_fails_clearly_and_keeps_what_was_stored(cli, tmp_path):
    disk = tmp_path / "disk"
    with small_disk(disk, "600k"):
        _fill_the_disk_while_running(cli, disk, tmp_path)


def _fill_the_disk_while_running(cli, disk, tmp_path):
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


# --- files that are not sweep databases: a read must never change them ------------------


def test_databases_sweep_did_not_make_are_refused_and_left_byte_for_byte(cli):
    studies = cli.root / "studies"
    studies.mkdir()
    with sqlite3.connect(studies / "theirs.db") as conn:  # someone's own SQLite file
        conn.execute("CREATE TABLE notes (text)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    (studies / "empty.db").write_bytes(b"")
    (cli.root / "other.db").write_bytes((studies / "theirs.db").read_bytes())
    before = {p: p.read_bytes() for p in (studies / "theirs.db", studies / "empty.db", cli.root / "other.db")}
    for argv in (["status"], ["status", "theirs"], ["resume", "theirs"], ["report", "theirs"], ["evaluate", "theirs"],
                 ["resume", "empty"], ["report", "empty"],
                 ["status", "--storage", "sqlite:///other.db"], ["status", "x", "--storage", "sqlite:///other.db"],
                 ["resume", "x", "--storage", "sqlite:///other.db"], ["report", "x", "--storage", "sqlite:///other.db"]):
        cli.assert_clear_error(*argv, expect="no Optuna studies")
    # Byte for byte: WAL or Optuna's tables would change the header, not just the rows.
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in studies.iterdir()) == ["empty.db", "theirs.db"]


# --- a read-only studies/ folder ----------------------------------------------------------


@pytest.mark.parametrize("wal", [False, True], ids=["closed", "open-elsewhere"])
def test_a_read_only_studies_folder(cli, made_study, wal):
    """Writes fail in one line; reads work where SQLite can read (its -shm exists); rows unchanged.

    "open-elsewhere": another process has the database open, so its -wal and -shm files
    exist and SQLite opens it; "closed": they do not, and a read-only folder cannot hold them.
    """
    db = copy_study(made_study, cli.root)
    rows = study_rows(db)
    for side in (db.with_name("tiny.db-wal"), db.with_name("tiny.db-shm")):  # left by the read-only read above
        assert not side.exists() or side.name.endswith("-shm") or side.stat().st_size == 0
        side.unlink(missing_ok=True)
    holder = sqlite3.connect(db) if wal else None
    if holder is not None:
        holder.execute("SELECT count(*) FROM trials").fetchall()  # creates -wal and -shm
    try:
        with read_only(db.parent):
            if wal:
                for argv in (["run", "tiny.yaml", "--n-trials", "4"], ["resume", "tiny", "--n-trials", "4"]):
                    cli.assert_clear_error(*argv, expect="attempt to write a readonly database", code=1)
                code, out, err = cli("status", "tiny")
                assert code == 0 and "2/2 trials finished" in out, err
                code, out, err = cli("report", "tiny")  # results/ is writable
                assert code == 0 and (cli.root / "results" / "tiny" / "index.html").is_file(), err
            else:
                for argv in (["run", "tiny.yaml", "--n-trials", "4"], ["resume", "tiny", "--n-trials", "4"],
                             ["status"], ["status", "tiny"], ["report", "tiny"]):
                    cli.assert_clear_error(*argv, expect="is read-only")
    finally:
        if holder is not None:
            holder.close()
    assert study_rows(db) == rows


# --- a full disk --------------------------------------------------------------------------


def test_a_report_onto_a_full_disk(cli, made_study):
    db = copy_study(made_study, cli.root)
    rows = study_rows(db)
    disk = cli.root / "disk"
    with small_disk(disk, "256k"):
        fill(disk)
        cli.assert_clear_error("report", "tiny", "--out", disk / "report", expect="No space left on device", code=1)
        assert not list(disk.rglob(".*.tmp")), "a temporary file was left behind"
    assert study_rows(db) == rows


@pytest.mark.slow
def test_a_study_on_a_full_disk_keeps_its_trials(cli, made_study):
    """resume on a full disk: an error of one line or (SQLite reusing its WAL) success; the
    stored trials as they were either way."""
    disk = cli.root / "disk"
    with small_disk(disk, "1m"):
        db = copy_study(made_study, disk)
        rows = study_rows(db)
        fill(disk)
        os.chdir(disk)
        try:
            code, out, err = cli("resume", "tiny", "--n-trials", "4", "--no-report")
        finally:
            os.chdir(cli.root)
        assert "Traceback" not in err + out
        if code != 0:
            lines = [line for line in err.splitlines() if line.startswith("sweep: error: ")]
            assert code in (1, 2) and len(lines) == 1 and err.strip().splitlines()[-1] == lines[0], err[-2000:]
        assert study_rows(db)[:len(rows)] == rows
