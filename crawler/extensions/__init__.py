"""Run-level components, one per module (Scrapy extensions; each documented in its module).

- :class:`Progress` (``progress``): the periodic line: target, percent, rate, ETA and
  the counts per stage (replaces Scrapy's LogStats).
- :class:`CollectorTuning` (``collector``): the cyclic GC tuned for a crawl process.
- :class:`RunRecord` (``run_record``): the ``crawl_runs`` record and the exit status;
  sends ``run_starting`` / ``run_finished``, the signals the next three connect to.
- :class:`RunLease` (``lease``): the overlap guard (off: ``RUN_LEASE_ENABLED=False`` or
  ``REDIS_URL`` set).
- :class:`RunReport` (``report``): the HTML run report (off: ``RUN_REPORT_DIR`` empty).
- :class:`RunSummary` (``run_summary``): the human summary at the end of every run.
- :class:`DistributedIdle` (``distributed_idle``): idle workers wait for the shared
  queue (off: ``REDIS_URL`` unset).
- ``run_stats``: pure readings of the stats (``run_counts``, ``public_args``, ``sum_prefix``).

Run-level facts (run id, stop reason, exit status, store) live in
``crawler.core.run_context.RunContext.of(crawler)``, not on the crawler object.
"""

from crawler.extensions.collector import CollectorTuning
from crawler.extensions.distributed_idle import DistributedIdle
from crawler.extensions.lease import RunLease, lease_key
from crawler.extensions.progress import Progress
from crawler.extensions.report import RunReport
from crawler.extensions.run_record import (
    EXIT_BLOCKED,
    EXIT_COOKIE_EXPIRED,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_OVERLAP,
    EXIT_STORAGE_DOWN,
    EXIT_USAGE,
    RunRecord,
    exit_status,
    run_finished,
    run_starting,
)
from crawler.extensions.run_stats import public_args, run_counts, sum_prefix
from crawler.extensions.run_summary import RunSummary

__all__ = [
    "EXIT_BLOCKED",
    "EXIT_COOKIE_EXPIRED",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_OVERLAP",
    "EXIT_STORAGE_DOWN",
    "EXIT_USAGE",
    "CollectorTuning",
    "DistributedIdle",
    "Progress",
    "RunLease",
    "RunRecord",
    "RunReport",
    "RunSummary",
    "exit_status",
    "lease_key",
    "public_args",
    "run_counts",
    "run_finished",
    "run_starting",
    "sum_prefix",
]
