"""The run report and the run summary's text.

- :func:`write_run_report` (``_html``) / ``python -m crawler.report [RUN_ID]`` (``_cli``):
  the HTML report of a run, one shared plotly.js beside the reports.
- :func:`collect_report_data` (``_data``): what the report shows, from the store.
- :mod:`crawler.report.display`: terminal columns by display width (CJK titles).
"""

from crawler.report._cli import main
from crawler.report._data import collect_report_data
from crawler.report._html import REPORT_JS_SOURCE, render_report, report_path, write_run_report
from crawler.report.display import display_width, fit

__all__ = [
    "REPORT_JS_SOURCE",
    "collect_report_data",
    "display_width",
    "fit",
    "main",
    "render_report",
    "report_path",
    "write_run_report",
]
