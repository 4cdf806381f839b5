"""Render a ``Document`` as one self-contained HTML page (figures inline as base64 PNG).

Every string is passed through ``html.escape``; the page has no scripts and loads
nothing from anywhere, so it reads the same offline.
"""

from __future__ import annotations

import base64
import html
import re

from sweep.report.render.blocks import Code, Document, Findings, Link, Paragraph, Table
from sweep.report.figures.draw import Image

_NUMBER = re.compile(r"^[#+-]?[\d.]+(e[+-]?\d+)?%?$")

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1080px;
       padding: 1.5rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .25rem; }
div.scroll { overflow-x: auto; max-width: 100%; margin: .8rem 0; }
table { border-collapse: collapse; font-size: .92rem; }
th, td { padding: .28rem .65rem; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table:not(.meta) td { white-space: nowrap; }  /* short cells: one line each, the box scrolls */
table.meta th { background: none; color: #555; font-weight: 500; white-space: nowrap; }
p.note { color: #666; font-size: .85rem; margin: -.5rem 0 .8rem; }
ul.findings { padding-left: 1.2rem; }
ul.findings li { margin: .35rem 0; }
ul.findings li.warning { color: #8a4b00; font-weight: 500; }
ul.findings li.warning::marker { content: "\\26A0  "; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .88rem; }
pre { background: #f7f7f7; padding: .8rem; overflow-x: auto; font-size: .85rem; }
footer { margin-top: 3rem; color: #777; font-size: .8rem; }
@media (max-width: 600px) {
  body { padding: .8rem; } table { font-size: .82rem; } th, td { padding: .22rem .45rem; }
  /* A 1000-pixel figure squeezed to a phone's width has unreadable labels: keep it at
     least 700 pixels wide and let it scroll sideways in its box, like the tables. */
  figure { overflow-x: auto; } figure img { min-width: 700px; }
}
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_html(doc: Document) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(doc.title)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(doc.title)}</h1>", _meta(doc.meta)]
    for section in doc.sections:
        parts.append(f"<section><h2>{esc(section.title)}</h2>")
        parts.extend(_block(block) for block in section.blocks)
        parts.append("</section>")
    if doc.footer:
        parts.append(f"<footer>{esc(doc.footer)}</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _meta(meta: list[tuple[str, str]]) -> str:
    if not meta:
        return ""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in meta)
    return f'<div class="scroll"><table class="meta">{rows}</table></div>'


def _block(block: object) -> str:
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Findings):
        items = "".join(f'<li class="{"warning" if f.warning else "info"}">{esc(f.text)}</li>' for f in block.items)
        return f'<ul class="findings">{items}</ul>'
    if isinstance(block, Paragraph):
        return f"<p>{esc(block.text)}</p>"
    if isinstance(block, Code):
        return f"<pre><code>{esc(block.text)}</code></pre>"
    if isinstance(block, Link):
        return f'<p><a href="{esc(block.href)}">{esc(block.text)}</a></p>'
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure id="{esc(block.name)}"><img alt="{esc(block.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{esc(block.caption)}</figcaption></figure>")
    raise TypeError(f"cannot render {type(block).__name__}")


def _table(table: Table) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(f'<td class="num">{esc(c)}</td>' if _NUMBER.match(str(c)) else f"<td>{esc(c)}</td>"
                        for c in row)
        body.append(f"<tr>{cells}</tr>")
    # Wide tables scroll inside their box (a phone is narrower than the trials table); the
    # note stays outside it, wrapped to the page, so it reads without scrolling sideways.
    note = f'<p class="note">{esc(table.note)}</p>' if table.note else ""
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
            f"</table></div>{note}")
