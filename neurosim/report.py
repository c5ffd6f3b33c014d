"""Run reports: one structure rendered twice, as Markdown and as a self-contained HTML page.

A report is a title, the run's parameters, and sections; a section has a heading, an
optional paragraph, an optional table (a list of dicts with the same keys) and optional
figures (PNG paths). The HTML embeds the figures as base64 data, so the one file can be
mailed or archived; the Markdown links them relative to its own folder.
"""
from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from analysis.fileio import write_text
from analysis.tables import _md, fmt  # noqa: F401  (fmt re-exported: the one number formatter)
from analysis.tables import columns_of as _columns
from analysis.tables import readable_table


@dataclass
class Section:
    """One part of a report."""

    heading: str
    text: str = ""
    table: list[dict[str, Any]] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    note: str = ""  # one line under the table: what each column means


def to_markdown(title: str, params: dict[str, Any], sections: Sequence[Section], base: Path) -> str:
    """Markdown text; figure links are relative to ``base`` (the report's folder)."""
    lines = [f"# {title}", "", "| parameter | value |", "|---|---|"]
    lines += [f"| {_md(k)} | {_md(fmt(v))} |" for k, v in params.items()]
    for s in sections:
        lines += ["", f"## {s.heading}", ""]
        if s.text:
            lines += [s.text, ""]
        if s.table:
            table = readable_table(s.table)
            cols = _columns(table)
            lines += ["| " + " | ".join(_md(c) for c in cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(_md(fmt(r.get(c, ""))) for c in cols) + " |" for r in table]
            lines.append("")
        if s.note:
            lines += [f"*{s.note}*", ""]
        for f in s.figures:
            rel = os.path.relpath(f, base)
            lines += [f"![{Path(f).stem}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #4c72b0;padding-bottom:.3em}h2{margin-top:1.8em;color:#2c4a7c}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#eef2f8}td{white-space:nowrap}
td:first-child,th:first-child,td.t{text-align:left}td.t{white-space:normal}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;border:1px solid #ddd;margin:.5em 0}p{max-width:60em}
.scroll{overflow-x:auto;max-width:100%}.scroll table{margin:.4em 0}
p.note{font-size:.85em;color:#555;margin-top:.2em}
"""


def to_html(title: str, params: dict[str, Any], sections: Sequence[Section]) -> str:
    """A self-contained HTML page (figures embedded as base64 PNG)."""
    e = html.escape
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>",
           f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>",
           "<table><tr><th>parameter</th><th>value</th></tr>"]
    out += [f"<tr><td>{e(str(k))}</td><td>{e(fmt(v))}</td></tr>" for k, v in params.items()]
    out.append("</table>")
    for s in sections:
        out.append(f"<h2>{e(s.heading)}</h2>")
        if s.text:
            out += [f"<p>{e(p)}</p>" for p in s.text.split("\n\n")]
        if s.table:
            table = readable_table(s.table)
            cols = _columns(table)
            out.append("<div class='scroll'><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>")
            out += ["<tr>" + "".join(_td(r.get(c, "")) for c in cols) + "</tr>" for r in table]
            out.append("</table></div>")
        if s.note:
            out.append(f"<p class='note'>{e(s.note)}</p>")
        for f in s.figures:
            data = base64.b64encode(Path(f).read_bytes()).decode("ascii")
            out.append(f"<figure><img alt='{e(Path(f).stem)}' src='data:image/png;base64,{data}'></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def _td(value: Any) -> str:
    """A table cell; prose (text that is not a number) is left-aligned, numbers right-aligned."""
    text = fmt(value)
    cls = ""
    if isinstance(value, str) and len(text) > 12:
        try:
            float(text)
        except ValueError:
            cls = " class='t'"
    return f"<td{cls}>{html.escape(text)}</td>"



def write_report(folder: str | os.PathLike, title: str, params: dict[str, Any], sections: Sequence[Section]) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``folder`` (atomically); returns both paths."""
    base = Path(folder)
    md, page = base / "report.md", base / "report.html"
    write_text(md, to_markdown(title, params, sections, base), overwrite=True)
    write_text(page, to_html(title, params, sections), overwrite=True)
    return md, page
