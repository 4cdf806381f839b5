"""A report's findings in words, computed from ``ReportData`` and ``analysis``: the
``Finding`` record (``finding``), every finding in reading order (``summary``), those
about the learning rate (``learning_rate``) and those comparing scores (``scores``).

Independent of ``figures``; read by ``render`` (import-linter checks it).
"""
