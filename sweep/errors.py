"""The exception hierarchy. The CLI turns these into exit codes in one place.

Every message is one line that says what was wrong and what is expected, so the
CLI can print it as-is without a traceback.
"""

import errno

# A disk that is full or read-only: every later trial would fail the same way, so the
# worker stops (keeping the running trial's checkpoint) instead of failing trial after trial.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)


class SweepError(Exception):
    """Base class for errors a user can act on. Exit code 2 unless a subclass says otherwise."""

    exit_code = 2


class ConfigError(SweepError):
    """A config file, a --set override or a command-line argument is invalid."""


class DataError(SweepError):
    """The training data is missing, unreadable or unusable."""


class StudyError(SweepError):
    """A study is unknown, or its storage cannot be used as asked."""


class TrainingError(SweepError):
    """Training failed at run time (not the user's input)."""

    exit_code = 1


def exception_summary(exc: BaseException) -> str:
    """``Type: first informative line`` of an exception raised by user code, for one-line errors."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # Keras wraps layer errors as "Exception encountered when calling X.call().\n\n<the reason>".
    lines = [line for line in lines if not line.startswith("Exception encountered when calling")] or lines
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


class TrialTakenOver(Exception):
    """Not a user error: a worker's trial was finished under it (another worker's recovery
    failed it after a late heartbeat). Its retry continues it; this worker stops it at the
    next epoch boundary and goes on."""


class CheckpointStoreError(TrainingError):
    """The checkpoint store (a local or network folder, S3) failed to save or load a trial's
    checkpoint. Not the trial's fault: its checkpoints are kept and it is re-enqueued."""
