"""The arms of the search-quality protocol, each a fresh process timed from its start.

- ``sweep``: ``sweep run`` on a config with sweep's defaults (range test, prior, seed trials,
  TPE, median pruning); its trials are read back from the study's SQLite file. Variants:
  ``sweep-mean3`` (``study.objective: mean_last3``), ``sweep-pb`` (``study.sampler: priorband``,
  ``study.pruner: halving``); the prior's shape: ``sweep-wide`` (``lr_finder.narrow: false``),
  ``sweep-constseed`` (``lr_finder.seed_schedule: constant``), ``sweep-rt300``
  (``lr_finder.num_steps: 300``).
- ``optuna-tpe``: a plain Optuna script, the 60 lines a user writes: Optuna 5's default TPE
  (seeded), no pruning, no prior, the CNN built and compiled per trial, ``model.fit`` on the
  arrays, the trial's value its best epoch's val_accuracy.
- ``optuna-hyperband``: the same with Optuna's ``HyperbandPruner`` (min 1 epoch, factor 3)
  and the val_accuracy reported each epoch: what an informed Optuna user runs.
- ``kt-bayes``, ``kt-hyperband``: KerasTuner's ``BayesianOptimization`` and ``Hyperband``
  (max epochs = the protocol's epochs, factor 3) on the same space and loop.

The optimizer arms (issue 21; ``search_quality.py --suite optimizers``): ``adam`` (sweep's
defaults, but searching every schedule family sweep has: ``sweep.config.SCHEDULES``),
``adam-const`` (Adam, constant LR only: no schedule search), ``sgd`` (the seed CNN with
SGD, momentum 0.9, Nesterov, every family: where a schedule should matter most),
``sgd-const`` (the same, constant LR only), and the child ``sf-adamw``:
``schedule_free_adamw`` trained once at the range test's suggested LR with no schedule at
all (one trial: the range test, then 8 epochs).

Every arm: the same arrays and split (``sweep.training.data.load_dataset`` with the seed),
the same CNN (``sweep.training.model``), schedules (``sweep.training.schedules``), batch size
and search space (sweep's default ranges). Children write one JSON line per finished trial:
``{"end": unix seconds, "value", "params", "epochs"}`` (value None when pruned).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from _harness import SAMPLE, env, sweep_cmd  # noqa: E402

# arm -> its config sections on top of sweep's defaults (the levers of issue 13; the last
# three are the prior's shape: no narrowing to [s/10, 10 s], constant-LR seed trials, and a
# range test of 300 steps instead of 100)
SWEEP_ARMS = {"sweep": {}, "sweep-mean3": {"study": {"objective": "mean_last3"}},
              "sweep-pb": {"study": {"sampler": "priorband", "pruner": "halving"}},
              "sweep-wide": {"lr_finder": {"narrow": False}},
              "sweep-constseed": {"lr_finder": {"seed_schedule": "constant"}},
              "sweep-rt300": {"lr_finder": {"num_steps": 300}}}
SGD = {"optimizer": "sgd", "optimizer_args": {"momentum": 0.9, "nesterov": True}}
SF_ADAMW = {"optimizer": "schedule_free_adamw"}
_EVERY = {"schedules": list(__import__("sweep.config", fromlist=["SCHEDULES"]).SCHEDULES)}
SWEEP_ARMS |= {"adam": {"search": _EVERY}, "adam-const": {"search": {"schedules": ["constant"]}},
               "sgd": {"train": SGD, "search": _EVERY}, "sgd-const": {"train": SGD, "search": {"schedules": ["constant"]}}}
CHILD_ARMS = ("optuna-tpe", "optuna-hyperband", "kt-bayes", "kt-hyperband", "sf-adamw")
# The train section (optimizer) an arm's picks are retrained with; Adam when absent.
ARM_TRAIN = {**{arm: sections.get("train", {}) for arm, sections in SWEEP_ARMS.items()}, "sf-adamw": SF_ADAMW}
SEARCH_IMAGES = 2500  # the sample's first 2,500 images are searched on; the last 500 are the test split
VALIDATION_FRACTION = 0.2
BATCH = 64


def data_config():
    """The search data of every arm: the split itself is drawn by ``load_dataset``'s seed."""
    from sweep.config import DataConfig

    return DataConfig(source="idx", path=str(SAMPLE), limit=SEARCH_IMAGES, validation_fraction=VALIDATION_FRACTION)


def run_arm(arm: str, seed: int, trials: int, epochs: int, work: Path) -> dict:
    """Run one arm to the end; returns ``{"wall_s", "trials": [{"end_s", "value", "params", "epochs"}]}``."""
    started = time.time()
    if arm in SWEEP_ARMS:
        db = work / f"{arm}-{seed}.db"
        config = work / f"{arm}-{seed}.yaml"
        sections = SWEEP_ARMS[arm]
        config.write_text(json.dumps({  # JSON is YAML
            **sections,
            "study": {"name": f"sq-{arm}-{seed}", "n_trials": trials, "seed": seed, **sections.get("study", {})},
            "data": data_config().model_dump(mode="json"),
            "train": {**sections.get("train", {}), "epochs": epochs, "batch_size": BATCH}}))
        cmd = sweep_cmd("run", config, "--storage", f"sqlite:///{db}", "--no-report")
    else:
        out = work / f"{arm}-{seed}.jsonl"
        cmd = [sys.executable, str(Path(__file__).resolve()), arm, str(seed), str(trials), str(epochs), str(out)]
    proc = subprocess.run(cmd, cwd=work, env=env(), capture_output=True, text=True)
    wall = time.time() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{arm} seed {seed} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    records = _sweep_trials(db) if arm in SWEEP_ARMS else [json.loads(line) for line in out.read_text().splitlines()]
    extra = _sweep_extras(db) if arm in SWEEP_ARMS else {}
    return {"wall_s": wall, **extra,
            "trials": [{**r, "end_s": r.pop("end") - started} for r in records]}


def _sweep_trials(db: Path) -> list[dict]:
    import optuna

    study = _only_study(db)
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.datetime_complete is None:
            continue
        value = t.value if t.state == optuna.trial.TrialState.COMPLETE else None
        out.append({"end": t.datetime_complete.timestamp(), "value": value, "params": t.params,
                    "epochs": t.user_attrs.get("epochs_run")})
    return out


def _only_study(db: Path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{db}"
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def _sweep_extras(db: Path) -> dict:
    from sweep.storage.records import read_config, study_attrs

    study = _only_study(db)
    records = study_attrs(study)
    finder = records.get("sweep:lr_finder") or {}
    prior = records.get("sweep:prior") or {}
    return {"range_test_s": finder.get("seconds"), "suggestion": prior.get("suggestion"),
            "config": read_config(study)}


# --- the children ---------------------------------------------------------------------------


def child(arm: str, seed: int, trials: int, epochs: int, out: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from sweep.config import SCHEDULES, ModelConfig, SearchConfig
    from sweep.training.data import load_dataset
    from sweep.training.model import build_model, compile_model
    from sweep.training.params import TrialParams
    from sweep.training.schedules import build_schedule
    from sweep.training.trainer import total_steps

    data = load_dataset(data_config(), seed)
    space = SearchConfig()
    steps = total_steps(data.num_train, BATCH, epochs)
    sink = out.open("a")

    def record(value, params, epochs_run) -> None:
        sink.write(json.dumps({"end": time.time(), "value": value, "params": params, "epochs": epochs_run}) + "\n")
        sink.flush()

    trial_count = [0]

    def seed_trial() -> None:
        # Seeded like sweep's trials (study seed, trial number), so that a rerun reproduces the table.
        keras.utils.set_random_seed((seed * 1_000_003 + trial_count[0]) % 2**31)
        trial_count[0] += 1

    def fit(params: dict, callbacks=()) -> list[float]:
        keras.backend.clear_session()
        seed_trial()
        model = compile_model(build_model(ModelConfig()), build_schedule(TrialParams(**params), steps))
        history = model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), batch_size=BATCH,
                            epochs=epochs, verbose=0, callbacks=list(callbacks))
        return history.history["val_accuracy"]

    if arm == "sf-adamw":
        _schedule_free(seed, epochs, data, record, seed_trial)
        return
    if arm.startswith("optuna"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        hyperband = arm == "optuna-hyperband"

        class Report(keras.callbacks.Callback):
            def __init__(self, trial):
                super().__init__()
                self.trial, self.epochs = trial, 0

            def on_epoch_end(self, epoch, logs=None):
                self.epochs = epoch + 1
                self.trial.report(logs["val_accuracy"], epoch + 1)
                if self.trial.should_prune():
                    raise optuna.TrialPruned()

        def objective(trial):
            schedule = trial.suggest_categorical("schedule", list(SCHEDULES))
            params = {"schedule": schedule,
                      "initial_lr": trial.suggest_float("initial_lr", space.initial_lr.low, space.initial_lr.high, log=True),
                      "warmup_fraction": trial.suggest_float("warmup_fraction", space.warmup_fraction.low,
                                                             space.warmup_fraction.high)}
            if schedule in ("exponential", "step"):
                params["decay_rate"] = trial.suggest_float("decay_rate", space.decay_rate.low, space.decay_rate.high)
                params["decay_steps"] = trial.suggest_int("decay_steps", space.decay_steps.low, space.decay_steps.high,
                                                          log=True)
            reporter = Report(trial)
            try:
                scores = fit(params, [reporter] if hyperband else [])
            except optuna.TrialPruned:
                record(None, params, reporter.epochs)
                raise
            record(max(scores), params, len(scores))
            return max(scores)

        pruner = (optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
                  if hyperband else optuna.pruners.NopPruner())
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner)
        study.optimize(objective, n_trials=trials)
        return
    _kerastuner(arm, seed, trials, epochs, data, space, steps, record, seed_trial)


def _schedule_free(seed, epochs, data, record, seed_trial) -> None:
    """Schedule-free AdamW at the range test's suggestion (sweep's range test, default rule),
    constant LR, no warm-up: one run, no search."""
    from sweep.config import config_from_dict
    from sweep.search.lr_finder import run_range_test
    from sweep.training.params import TrialParams
    from sweep.training.trainer import train

    config = config_from_dict({"train": {**SF_ADAMW, "epochs": epochs, "batch_size": BATCH}})
    suggestion = run_range_test(config, data, seed=seed).suggestion
    params = {"initial_lr": float(suggestion), "schedule": "constant", "warmup_fraction": 0.0}
    seed_trial()
    result = train(config, TrialParams(**params), data, seed=seed * 1_000_003 % 2**31)
    record(None if result.diverged else result.value("val_accuracy"), params, len(result.history))


def _kerastuner(arm, seed, trials, epochs, data, space, steps, record, seed_trial) -> None:
    import tempfile

    import keras
    import keras_tuner as kt

    from sweep.config import DECAY_SCHEDULES, SCHEDULES, ModelConfig
    from sweep.training.model import build_model, compile_model
    from sweep.training.params import TrialParams
    from sweep.training.schedules import build_schedule

    def params_of(hp) -> dict:
        params = {"schedule": hp.Choice("schedule", list(SCHEDULES)),
                  "initial_lr": hp.Float("initial_lr", space.initial_lr.low, space.initial_lr.high, sampling="log"),
                  "warmup_fraction": hp.Float("warmup_fraction", space.warmup_fraction.low, space.warmup_fraction.high)}
        # KerasTuner's Gaussian process has no conditional space: drawn always, used by two schedules.
        rate = hp.Float("decay_rate", space.decay_rate.low, space.decay_rate.high)
        decay_steps = hp.Int("decay_steps", space.decay_steps.low, space.decay_steps.high, sampling="log")
        if params["schedule"] in DECAY_SCHEDULES:
            params.update(decay_rate=rate, decay_steps=decay_steps)
        return params

    def build(hp):
        keras.backend.clear_session()
        seed_trial()
        return compile_model(build_model(ModelConfig()), build_schedule(TrialParams(**params_of(hp)), steps))

    class Recorded:  # mixed into the chosen KerasTuner class: record each trial as it ends
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            values = trial.hyperparameters.values
            record(trial.score, params_of(trial.hyperparameters), values.get("tuner/epochs", epochs))

    kind = kt.BayesianOptimization if arm == "kt-bayes" else kt.Hyperband
    # Hyperband sizes its own brackets from max_epochs and the factor; it continues a promoted
    # trial from its saved weights, as KerasTuner does by default.
    options = ({"max_trials": trials} if arm == "kt-bayes"
               else {"max_epochs": epochs, "factor": 3, "hyperband_iterations": 1})
    with tempfile.TemporaryDirectory(prefix="kt-") as tmp:
        tuner = type("Recorded", (Recorded, kind), {})(
            hypermodel=build, objective=kt.Objective("val_accuracy", "max"), seed=seed, directory=tmp,
            project_name="sq", overwrite=True, **options)
        tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), batch_size=BATCH,
                     epochs=epochs, verbose=0)


if __name__ == "__main__":
    arm_name, seed_text, trials_text, epochs_text, out_path = sys.argv[1:6]
    child(arm_name, int(seed_text), int(trials_text), int(epochs_text), Path(out_path))
