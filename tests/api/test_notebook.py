"""examples/quickstart.ipynb runs top to bottom on a real Jupyter kernel (nbclient), with a tiny budget."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT, SAMPLE_DIR

pytestmark = pytest.mark.slow

NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
TINY = {"LIMIT": 400, "EPOCHS": 2, "N_TRIALS": 1, "LR_STEPS": 20}


def test_quickstart_notebook_runs_and_its_interrupted_trial_continues(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [cell for cell in nb.cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(parameters) == 1, "the notebook has one cell tagged 'parameters'"
    for name in TINY:
        assert f"\n{name} = " in "\n" + parameters[0].source, f"the parameters cell sets {name}"
    # Papermill's convention: a cell after the parameters overrides them.
    injected = "\n".join([f"DATA = {str(SAMPLE_DIR)!r}", *(f"{k} = {v}" for k, v in TINY.items())])
    nb.cells.insert(nb.cells.index(parameters[0]) + 1, nbformat.v4.new_code_cell(injected))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)  # the kernel imports this checkout's sweep

    outputs = "\n".join(output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
                        for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", []))
    assert "interrupted: the running trial was re-enqueued with its checkpoint" in outputs
    assert "Traceback" not in outputs
    html = [output["data"]["text/html"] for cell in nb.cells for output in cell.get("outputs", [])
            if "text/html" in output.get("data", {})]
    assert any("srcdoc=" in page and "sweep report" in page for page in html), "the report showed inline"
    assert any(output.get("data", {}).get("image/png") for cell in nb.cells for output in cell.get("outputs", [])), \
        "lr_find's plot showed"

    import sweep

    study = sweep.load("quickstart-nb", storage=f"sqlite:///{tmp_path / 'studies' / 'quickstart-nb.db'}")
    frame = study.trials_dataframe()
    assert study.n_finished == study.n_trials == TINY["N_TRIALS"] + 2
    resumed = frame.dropna(subset=["resumed_from_epoch"])
    assert resumed["resumed_from_epoch"].tolist() == [1], frame.to_string()
    assert (tmp_path / "results" / "quickstart-nb" / "index.html").is_file()
