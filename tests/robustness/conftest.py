"""Shared checks for the robustness suite: every bad input is one clear line, exit 2,
no traceback, and nothing created or changed on disk."""

import hashlib
from pathlib import Path

import pytest

from sweep.cli import main

TINY = """\
study: {name: tiny, n_trials: 2, seed: 0}
data: {source: synthetic, limit: 300, validation_fraction: 0.2}
model: {filters: [4], dense_units: 16, dropout: 0.0}
train: {epochs: 1, batch_size: 32}
lr_finder: {enabled: false}
"""


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root with a hash of its bytes (what "nothing harmed" compares)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


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
