"""Resume on any machine: a trial killed in one working directory continues from its last
epoch when the study is resumed from another, through a shared ``study.checkpoint_store``
(a folder every machine mounts, or S3: here a real S3-compatible server, moto's)."""

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sweep import attrs
from sweep.storage.database import make_storage
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_server(monkeypatch):
    """A local S3-compatible server (moto) with an empty bucket ``ckpts``; its env for boto3."""
    import boto3  # the test extra installs sweep[s3] and moto[server]
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="ckpts")
    yield env, client
    server.stop()


def _sweep(cwd, *args, **env):
    return subprocess.Popen([sys.executable, "-m", "sweep", *args], cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **env})


def _kill_after_a_checkpoint(process, study_url):
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()[-2000:]
        try:
            study = optuna.load_study(study_name="moved", storage=make_storage(study_url, create=False))
            running = [t for t in study.get_trials() if t.state == TrialState.RUNNING
                       and t.user_attrs.get(attrs.CHECKPOINT, {}).get("epoch", 0) >= 2]
        except Exception:  # noqa: BLE001 - the study is being created
            running = []
        if running:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return running[0].number
        time.sleep(0.2)
    pytest.fail("no trial reached a checkpoint in time")


@pytest.mark.parametrize("kind", ["folder", "s3"])
def test_a_trial_killed_in_one_directory_continues_from_its_last_epoch_in_another(tmp_path, kind, request):
    env = {}
    if kind == "s3":
        env, client = request.getfixturevalue("s3_server")
        store = "s3://ckpts/sweep"
    else:
        store = str(tmp_path / "shared-checkpoints")
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    machine_a.mkdir()
    machine_b.mkdir()
    url = f"sqlite:///{tmp_path}/shared.db"
    (machine_a / "moved.yaml").write_text(yaml.safe_dump({
        "study": {"name": "moved", "n_trials": 2, "seed": 1, "pruner": "none", "storage": url,
                  "checkpoint_store": store},
        "data": {"source": "synthetic", "limit": 3000, "validation_fraction": 0.2},
        "model": {"filters": [8], "dense_units": 32, "dropout": 0.0},
        "train": {"epochs": 5, "batch_size": 32},
        "lr_finder": {"enabled": False},
    }))
    killed = _kill_after_a_checkpoint(_sweep(machine_a, "run", "moved.yaml", "--no-report", **env), url)

    resumed = _sweep(machine_b, "resume", "moved", "--storage", url, "--no-report", **env)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, output
    assert "Traceback" not in output
    trials = optuna.load_study(study_name="moved", storage=make_storage(url, create=False)).get_trials()
    root = trials[killed]
    retry = next(t for t in trials if t.user_attrs.get(attrs.ROOT_TRIAL) == killed and t.number != killed)
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs[attrs.RESUMED_FROM_EPOCH] == root.user_attrs[attrs.CHECKPOINT]["epoch"] >= 2
    assert [e["epoch"] for e in retry.user_attrs[attrs.HISTORY]] == [1, 2, 3, 4, 5]
    assert not (machine_b / "studies").exists() or not list((machine_b / "studies").rglob("*.zip"))
    if kind == "s3":
        assert not client.list_objects_v2(Bucket="ckpts").get("Contents"), "checkpoints removed once done"
    else:
        assert not list((tmp_path / "shared-checkpoints" / "moved").iterdir()), "checkpoints removed once done"
