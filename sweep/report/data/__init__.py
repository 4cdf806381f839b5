"""What a report reads: a study opened read-only (``source``), sweep's stored records read
tolerantly (``stored``), and the two collected once into ``ReportData`` (``collect``).

Below findings, figures and rendering; above ``analysis`` only (import-linter checks it).
"""
