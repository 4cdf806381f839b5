"""Render a ``Document`` as Markdown (report.md): the same tables and findings, figures linked.

Strings are escaped so that nothing from a config or a study turns into markup,
links or raw HTML: ``escape`` backslash-escapes CommonMark's active characters.
"""

from __future__ import annotations

import re

from sweep.report.render.blocks import Code, Document, Findings, Link, Paragraph, Table
from sweep.report.figures.draw import Image

# Inline markup, links, raw HTML and table cells; list and heading markers only count
# at the start of a line, so only there are they escaped (numbers stay readable).
_ACTIVE = re.compile(r"([\\`*_{}\[\]<>|~])")
_LINE_START = re.compile(r"^([#+-]|\d+[.)])(?=\s|$)")


def escape(text: object) -> str:
    """``text`` on one line with Markdown's active characters backslash-escaped."""
    flat = _ACTIVE.sub(r"\\\1", " ".join(str(text).split()))
    return _LINE_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], flat)


def render_markdown(doc: Document) -> str:
    lines = [f"# {escape(doc.title)}", ""]
    lines += [f"- **{escape(k)}**: {escape(v)}" for k, v in doc.meta]
    for section in doc.sections:
        lines += ["", f"## {escape(section.title)}", ""]
        for block in section.blocks:
            if isinstance(block, Table) and block.title == section.title:
                block = Table("", block.columns, block.rows, block.note)  # the heading already says it
            lines += _block(block) + [""]
    if doc.footer:
        lines += ["", f"_{escape(doc.footer)}_"]
    return "\n".join(lines).rstrip() + "\n"


def _block(block: object) -> list[str]:
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Findings):
        return [f"- {'**Warning:** ' if f.warning else ''}{escape(f.text)}" for f in block.items]
    if isinstance(block, Paragraph):
        return [escape(block.text)]
    if isinstance(block, Code):
        longest = max((len(m) for m in re.findall(r"`+", block.text)), default=0)
        fence = "`" * max(3, longest + 1)  # a fence the content cannot close
        return [fence, block.text.rstrip("\n"), fence]
    if isinstance(block, Link):
        return [f"[{escape(block.text)}](<{_href(block.href)}>)"]
    if isinstance(block, Image):
        return [f"![{escape(block.name)}](<{_href(f'figures/{block.name}.png')}>)", "", f"*{escape(block.caption)}*"]
    raise TypeError(f"cannot render {type(block).__name__}")


def _table(table: Table) -> list[str]:
    lines = [f"**{escape(table.title)}**", ""] if table.title else []
    lines.append("| " + " | ".join(escape(c) for c in table.columns) + " |")
    lines.append("|" + "|".join(" --- " for _ in table.columns) + "|")
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"*{escape(table.note)}*"]
    return lines


def _href(path: str) -> str:
    # Paths are our own file names; still keep anything that could end the link out.
    return re.sub(r"[<>\s\\]", "", path)
