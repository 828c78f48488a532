"""The analyst's report: one self-contained HTML file (PDF rendering lives in gui/report_pdf)."""

from .builder import build_html
from .inputs import find_model, read_source
from .output import check_output, is_our_report, write_html

__all__ = ["build_html", "check_output", "find_model", "is_our_report", "read_source", "write_html"]
