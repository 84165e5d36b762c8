"""Reports: tables, figures and pages a person reads (Markdown, HTML, PNG)."""

from vlmlab.report.document import Figure, Report, Table, render_html, render_markdown, write_report

__all__ = ["Figure", "Report", "Table", "render_html", "render_markdown", "write_report"]
