"""Reports as data: headings, paragraphs, tables and figures, rendered to Markdown and HTML.

A study builds a `Report` once; `write_report` saves `report.json` (the blocks), `report.md`
(figures as PNG files beside it) and a self-contained `report.html` (figures embedded). Keeping the
blocks as JSON lets `vlmlab runs report DIR` stitch the reports of many run folders into one page
without re-running anything.

Everything that comes from data or from a model (captions, answers, file names) is text in a block
and is escaped on rendering: a caption containing `<script>` shows as text in both formats.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vlmlab.runs import atomic_write_bytes, atomic_write_text

Best = Literal["max", "min"]


@dataclass
class Table:
    """A table; `best` marks the best value per column (bold) the way papers do."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    best: dict[str, Best] = field(default_factory=dict)
    digits: int = 4

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.caption!r}: row {i} has {len(row)} cells for {len(self.columns)} columns")

    def best_rows(self) -> dict[int, set[int]]:
        """column index -> the one row holding that column's best value, if there is one.

        Values are compared as they are shown (rounded to `digits`): 0.00004 and 0.0 both read
        0.0000, so neither is the best. A tie, or a column with fewer than two ranked rows, has no
        best row to bold.
        """
        out: dict[int, set[int]] = {}
        for name, how in self.best.items():
            if name not in self.columns:
                continue
            c = self.columns.index(name)
            values = [(r, self._shown(row[c])) for r, row in enumerate(self.rows) if _is_number(row[c])]
            if len(values) < 2:
                continue
            target = (max if how == "max" else min)(v for _, v in values)
            holders = {r for r, v in values if v == target}
            if len(holders) == 1:
                out[c] = holders
        return out

    def _shown(self, value: int | float) -> int | float:
        """A number as the reader sees it in the table (floats at `digits` decimals)."""
        return float(self.cell_text(value)) if isinstance(value, float) and math.isfinite(value) else value

    def cell_text(self, value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            if math.isnan(value):
                return "nan"
            return f"{value:.{self.digits}f}"
        return str(value)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "table", "columns": self.columns, "rows": self.rows, "caption": self.caption, "best": self.best, "digits": self.digits}

    def write_csv(self, path: Path) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if v is None else v for v in row])
        atomic_write_text(path, buf.getvalue())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not (isinstance(value, float) and math.isnan(value))


@dataclass
class Figure:
    """A PNG figure; `name` is its file name beside report.md."""

    png: bytes
    name: str
    caption: str = ""


@dataclass
class Report:
    """An ordered list of blocks with a title."""

    title: str
    blocks: list[Any] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> "Report":
        self.blocks.append({"type": "heading", "text": text, "level": level})
        return self

    def text(self, text: str) -> "Report":
        self.blocks.append({"type": "text", "text": text})
        return self

    def table(self, table: Table) -> "Report":
        self.blocks.append(table)
        return self

    def figure(self, png: bytes, name: str, caption: str = "") -> "Report":
        if not name.endswith(".png"):
            name += ".png"
        self.blocks.append(Figure(png=png, name=name, caption=caption))
        return self

    def extend(self, other: "Report", level_shift: int = 1) -> "Report":
        """Append another report's blocks under a heading of its title."""
        self.heading(other.title, level=1 + level_shift)
        for block in other.blocks:
            if isinstance(block, dict) and block["type"] == "heading":
                block = {**block, "level": min(6, block["level"] + level_shift)}
            self.blocks.append(block)
        return self


def _md_escape(text: str) -> str:
    """Markdown cell/paragraph text that renders literally (no HTML, no table breaks)."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    lines = [f"# {_md_escape(report.title)}", ""]
    for block in report.blocks:
        if isinstance(block, Table):
            if block.caption:
                lines += [f"**{_md_escape(block.caption)}**", ""]
            best = block.best_rows()
            lines.append("| " + " | ".join(_md_escape(c) for c in block.columns) + " |")
            lines.append("|" + "|".join("---" for _ in block.columns) + "|")
            for r, row in enumerate(block.rows):
                cells = []
                for c, value in enumerate(row):
                    text = _md_escape(block.cell_text(value))
                    cells.append(f"**{text}**" if r in best.get(c, ()) else text)
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        elif isinstance(block, Figure):
            lines += [f"![{_md_escape(block.caption or block.name)}]({block.name})", ""]
            if block.caption:
                lines += [f"*{_md_escape(block.caption)}*", ""]
        elif block["type"] == "heading":
            lines += [f"{'#' * block['level']} {_md_escape(block['text'])}", ""]
        else:
            lines += [_md_escape(block["text"]), ""]
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border:1px solid #bbb;padding:4px 8px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}
caption{caption-side:top;font-weight:bold;text-align:left;padding:4px 0}
td.best{font-weight:bold;background:#e8f5e9}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-style:italic;font-size:13px}
p{white-space:pre-wrap}
"""


def render_html(report: Report) -> str:
    """A self-contained page: no scripts, images embedded, a CSP that forbids scripts anyway."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">",
        f"<title>{esc(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1>",
    ]
    for block in report.blocks:
        if isinstance(block, Table):
            best = block.best_rows()
            parts.append("<table>")
            if block.caption:
                parts.append(f"<caption>{esc(block.caption)}</caption>")
            parts.append("<thead><tr>" + "".join(f"<th>{esc(str(c))}</th>" for c in block.columns) + "</tr></thead><tbody>")
            for r, row in enumerate(block.rows):
                cells = []
                for c, value in enumerate(row):
                    cls = ' class="best"' if r in best.get(c, ()) else ""
                    cells.append(f"<td{cls}>{esc(block.cell_text(value))}</td>")
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(block.png).decode()
            alt = esc(block.caption or block.name)
            parts.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">')
            if block.caption:
                parts.append(f"<figcaption>{esc(block.caption)}</figcaption>")
            parts.append("</figure>")
        elif block["type"] == "heading":
            level = max(2, min(6, int(block["level"])))
            parts.append(f"<h{level}>{esc(block['text'])}</h{level}>")
        else:
            parts.append(f"<p>{esc(block['text'])}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def report_to_json(report: Report) -> dict[str, Any]:
    blocks = []
    for block in report.blocks:
        if isinstance(block, Table):
            blocks.append(block.to_dict())
        elif isinstance(block, Figure):
            blocks.append({"type": "figure", "name": block.name, "caption": block.caption})
        else:
            blocks.append(block)
    return {"title": report.title, "blocks": blocks}


def report_from_json(data: dict[str, Any], folder: Path) -> Report:
    """Rebuild a Report saved by `write_report` (figures read from `folder`)."""
    report = Report(title=data["title"])
    for block in data["blocks"]:
        if block["type"] == "table":
            report.blocks.append(Table(block["columns"], block["rows"], block.get("caption", ""), block.get("best", {}), block.get("digits", 4)))
        elif block["type"] == "figure":
            path = folder / block["name"]
            if path.exists():
                report.blocks.append(Figure(path.read_bytes(), block["name"], block.get("caption", "")))
        else:
            report.blocks.append(block)
    return report


def write_report(report: Report, folder: Path, stem: str = "report") -> dict[str, Path]:
    """Write `<stem>.json`, `<stem>.md` (+ PNGs) and a self-contained `<stem>.html` into `folder`."""
    folder = Path(folder)
    names: set[str] = set()
    for block in report.blocks:
        if isinstance(block, Figure):
            if block.name in names:
                raise ValueError(f"two figures named {block.name!r} in report {report.title!r}")
            names.add(block.name)
            atomic_write_bytes(folder / block.name, block.png)
    paths = {"json": folder / f"{stem}.json", "md": folder / f"{stem}.md", "html": folder / f"{stem}.html"}
    atomic_write_text(paths["json"], json.dumps(report_to_json(report), indent=1, ensure_ascii=False, default=str) + "\n")
    atomic_write_text(paths["md"], render_markdown(report))
    atomic_write_text(paths["html"], render_html(report))
    return paths


def metrics_table(metrics: dict[str, Any], caption: str = "metrics") -> Table:
    """A two-column table of the scalar entries of a (nested) metrics dict."""
    rows: list[list[Any]] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        elif not isinstance(node, (list, tuple)):
            rows.append([prefix.rstrip("."), node])

    walk(metrics, "")
    return Table(["metric", "value"], rows, caption=caption)
