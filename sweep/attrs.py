"""Names of what sweep stores in an Optuna study: one place for writers and readers.

A sweep study is a plain Optuna study (Optuna's CLI and optuna-dashboard read it
as-is). On top of Optuna's own columns it keeps:

Study records (``sweep.storage.records``: the ``SHOWN`` ones are study user attrs, which
``optuna studies`` and optuna-dashboard show, each under 1,024 characters serialized; the
rest are study system attrs, out of those rows; studies made before that split hold them
all in user attrs, and readers take both)
- ``CONFIG``: the resolved config, ``Config.to_dict()`` (``study.storage`` password
  masked). Written last at creation: its presence marks a complete study. Older studies
  split it into ``CONFIG`` and ``CONFIG_EXTRA`` (the ``search`` and ``lr_finder``
  sections) user attrs; ``read_config`` joins them.
- ``SEARCH_SPACE``: the search ranges the study uses from creation on:
  ``{"initial_lr": {"low", "high"}, "schedules": [...], "decay_rate": {...},
  "decay_steps": {...}, "warmup_fraction": {...}, ...}`` with each family's ranges
  (``sweep.search.space``; initial_lr narrowed by the prior).
- ``LR_FINDER`` (shown): the range test's summary (method, suggestion, lower, upper,
  seconds, suggestions, num_steps, diverged_at, batch_size, seed) and ``artifact_id``: its
  full result with the curves (GUIDE §1 keys plus smoothed) is the study artifact
  ``lr_finder.json`` (``sweep.storage.artifacts``). Studies made before that change hold
  the whole result here (``lrs`` and ``losses`` keys). Absent when ``lr_finder.enabled``
  is false.
- ``LR_FINDERS``: a study searching several optimizers (``search.optimizers``) runs one range
  test per optimizer: ``{optimizer: summary}``, each summary as ``LR_FINDER``'s (curve in the
  artifact ``lr_finder_<optimizer>.json``); ``LR_FINDER`` holds the first optimizer's.
- ``PRIOR``: how the prior was applied: ``{"suggestion", "config_range": [lo, hi],
  "narrowed_range": [lo, hi], "seeded": [lr, ...], "sigma_decades"}``; with several searched
  optimizers also ``"optimizers": {optimizer: {"suggestion", "upper", "narrowed_range", "seeded", ...}}``
  (``narrowed_range`` is then the union, ``initial_lr``'s range).
- ``VERSIONS``: package versions at creation (python, sweep, keras, optuna, ...).
- ``N_TRIALS`` (shown): the study-wide budget of finished (complete + pruned) trials.
- ``NUM_TRAIN`` (shown): training images per epoch (with batch size and epochs this gives T).
- ``CODE``: the user code the config names, by config key: ``{"model.builder": {"entry_point",
  "file", "sha256"}, "data.loader": {...}}`` (empty for the built-in CNN and data); a changed
  file is a search-relevant change on resume.
- ``MODEL``: the model at creation: ``{"name" (builder or "built-in CNN"), "parameters",
  "input_shape", "num_classes"}``.
- ``DATA_FINGERPRINT``: ``Dataset.fingerprint`` of the training and validation arrays at
  creation (given at the first reopen to older studies): other data of the same size is
  refused on resume as data of another size is.
- ``NUM_VALIDATION`` (shown): validation images every trial is scored on (sets the noise level
  reports quote: a binomial standard error of sqrt(p (1 - p) / n)).
- ``STUDY_UUID`` (shown): a random id given at creation (or at the first reopen of an older
  study): Optuna's study id and name repeat across storages and re-creations; every
  checkpoint names the study it belongs to by this id.
- ``EVALUATION_PREFIX + str(n)``: trial n's retrainings by ``sweep evaluate``:
  ``{"trial": n, "mean": a, "sd": s, "runs": [[seed, test_score, test_loss, seconds], ...]}`` (the
  score is ``study.metric``'s on the test split: accuracy, MAE, ...)
  (compact: one attr per trial stays under 1,024 characters up to 20 runs, so that a
  study whose evaluations were stored as user attrs by an older version still shows whole).
- ``EVALUATIONS``: the older single-run form, ``[{"trial": n, "params": {...},
  "test_accuracy": a, "test_loss": l, "seconds": s}, ...]``; reports still read it.

Trial user attrs
- ``HISTORY``: ``[{"epoch", "loss", "val_loss", "val_<metric>"..., "lr", "seconds"}, ...]``: one
  ``val_<m>`` per compiled metric (``val_accuracy`` by default).
- ``EPOCHS_RUN``: epochs trained (after resumes: the total, not this process's share).
- ``SECONDS``: wall seconds of training, summed over resumes.
- ``SEED``: the trial's seed (from the study seed and the trial number).
- ``MODEL_PARAMETERS``: the parameter count of the model the trial trained.
- ``TOTAL_STEPS``: T, the optimizer steps a full run has (schedules are laid out on it).
- ``PRUNE_REASON``: ``"diverged"`` or ``"pruned"`` (by the pruner), on PRUNED trials.
- ``SEEDED_BY_PRIOR``: True on trials enqueued from the LR finder's suggestion.
- ``RESUMED_FROM_EPOCH``: on a retried trial, the epoch its checkpoint restored.
- ``ROOT_TRIAL``: the number of the trial this one continues after an interruption (its
  own number when it is no retry); names the checkpoint folder and fixes the seed.
- ``CHECKPOINT``: ``{"artifact_id", "epoch"}``: the trial's newest epoch checkpoint in
  the study's artifact store (``study.checkpoint_store``); a retry inherits it.
- ``WORKER``: ``"host:pid"`` of the process that ran (or runs) the trial.
- ``SURPLUS``: True on a trial asked for after the budget was taken (marked FAIL, never
  trained); reports leave such trials out.
- ``SET_ASIDE``: ``[{"artifact_id", "epoch", "reason"}, ...]``: checkpoints that could not
  continue the trial (unreadable, or another owner's), left in the store and not loaded.
- ``DROPPED``: why a trial's configuration was given up (its worker died more than
  ``MAX_RETRIES`` times while training it), on the FAIL trial that ends it.
"""

PREFIX = "sweep:"  # every study record's name starts with it
CONFIG = "sweep:config"
CONFIG_EXTRA = "sweep:config:search"
_EXTRA_SECTIONS = ("search", "lr_finder")
SEARCH_SPACE = "sweep:search_space"
LR_FINDER = "sweep:lr_finder"
LR_FINDERS = "sweep:lr_finders"
PRIOR = "sweep:prior"
VERSIONS = "sweep:versions"
N_TRIALS = "sweep:n_trials"
NUM_TRAIN = "sweep:num_train"
NUM_VALIDATION = "sweep:num_validation"
DATA_FINGERPRINT = "sweep:data_fingerprint"
EVALUATIONS = "sweep:evaluations"
CODE = "sweep:code"
MODEL = "sweep:model"
STUDY_UUID = "sweep:study_uuid"
EVALUATION_PREFIX = "sweep:evaluation:"

HISTORY = "history"
EPOCHS_RUN = "epochs_run"
SECONDS = "seconds"
SEED = "seed"
TOTAL_STEPS = "total_steps"
MODEL_PARAMETERS = "model_parameters"
PRUNE_REASON = "prune_reason"
SEEDED_BY_PRIOR = "seeded_by_prior"
RESUMED_FROM_EPOCH = "resumed_from_epoch"
ROOT_TRIAL = "root_trial"
WORKER = "worker"
CHECKPOINT = "checkpoint"
# Set to True on a trial that a worker asked for after the budget was already taken by
# lower-numbered trials (several workers racing for the last slots). Such a trial is
# marked FAIL at once and never trained; reports leave it out.
SURPLUS = "surplus"
SET_ASIDE = "set_aside"
DROPPED = "dropped"


def read_config(records: dict) -> dict | None:
    """The whole stored config dict (an older study's ``CONFIG`` and ``CONFIG_EXTRA``
    joined), or None."""
    main = records.get(CONFIG)
    if not isinstance(main, dict):
        return None
    extra = records.get(CONFIG_EXTRA)
    return {**main, **extra} if isinstance(extra, dict) else dict(main)

