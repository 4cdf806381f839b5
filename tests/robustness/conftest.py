"""Shared checks for the robustness suite: every bad input is one clear line, exit 2,
no traceback, and nothing created or changed on disk."""

import contextlib
import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from sweep.cli import main

TINY = """\
study: {name: tiny, n_trials: 2, seed: 0}
data: {source: synthetic, limit: 300, validation_fraction: 0.2}
model: {filters: [4], dense_units: 16, dropout: 0.0}
train: {epochs: 1, batch_size: 32}
lr_finder: {enabled: false}
# A bounded range: with no range test, a draw near 1.0 diverges (pruned), and the faults below
# want two complete trials whatever the search space's sampling order.
search: {initial_lr: {low: 1.0e-4, high: 1.0e-2}}
"""


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root with a fingerprint of its content (what "nothing harmed" compares)."""
    return {str(p.relative_to(root)): fingerprint(p)
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


def fingerprint(path: Path) -> str:
    """A hash of a SQLite database's rows and schema (its WAL included), else of the file's bytes.

    A WAL database's bytes change when any reader checkpoints it, its rows do not: rows
    are what must survive a fault.
    """
    if path.suffix == ".db":
        try:
            with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
                return "rows:" + hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
        except sqlite3.DatabaseError:
            pass  # not a database (a corrupt-file case): its bytes must not change either
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CLI:
    def __init__(self, root: Path, capsys):
        self.root = root
        self._capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self._capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = self._capsys.readouterr()
        return code, captured.out, captured.err

    def assert_clear_error(self, *argv: str, expect: str = "", code: int = 2) -> str:
        """Run argv; assert exit ``code``, one line naming the problem, no traceback, no
        study database or results folder created and no file changed."""
        before = snapshot(self.root)
        got, out, err = self(*argv)
        lines = [line for line in err.splitlines() if line.strip()]
        assert got == code, f"{argv}: exit {got}, stderr: {err!r}"
        assert len(lines) == 1, f"{argv}: expected one line on stderr, got {lines!r}"
        assert "Traceback" not in err + out
        assert lines[0].startswith("sweep: error: "), lines[0]
        assert expect.lower() in lines[0].lower(), f"{expect!r} not in {lines[0]!r}"
        assert snapshot(self.root) == before, f"{argv}: files changed"
        assert not list(self.root.glob("studies/*.db")) or before, "a study database was created"
        assert not (self.root / "results").exists() or any(k.startswith("results") for k in before)
        return lines[0]


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys) -> CLI:
    """Runs ``sweep`` in-process inside an empty tmp_path (studies/ and results/ land there)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(TINY)
    return CLI(tmp_path, capsys)


# --- a real study, and what a fault must leave as it was ----------------------------------

_ROWS = """
SELECT s.study_name, t.number, t.state, v.value,
       (SELECT group_concat(p.param_name || '=' || p.param_value, ',') FROM trial_params p
        WHERE p.trial_id = t.trial_id ORDER BY p.param_name)
FROM trials t JOIN studies s USING (study_id) LEFT JOIN trial_values v USING (trial_id)
ORDER BY s.study_name, t.number
"""


def study_rows(db: Path) -> list[tuple]:
    """(study, trial number, state, value, params) of every trial in a SQLite file, read-only."""
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        return conn.execute(_ROWS).fetchall()


@pytest.fixture(scope="session")
def made_study(tmp_path_factory) -> Path:
    """A folder holding tiny.yaml and studies/tiny.db: a real 2-trial study made by ``sweep run``
    (once per session; tests copy it). Its WAL is checkpointed, so the .db file is complete."""
    root = tmp_path_factory.mktemp("made")
    (root / "tiny.yaml").write_text(TINY)
    here = os.getcwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            code = main(["run", "tiny.yaml", "--no-report"])
        assert code == 0, err.getvalue()[-2000:]
    finally:
        os.chdir(here)
    db = root / "studies" / "tiny.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert [row[2] for row in study_rows(db)] == ["COMPLETE", "COMPLETE"]
    return root


def copy_study(made: Path, root: Path) -> Path:
    """The made study's config and database copied into root; returns the database."""
    shutil.copy(made / "tiny.yaml", root / "tiny.yaml")
    (root / "studies").mkdir(exist_ok=True)
    return Path(shutil.copy(made / "studies" / "tiny.db", root / "studies" / "tiny.db"))


def _sh(*argv: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True)


def _cannot_mount(what: str, result: subprocess.CompletedProcess) -> None:
    """Skip where mounting is not permitted (an unprivileged container), but fail under CI:
    a fault test that cannot run must not leave CI green (run CI as root or with CAP_SYS_ADMIN)."""
    reason = f"cannot {what} here: {result.stderr.strip() or f'exit {result.returncode}'}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the fault tests (as root, or with CAP_SYS_ADMIN)")
    pytest.skip(reason)


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` bind-mounted read-only over itself.

    Tests run as root, whom neither chmod nor a 0o555 folder stops; a read-only mount
    (EROFS) stops root too. Skips where mounting is not permitted, fails there under CI.
    """
    mounted = _sh("mount", "--bind", folder, folder)
    if mounted.returncode != 0:
        _cannot_mount("bind-mount", mounted)
    try:
        remounted = _sh("mount", "-o", "remount,ro,bind", folder)
        if remounted.returncode != 0:
            _cannot_mount("remount read-only", remounted)
        yield
    finally:
        _sh("umount", "-l", folder)


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[None]:
    """A tmpfs of ``size`` mounted on ``folder`` (skips where mounting is not permitted, fails
    there under CI)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = _sh("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder)
    if mounted.returncode != 0:
        _cannot_mount("mount a small tmpfs", mounted)
    try:
        yield
    finally:
        _sh("umount", "-l", folder)


def fill(folder: Path) -> None:
    """Write zeros into folder/filler until the disk is full."""
    with open(folder / "filler", "wb", buffering=0) as out:
        try:
            while out.write(b"\0" * 4096):
                pass
        except OSError:
            pass
