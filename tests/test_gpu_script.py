"""benchmarks/gpu.sh, the one-call GPU measurement, checked on CPU: its dry run goes through every
stage at a tiny scale under JAX without TensorFlow, and says what it could not measure here."""

import json
import subprocess

import pytest

from tests.conftest import ROOT, SAMPLE_DIR
from tests.test_jax_backend import jax_env

pytestmark = pytest.mark.slow


def test_the_gpu_script_dry_run_measures_every_stage_and_says_what_it_skipped(tmp_path):
    if not SAMPLE_DIR.is_dir():
        pytest.fail(f"the real Fashion-MNIST sample is missing at {SAMPLE_DIR}")
    out = tmp_path / "out"
    env = {**jax_env(tmp_path), "SWEEP_GPU_CARRY": str(tmp_path / "no-carry")}  # the packages installed here
    proc = subprocess.run(["bash", "benchmarks/gpu.sh", "--dry-run", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "gpu.json").read_text())
    stages = result["stages"]
    assert {name: s["status"].split(" in ")[0] for name, s in stages.items()} == dict.fromkeys(
        ("env", "quickstart", "epochs", "floor", "workers"), "done"), (out / "gpu.md").read_text()
    assert stages["env"]["keras_backend"] == "jax"

    quickstart = stages["quickstart"]
    assert quickstart["study"]["complete"] >= 1 and 0 < quickstart["study"]["best_value"] <= 1
    assert [r["rc"] for r in quickstart["results"]] == [0, 0]
    assert "# Sweep report: quickstart" in (out / "quickstart-report.md").read_text()

    grid = {(r["batch"], r["steps_per_execution"]) for r in stages["epochs"]["results"]}
    assert grid == {(256, 1), (256, 8)}
    for r in stages["epochs"]["results"] + stages["floor"]["results"]:
        assert r["images_per_s"] > 0 and r["epoch_s"] > 0
    assert [r["kind"] for r in stages["floor"]["results"]][0] == "keras fit"
    assert [r["workers"] for r in stages["workers"]["results"]] == [1]

    # What needs a GPU machine is recorded as not measured, in the JSON and the table alike.
    table = (out / "gpu.md").read_text()
    assert "the GPU busy fraction (skipped: no nvidia-smi)" in stages["workers"]["skipped"]
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "the PyTorch loop (skipped: no torch)" in stages["floor"]["skipped"]
    assert "Not measured:" in table and "| sweep | 256 | 8 |" in table
