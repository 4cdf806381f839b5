"""The building blocks of a report page, shared by the HTML and Markdown renderers.

A page is a ``Document`` of ``Section``s holding blocks. Cells and texts are plain
strings, unescaped: each renderer escapes them for its own format, so strings from a
config or a study never reach the output raw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from sweep.report.figures.draw import Image
from sweep.report.findings.finding import Finding


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Findings:
    items: list[Finding]


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    """A link to a file of the output folder (a relative path such as ``trials.csv``)."""

    text: str
    href: str


Block = Union[Table, Paragraph, Findings, Code, Link, Image]


@dataclass(frozen=True)
class Section:
    title: str
    blocks: list[Block]


@dataclass(frozen=True)
class Document:
    title: str
    meta: list[tuple[str, str]]  # key/value lines under the title
    sections: list[Section]
    footer: str = ""
