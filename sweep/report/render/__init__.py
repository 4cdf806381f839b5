"""Rendering: a study's report as a ``Document`` of blocks (``page``, ``blocks``), written
as one self-contained HTML page (``html``) or as Markdown (``markdown``).

Above findings and figures; below ``write`` and ``compare`` (import-linter checks it).
"""
