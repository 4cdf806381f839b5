"""Training: data, the model, LR schedules, the trainer and epoch checkpoints.

Keras and numpy only: nothing here knows of Optuna, studies or storage, so a schedule
or a training run can be used and tested without a study. May import ``sweep.config``,
``sweep.errors`` and ``sweep.logs``; never ``sweep.search``, ``sweep.storage``,
``sweep.study``, ``sweep.report`` or ``sweep.commands`` (import-linter checks it).
``schedule_math`` is numpy only: reports draw schedules with it without TensorFlow.
"""
