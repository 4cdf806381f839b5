"""Search: the LR range test (its rules, its plot), the prior, the search space and the objective.

Turns an Optuna trial into parameters, a schedule and a trained model, and the LR
finder's curve into a prior. May import ``sweep.training``, ``sweep.storage`` and the
root modules; never ``sweep.study``, ``sweep.report`` or ``sweep.commands``.
``lr_finder_plot`` is matplotlib only (reports import it without Keras).
"""
