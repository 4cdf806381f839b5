"""A study's life cycle: creating or reopening it, the worker loop, the budget,
recovery of interrupted trials, status and evaluation of the best configurations.

The layer that ties search, training and storage together. May import everything
below it (``sweep.report``, ``sweep.search``, ``sweep.training``, ``sweep.storage``, the
root modules); never ``sweep.commands`` or ``sweep.cli``.
"""
