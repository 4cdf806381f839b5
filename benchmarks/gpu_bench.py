"""The stages of ``benchmarks/gpu.sh``, one process each (the script time-boxes every stage).

Each stage writes ``OUT/NAME.json`` as it goes (a stage cut short by its time box keeps
what it measured); ``table`` merges them into ``OUT/gpu.json`` and ``OUT/gpu.md``.

    python benchmarks/gpu_bench.py STAGE --out DIR [--dry-run]
    STAGE: env | quickstart | epochs | floor | workers | table

``--dry-run`` is the CPU check of the same stages at a tiny scale (what the suite runs).
Keras' backend comes from ``KERAS_BACKEND`` (gpu.sh sets jax): set it before Keras is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCALES = {  # full: the GPU measurement; dry: the CPU check of the script
    "full": {"images": 60_000, "batches": [64, 256, 1024], "spe": [1, 8], "timed_epochs": 2,
             "workers": [1, 2, 4], "window_s": 50, "study_images": 60_000, "study_epochs": 3,
             "quickstart": []},
    "dry": {"images": 512, "batches": [256], "spe": [1, 8], "timed_epochs": 1,
            "workers": [1], "window_s": 12, "study_images": 400, "study_epochs": 1,
            "quickstart": ["--set", "study.n_trials=2", "--set", "train.epochs=1", "--set", "data.limit=400",
                           "--set", "lr_finder.num_steps=20"]},
}


class Stage:
    """One stage's JSON file, rewritten after each measurement."""

    def __init__(self, out: Path, name: str, scale: str):
        self.path = out / f"{name}.json"
        self.record = {"stage": name, "scale": scale, "status": "running", "results": [], "skipped": [],
                       "started": _now()}
        self.save()

    def add(self, **result) -> None:
        self.record["results"].append(result)
        print(json.dumps(result), flush=True)
        self.save()

    def skip(self, what: str, why: str) -> None:
        self.record["skipped"].append(f"{what} (skipped: {why})")
        self.save()

    def set(self, **fields) -> None:
        self.record.update(fields)
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.record, indent=1))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _sweep(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweep", *args]


# --- env ----------------------------------------------------------------------------------


def stage_env(stage: Stage, scale: dict, args) -> None:
    import jax
    import keras

    from sweep.study.records import package_versions

    smi = shutil.which("nvidia-smi")
    gpus = subprocess.run([smi, "-L"], capture_output=True, text=True).stdout.strip() if smi else None
    try:
        import torch

        torch_info = {"version": torch.__version__, "cuda": torch.cuda.is_available()}
    except ImportError:
        torch_info = None
    stage.set(versions=package_versions(), keras_backend=keras.backend.backend(),
              jax_devices=[str(d) for d in jax.devices()], nvidia_smi=gpus, torch=torch_info,
              python=sys.version.split()[0])


# --- quickstart ---------------------------------------------------------------------------


def stage_quickstart(stage: Stage, scale: dict, args) -> None:
    """The README's quick-start study on the real sample, then its report (each cut cleanly, by
    SIGINT, if the stage's time box runs out: the study keeps what it finished)."""
    work = args.work / "quickstart"
    work.mkdir(parents=True, exist_ok=True)
    run = _sweep("run", str(ROOT / "configs" / "quickstart.yaml"), "--set", "data.source=idx", "--set",
                 f"data.path={args.sample}", *scale["quickstart"], "--no-report")
    stage.add(step="sweep run", **_run(run, work, args.left() - 25))
    stage.set(study=_study_summary(work / "studies" / "quickstart.db", "quickstart"))
    stage.add(step="sweep report", **_run(_sweep("report", "quickstart"), work, args.left()))
    report = work / "results" / "quickstart" / "report.md"
    if report.is_file():
        shutil.copy(report, args.out / "quickstart-report.md")
    stage.set(report="quickstart-report.md" if report.is_file() else None)


def _run(cmd: list[str], cwd: Path, seconds: float) -> dict:
    """Run ``cmd`` for at most ``seconds``, then SIGINT its process group (sweep stops cleanly)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    cut = False
    try:
        output, _ = proc.communicate(timeout=max(seconds, 1))
    except subprocess.TimeoutExpired:
        cut = True
        os.killpg(proc.pid, signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    return {"seconds": round(time.perf_counter() - started, 1), "rc": proc.returncode, "cut_at_s": seconds if cut else None,
            "tail": (output or "")[-1500:]}


def _study_summary(db: Path, name: str) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not db.is_file():
        return {"complete": 0, "trials": 0, "error": f"no study database at {db}"}
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    ends = sorted(t.datetime_complete.timestamp() for t in done)
    starts = sorted(t.datetime_start.timestamp() for t in trials if t.datetime_start)
    summary = {"trials": len(trials), "complete": len(done), "pruned": sum(t.state.name == "PRUNED" for t in trials),
               "best_value": max((t.value for t in done), default=None),
               "trial_seconds": [round((t.datetime_complete - t.datetime_start).total_seconds(), 2) for t in done]}
    if len(ends) >= 2:
        summary["steady_trials_per_hour"] = round(3600 * (len(ends) - 1) / max(ends[-1] - ends[0], 1e-9), 1)
    if ends and starts:
        summary["first_start_to_last_end_s"] = round(ends[-1] - starts[0], 1)
    return summary


# --- epochs and the floor -----------------------------------------------------------------


def _images(n: int):
    from sweep.training.data import _to_float_images, synthetic_images

    x, y = synthetic_images(n, seed=0)
    return _to_float_images(x), y


class _EpochTimes:
    """Keras callback: wall seconds of each epoch."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._t)

        return Timer()


def _fit_times(model, x, y, batch: int, epochs: int) -> list[float]:
    timer = _EpochTimes()
    model.fit(x, y, batch_size=batch, epochs=1 + epochs, shuffle=True, verbose=0, callbacks=[timer])
    return timer.seconds  # the first epoch compiles


def _timed_result(kind: str, batch: int, spe: int, seconds: list[float], n: int) -> dict:
    steady = statistics.median(seconds[1:])
    return {"kind": kind, "batch": batch, "steps_per_execution": spe, "first_epoch_s": round(seconds[0], 3),
            "epoch_s": round(steady, 3), "images_per_s": round(n / steady), "ms_per_step": round(1000 * steady / -(-n // batch), 3)}


def stage_epochs(stage: Stage, scale: dict, args) -> None:
    """sweep's compiled model (the seed CNN, its schedule, as a trial builds it) on synthetic images."""
    import keras

    from sweep.config import config_from_dict
    from sweep.training.model_cache import ModelCache
    from sweep.training.params import TrialParams

    x, y = _images(scale["images"])
    for spe in scale["spe"]:
        for batch in scale["batches"]:
            keras.backend.clear_session()
            config = config_from_dict({"train": {"batch_size": batch, "steps_per_execution": spe}})
            steps = -(-len(x) // batch) * (1 + scale["timed_epochs"])
            model = ModelCache().model_for(config, TrialParams(initial_lr=1e-3, schedule="cosine"), steps,
                                           x.shape[1:], 10)
            stage.add(**_timed_result("sweep", batch, spe, _fit_times(model, x, y, batch, scale["timed_epochs"]), len(x)))


def stage_floor(stage: Stage, scale: dict, args) -> None:
    """The same CNN in a bare ``keras.Model.fit`` (float LR, no callbacks) and in a plain PyTorch loop
    with the data resident on the device."""
    import keras

    from sweep.config import ModelConfig
    from sweep.training.model import build_model

    x, y = _images(scale["images"])
    for batch in scale["batches"]:
        keras.backend.clear_session()
        model = build_model(ModelConfig())
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        stage.add(**_timed_result("keras fit", batch, 1, _fit_times(model, x, y, batch, scale["timed_epochs"]), len(x)))
    try:
        import torch
    except ImportError:
        stage.skip("the PyTorch loop", "no torch")
        return
    for batch in scale["batches"]:
        stage.add(**_torch_loop(torch, x, y, batch, scale["timed_epochs"]))


def _torch_loop(torch, x, y, batch: int, epochs: int) -> dict:
    """The seed CNN (Conv 32x3 + pool, Dense 128, dropout 0.1, Dense 10) trained with Adam in eager
    PyTorch, images and labels on the device, a fresh permutation each epoch."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    images = torch.as_tensor(x).permute(0, 3, 1, 2).contiguous().to(device)
    labels = torch.as_tensor(y.astype("int64")).to(device)
    seconds = []
    for _ in range(1 + epochs):
        started = time.perf_counter()
        order = torch.randperm(len(images), device=device)
        for i in range(0, len(images), batch):
            index = order[i:i + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images[index]), labels[index])
            loss.backward()
            optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    return {**_timed_result("torch loop", batch, 1, seconds, len(images)), "device": device,
            "torch": torch.__version__}


# --- workers ------------------------------------------------------------------------------

STUDY = """\
study: {{name: w{workers}, n_trials: 100000, seed: 0, pruner: none, sampler: tpe}}
data: {{source: synthetic, limit: {images}, validation_fraction: 0.1}}
model: {{filters: [32], dense_units: 128, dropout: 0.1}}
train: {{epochs: {epochs}, batch_size: {batch}, steps_per_execution: {spe}}}
lr_finder: {{enabled: false}}
search: {{initial_lr: {{low: 1.0e-4, high: 1.0e-2}}}}
"""


def stage_workers(stage: Stage, scale: dict, args) -> None:
    """Trials an hour of a study on ``study_images`` synthetic images, ``study_epochs`` epochs a trial,
    with 1, 2, 4 workers on the one device, each for a fixed window (then SIGINT: a clean stop),
    with the GPU's utilisation sampled each second by nvidia-smi."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        stage.skip("the GPU busy fraction", "no nvidia-smi")
    for workers in scale["workers"]:
        work = args.work / f"workers-{workers}"
        work.mkdir(parents=True, exist_ok=True)
        (work / "study.yaml").write_text(STUDY.format(workers=workers, images=scale["study_images"],
                                                      epochs=scale["study_epochs"], batch=args.batch, spe=args.spe))
        sampler = None
        if smi:
            sampler = subprocess.Popen([smi, "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                                        "-l", "1"], stdout=subprocess.PIPE, text=True)
        # A fixed window, then SIGINT: workers stop cleanly; the trials in progress are not counted.
        ran = _run(_sweep("-q", "run", "study.yaml", "--workers", str(workers), "--no-report"), work,
                   min(scale["window_s"], args.left() - 25))
        busy = None
        if sampler is not None:
            sampler.terminate()
            samples = [line.split(",") for line in sampler.communicate()[0].splitlines() if "," in line]
            util = [float(s[0]) for s in samples if s[0].strip().replace(".", "").isdigit()]
            memory = [float(s[1]) for s in samples if s[1].strip().replace(".", "").isdigit()]
            busy = {"samples": len(util), "mean_utilization": round(statistics.fmean(util) / 100, 3) if util else None,
                    "max_memory_mib": max(memory) if memory else None}
        study = _study_summary(work / "studies" / f"w{workers}.db", f"w{workers}")
        stage.add(workers=workers, window_s=ran["seconds"], rc=ran["rc"], study=study, gpu=busy,
                  trials_per_hour_window=round(3600 * study.get("complete", 0) / ran["seconds"], 1),
                  tail=ran["tail"][-600:])


# --- table --------------------------------------------------------------------------------


def stage_table(out: Path) -> tuple[dict, str]:
    stages = {}
    for name in ("env", "quickstart", "epochs", "floor", "workers"):
        path = out / f"{name}.json"
        stages[name] = json.loads(path.read_text()) if path.is_file() else {"status": "not run"}
    # gpu.sh's record of each stage's process: name, exit code, seconds, time box.
    status = out / "status.tsv"
    for line in status.read_text().splitlines() if status.is_file() else []:
        name, rc, seconds, limit = line.split("\t")
        if rc == "-":
            stages[name]["status"] = "not run: no time left"
            continue
        stages[name]["status"] = ("done" if rc == "0" else f"timed out at its {limit} s box, kept what it measured"
                                  if rc in ("124", "137") else f"failed (exit {rc})") + f" in {seconds} s"
    payload = {"date": _now(), "stages": stages}
    (out / "gpu.json").write_text(json.dumps(payload, indent=1))
    text = _markdown(stages)
    (out / "gpu.md").write_text(text)
    return payload, text


def _markdown(stages: dict) -> str:
    env = stages["env"]
    lines = ["# GPU measurement (`benchmarks/gpu.sh`)", "",
             f"Scale: {env.get('scale', '?')}. Keras backend: {env.get('keras_backend', '?')}; devices: "
             f"{', '.join(env.get('jax_devices') or ['?'])}; nvidia-smi: {env.get('nvidia_smi') or 'none'}; "
             f"PyTorch: {(env.get('torch') or {}).get('version', 'none')}; Python {env.get('python', '?')}.", ""]
    lines += ["| stage | status |", "|---|---|"]
    lines += [f"| {name} | {s.get('status', '?')} |" for name, s in stages.items()]
    q = stages["quickstart"].get("study") or {}
    lines += ["", "## Quick-start study (real sample)", "",
              f"{q.get('complete', '?')} complete of {q.get('trials', '?')} trials, best validation accuracy "
              f"{q.get('best_value', '?')}; report: {stages['quickstart'].get('report') or 'none'}."]
    for r in stages["quickstart"].get("results", []):
        lines.append(f"- {r['step']}: {r['seconds']} s, exit {r['rc']}")
    timed = stages["epochs"].get("results", []) + stages["floor"].get("results", [])
    lines += ["", "## Epoch time", "", "| loop | batch | steps/execution | epoch s | images/s | ms/step | first epoch s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['kind']} | {r['batch']} | {r['steps_per_execution']} | {r['epoch_s']} | {r['images_per_s']} | "
              f"{r['ms_per_step']} | {r['first_epoch_s']} |" for r in timed]
    lines += ["", "## Workers sharing the device", "",
              "| workers | window s | complete trials | trials/hour (steady) | trials/hour (window) | GPU busy |",
              "|---:|---:|---:|---:|---:|---:|"]
    for r in stages["workers"].get("results", []):
        busy = (r.get("gpu") or {}).get("mean_utilization")
        lines.append(f"| {r['workers']} | {r['window_s']} | {r['study'].get('complete')} | "
                     f"{r['study'].get('steady_trials_per_hour', '-')} | {r['trials_per_hour_window']} | "
                     f"{'-' if busy is None else busy} |")
    skipped = [s for stage in stages.values() for s in stage.get("skipped", [])]
    if skipped:
        lines += ["", "Not measured: " + "; ".join(skipped) + "."]
    return "\n".join(lines) + "\n"


STAGES = {"env": stage_env, "quickstart": stage_quickstart, "epochs": stage_epochs, "floor": stage_floor,
          "workers": stage_workers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=[*STAGES, "table"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, help="scratch folder (studies, reports); default OUT/work")
    parser.add_argument("--sample", default=str(ROOT.parent / "shared" / "data" / "fashion-mnist-sample"))
    parser.add_argument("--dry-run", action="store_true", help="tiny scale, for a CPU check of the script")
    parser.add_argument("--box", type=float, default=600, help="the stage's time box in seconds (gpu.sh's timeout)")
    parser.add_argument("--batch", type=int, default=64, help="the workers study's batch size (the config's default)")
    parser.add_argument("--spe", type=int, default=1, help="the workers study's steps_per_execution")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "table":
        print(stage_table(args.out)[1])
        return 0
    args.work = (args.work or args.out / "work").resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    scale_name = "dry" if args.dry_run else "full"
    stage = Stage(args.out, args.stage, scale_name)
    ends = time.monotonic() + args.box - 5
    args.left = lambda: ends - time.monotonic()  # seconds left in the box, for the stage's own clean stops
    STAGES[args.stage](stage, SCALES[scale_name], args)
    stage.set(status="done", finished=_now())
    return 0


if __name__ == "__main__":
    sys.exit(main())
