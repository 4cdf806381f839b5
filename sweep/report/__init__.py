"""Study reports: ``results/<name>/`` with index.html, report.md, trials.csv,
best_config.yaml, lr_finder.json and figures/*.png; and side-by-side comparisons.

Reads Optuna studies with pandas and draws with matplotlib (Agg); never imports
Keras or TensorFlow, so ``sweep report`` starts fast. May import ``sweep.search``'s
plot, ``sweep.training.schedule_math``, ``sweep.storage`` and the root modules; never
``sweep.study``, ``sweep.commands`` or ``sweep.cli`` (import-linter checks it).

Rooms, each importing only those below it (import-linter checks the direction):
``write`` (a report folder) > ``compare`` (studies side by side) > ``render`` (page, HTML, Markdown) >
``findings`` | ``figures`` (independent of each other) > ``data`` (what a report reads) >
``analysis`` (the statistics) > ``fmt`` (number formats).

    from sweep.report import write_report
    write_report(study, Path("results") / study.study_name, storage_url=url)
"""

from sweep.report.write import write_comparison, write_report

__all__ = ["write_comparison", "write_report"]
