"""The statistics a report quotes, as pure computations on pandas tables: best-so-far,
rankings and schedule summaries (``stats``), the noise in a score (``uncertainty``),
parameter importances (``importance``) and the evidence behind two warnings (``evidence``).

No words and no drawing here; the lowest room of ``sweep.report`` (import-linter checks it).
"""
