"""sweep on Keras' JAX backend, as on a GPU machine with JAX but no TensorFlow (GUIDE §5).

Keras picks its backend once, at import, and this process runs TensorFlow's; so each test
starts processes with ``KERAS_BACKEND=jax`` and a ``tensorflow`` package on their path that
refuses to import, so that nothing here leans on TensorFlow unseen.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# Tests of the suite that hold on every backend, run again under JAX: one compiled model
# serving every trial of a worker (the schedule's variables reach the compiled step), and
# checkpoints that restore a reused model's optimizer state and schedule. (Resuming from a
# checkpoint is the study test's below.)
UNDER_JAX = [
    "tests/test_jax_backend.py::test_the_backend_is_the_one_asked_for",
    "tests/training/test_trainer.py::test_a_reused_compiled_model_trains_exactly_as_a_fresh_one",
    "tests/training/test_user_model.py::test_a_reused_batchnorm_dropout_model_trains_exactly_as_a_fresh_one",
    "tests/training/test_checkpoint.py::test_a_reused_models_checkpoint_restores_its_optimizer_state_and_its_own_schedule",
]


def jax_env(tmp_path) -> dict[str, str]:
    """The environment of a JAX process: this checkout first, TensorFlow unimportable."""
    blocked = tmp_path / "no-tensorflow" / "tensorflow"
    blocked.mkdir(parents=True, exist_ok=True)
    (blocked / "__init__.py").write_text('raise ImportError("tensorflow is not installed on this (simulated) machine")\n')
    path = os.pathsep.join([str(blocked.parent), str(ROOT)])
    return {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3",
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def test_the_backend_is_the_one_asked_for():
    """Run in the JAX process below: it really is JAX there, with no TensorFlow loaded."""
    import keras

    assert keras.backend.backend() == os.environ["KERAS_BACKEND"]
    if keras.backend.backend() == "jax":
        assert "tensorflow" not in sys.modules


def test_model_reuse_and_checkpoints_hold_under_jax(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
                           *UNDER_JAX], cwd=ROOT, env=jax_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{len(UNDER_JAX)} passed" in proc.stdout


def test_a_jax_study_killed_mid_trial_resumes_from_its_checkpoint_then_evaluates_and_reports(tmp_path):
    """The quick start under JAX with a kill -9 inside a trial: the rerun continues that trial
    from its last epoch checkpoint (weights, optimizer state and step, so the schedule goes
    on) and finishes the 4 trials; ``sweep evaluate`` and ``sweep report`` work on the result."""
    from optuna.trial import TrialState

    from sweep import attrs
    from tests.study.test_resume import FINISHED, _running_after_an_epoch, _start, _trials, _wait_for, _write_config

    # 1,440 training images: with a reused compiled model a JAX epoch on 720 took less than
    # the poll and the sleep below, so the kill could land after the trial had finished.
    _write_config(tmp_path, limit=1800, n_trials=4)
    env = jax_env(tmp_path)
    process = _start(tmp_path, KERAS_BACKEND="jax", PYTHONPATH=env["PYTHONPATH"])
    _wait_for(tmp_path, _running_after_an_epoch, process)
    time.sleep(0.3)  # somewhere inside the next epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The trial the kill landed in is the one its dead worker left RUNNING; it has an epoch
    # checkpoint recorded. The test follows its root (another trial may be a retry too).
    target = next(t for t in _trials(tmp_path) if t.state == TrialState.RUNNING)
    assert target.user_attrs.get(attrs.CHECKPOINT), "the kill landed before the trial's first checkpoint"
    root = target.user_attrs[attrs.ROOT_TRIAL]
    process = _start(tmp_path, KERAS_BACKEND="jax", PYTHONPATH=env["PYTHONPATH"])
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output

    trials = _trials(tmp_path)
    assert len([t for t in trials if t.state in FINISHED]) == 4
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    retry = next(t for t in trials if t.state in FINISHED and t.user_attrs.get(attrs.ROOT_TRIAL) == root
                 and attrs.RESUMED_FROM_EPOCH in t.user_attrs)
    killed = trials[root]
    assert retry.params == killed.params and retry.user_attrs[attrs.RESUMED_FROM_EPOCH] >= 1
    assert [e["epoch"] for e in retry.user_attrs[attrs.HISTORY]] == [1, 2, 3, 4]
    assert retry.user_attrs[attrs.HISTORY][0] == killed.user_attrs[attrs.HISTORY][0], "epoch 1 was not retrained"

    outputs = []
    for command in (["evaluate", "resume", "--top", "1", "--repeats", "1"], ["report", "resume"]):
        proc = subprocess.run([sys.executable, "-m", "sweep", *command], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        outputs.append(proc.stdout)
    assert "best mean test accuracy" in outputs[0]
    report = (tmp_path / "results" / "resume" / "report.md").read_text()
    assert "## Test split" in report and "keras backend jax" in report
