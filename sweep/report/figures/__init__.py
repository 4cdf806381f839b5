"""A report's figures, drawn from ``ReportData`` with matplotlib's object API (Agg):
the figure list (``draw``), curves over training (``curves``) and shared pieces such as
the ``Image`` record and colours (``plotting``).

Independent of ``findings``; read by ``render`` (import-linter checks it).
"""
