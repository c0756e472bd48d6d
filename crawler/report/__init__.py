"""The run report and the run summary's text.

- :func:`write_run_report` / ``python -m crawler.report [RUN_ID]``: the HTML report.
- :mod:`crawler.report.display`: terminal columns by display width (CJK titles).
"""

from crawler.report._html import (
    collect_report_data,
    main,
    render_report,
    report_path,
    write_run_report,
)
from crawler.report.display import display_width, fit

__all__ = [
    "collect_report_data",
    "display_width",
    "fit",
    "main",
    "render_report",
    "report_path",
    "write_run_report",
]
