"""Progress survives real faults: a checkpoint store that turns read-only or fills up, an
S3 server that refuses uploads, a database that fails at the end of a trial. Each time the
checkpoint already stored stays, the trial is left retriable (re-enqueued, not counted as a
worker's death), and once the fault is gone its retry continues from that epoch."""

import threading
from contextlib import ExitStack
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from sweep import attrs
from sweep.search.objective import Objective
from sweep.search.space import space_from_config
from sweep.storage.database import make_storage
from sweep.study import worker
from sweep.study.signals import GracefulStop
from sweep.training.data import load_dataset
from tests.robustness.conftest import fill, read_only, small_disk

PARAMS = {"schedule": "cosine", "initial_lr": 3e-3, "warmup_fraction": 0.0}


class _FaultAfterEpoch(optuna.pruners.BasePruner):
    """Asked once an epoch is checkpointed and reported: the moment to break something."""

    def __init__(self, epoch, fault):
        self.epoch, self.fault = epoch, fault

    def prune(self, study, trial):
        if max(trial.intermediate_values) == self.epoch:
            self.fault()
        return False


def _config(tiny_config, epochs=3):
    return tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"epochs": epochs})})


def _study(tmp_path, pruner, db="s.db"):
    storage = make_storage(f"sqlite:///{tmp_path}/{db}", create=True)
    study = optuna.create_study(storage=storage, direction="maximize", pruner=pruner)
    study.enqueue_trial(PARAMS)
    return study, storage


def _run_one(study, storage, objective):
    return worker._run_trial(study, storage, study.ask(), objective, GracefulStop())


def _fault_then_continue(tiny_config, tmp_path, store, apply, lift, stored):
    """Train with the fault applied after epoch 1; check what is kept; lift it; the retry continues."""
    config = _config(tiny_config)
    study, storage = _study(tmp_path, _FaultAfterEpoch(1, apply))
    objective = Objective(config, load_dataset(config.data, 0), space_from_config(config.search), store, "host:1",
                          "study-a")
    assert _run_one(study, storage, objective) == worker._STORE_FAULT
    first, retry = study.trials[0], study.trials[1]
    assert first.state == TrialState.FAIL and retry.state == TrialState.WAITING
    assert retry.user_attrs[attrs.CHECKPOINT]["epoch"] == 1 and retry.system_attrs["sweep:crashes"] == []
    lift()
    assert len(stored()) == 1, "epoch 1's checkpoint is still in the store"
    study.pruner = optuna.pruners.NopPruner()
    assert _run_one(study, storage, objective) == TrialState.COMPLETE
    done = study.trials[1]
    assert done.user_attrs[attrs.RESUMED_FROM_EPOCH] == 1 and done.user_attrs[attrs.EPOCHS_RUN] == 3
    assert stored() == [], "removed once the trial's final state was stored"


def test_a_store_that_turns_read_only_keeps_the_checkpoint_and_the_trial_continues(tiny_config, tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    with ExitStack() as faults:
        _fault_then_continue(tiny_config, tmp_path, FileSystemArtifactStore(folder),
                             lambda: faults.enter_context(read_only(folder)), faults.close,
                             lambda: list(folder.iterdir()))


def test_a_store_that_fills_up_keeps_the_checkpoint_and_the_trial_continues(tiny_config, tmp_path):
    folder = tmp_path / "store"
    with small_disk(folder, "4m"):
        _fault_then_continue(tiny_config, tmp_path, FileSystemArtifactStore(folder), lambda: fill(folder),
                             lambda: (folder / "filler").unlink(),
                             lambda: [p for p in folder.iterdir() if p.name != "filler"])


class _FailingProxy(BaseHTTPRequestHandler):
    """Forwards S3 requests to the moto server; refuses uploads (403) while ``fail_puts``."""

    upstream: tuple[str, int]
    fail_puts = False

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "PUT" and type(self).fail_puts:
            error = b"<Error><Code>AccessDenied</Code><Message>uploads refused</Message></Error>"
            self.send_response(403)
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        connection = HTTPConnection(*self.upstream)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("expect", "connection", "keep-alive")}
        connection.request(self.command, self.path, body=body or None, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args):
        pass


def test_an_s3_server_that_refuses_uploads_keeps_the_checkpoint_and_the_trial_continues(tiny_config, tmp_path,
                                                                                        monkeypatch):
    import boto3
    from moto.server import ThreadedMotoServer

    from sweep.storage.artifacts import open_artifact_store

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    proxy_class = type("Proxy", (_FailingProxy,), {"upstream": server.get_host_and_port(), "fail_puts": False})
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), proxy_class)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_DEFAULT_REGION": "us-east-1",
                           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.server_address[1]}"}.items():
            monkeypatch.setenv(key, value)
        client = boto3.client("s3")
        client.create_bucket(Bucket="ckpts")
        store = open_artifact_store("faulty", "s3://ckpts/team")

        def stored():
            return [o["Key"] for o in client.list_objects_v2(Bucket="ckpts").get("Contents", [])]

        def apply():
            proxy_class.fail_puts = True

        def lift():
            proxy_class.fail_puts = False

        _fault_then_continue(tiny_config, tmp_path, store, apply, lift, stored)
    finally:
        proxy.shutdown()
        server.stop()


def test_a_database_failing_at_the_final_tell_leaves_the_checkpoint(tiny_config, tmp_path, monkeypatch):
    """The trial trained to its end, then another process holds the database's write lock
    while the result is stored: the tell fails, and the checkpoint of the last saved epoch
    stays, with the trial RUNNING (its next run's recovery retries it from there)."""
    import sqlite3

    from sweep.storage import database

    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.5)
    folder = tmp_path / "store"
    folder.mkdir()
    config = _config(tiny_config)
    study, storage = _study(tmp_path, optuna.pruners.NopPruner())
    locker = sqlite3.connect(tmp_path / "s.db", isolation_level=None)

    class LockedAtTheEnd(Objective):
        def __call__(self, trial):
            value = super().__call__(trial)
            locker.execute("BEGIN EXCLUSIVE")  # e.g. a backup or a migration holding the database
            return value

    objective = LockedAtTheEnd(config, load_dataset(config.data, 0), space_from_config(config.search),
                               FileSystemArtifactStore(folder), "host:1", "study-a")
    with pytest.raises(optuna.exceptions.StorageInternalError):
        _run_one(study, storage, objective)
    locker.execute("ROLLBACK")
    assert len(list(folder.iterdir())) == 1, "epoch 2's checkpoint is kept"
    trial = study.trials[0]
    assert trial.state == TrialState.RUNNING and trial.user_attrs[attrs.CHECKPOINT]["epoch"] == 2
