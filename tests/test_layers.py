"""The package's layers (pyproject's import-linter contracts) hold, and breaking one fails.

CI runs this file with the rest of the suite, so an import against the layers fails CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    # Run with the project folder first on the path, so the package linted is the one in
    # ``project`` (a copy in the second test), not the installed one.
    env = {**os.environ, "PYTHONPATH": str(project)}
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_layers_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, wrong_import, contract", [
    ("training/trainer.py", "import sweep.study.worker", "Layers"),
    ("training/model.py", "import optuna", "Training never imports Optuna"),
    ("report/fmt.py", "import keras", "Reports and storage never import Keras or TensorFlow"),
    ("study/budget.py", "import sweep.commands", "Nothing imports commands or cli"),
    ("report/analysis/stats.py", "import sweep.report.findings.summary", "Report rooms"),
])
def test_a_wrong_import_breaks_a_contract(tmp_path, module, wrong_import, contract):
    shutil.copytree(ROOT / "sweep", tmp_path / "sweep", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "sweep" / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # deliberately against the layers\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    # Contract names wrap at 80 columns in the summary: join the lines before matching.
    summary = " ".join(result.stdout.split())
    verdict = re.search(re.escape(contract) + r".*?(KEPT|BROKEN)", summary)
    assert verdict and verdict.group(1) == "BROKEN", result.stdout
    assert f"sweep.{module[:-3].replace('/', '.')}" in result.stdout
