"""Storage: where studies live (storage URLs, SQLite for many writers, opening studies,
artifacts, and which of a study's records are user attrs and which system attrs).

Optuna and SQLAlchemy only, never Keras, so ``sweep status`` and ``sweep report`` start
fast. May import ``sweep.config`` and the root modules; never ``sweep.training``,
``sweep.search``, ``sweep.study``, ``sweep.report`` or ``sweep.commands``.
"""
