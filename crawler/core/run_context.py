"""The typed facts of one run, shared by the components of one crawler.

Components used to stick ad-hoc attributes on the Scrapy ``Crawler``
(``xhs_stop_reason``, ``xhs_exit_status``, ``crawl_run_id``, a Mongo handle) and on the
spider (``backlog_due``, ``upgrade_local``, ``claims``, read with ``getattr``). They now
ask ``RunContext.of(crawler)``, which returns the one context of that crawler (kept in
a weak registry, so it goes away with the crawler). Each field names its writer and its
readers.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


@dataclass
class RunContext:
    # The crawl_runs _id (``20260131T120000Z-1a2b3c``), made once per run.
    run_id: str | None = None
    started_at: datetime | None = None
    # Why the run stopped early: a site signal kind ("captcha", "cookie_expired", …),
    # "overlap", "usage", "forced"; None for a run that ran to its end.
    stop_reason: str | None = None
    # The process exit status the crawl command returns (set when the run closes).
    exit_status: int | None = None
    # The store handle (pipelines.mongo's MongoHandle) shared by this run's components.
    store: Any = None
    # The pending task that stops the crawl after a fatal signal, if any.
    stop_task: Any = None
    # The run's failures with their URL, ``{url, reason, message}`` (written by
    # crawler.extensions.report.remember_failure, read by its RunReport).
    failures: list[dict[str, str]] = field(default_factory=list)
    # ``scrapy crawl enrich`` (crawler/spiders/enrich.py) sets these; the enrichment
    # pipeline and the progress line read them. ``backlog_due``: the stored notes due at
    # the run's start (0 until counted), None in a crawl of the site.
    backlog_due: int | None = None
    # Local-backend results are upgraded with Gemini (``-a include_local=1``).
    upgrade_local: bool = False
    # The backlog notes this run hands out are claimed by the spider already, so the
    # enrichment pipeline does not claim them again.
    backlog_claimed: bool = False
    # The notes the run is heading for as far as it is known now (``max_notes``, the
    # notes scheduled or listed so far …): set by crawler.extensions.progress, read by
    # the enrichment pipeline's packing decision. None: nobody knows.
    notes_target: Callable[[], int] | None = None

    _registry: ClassVar[weakref.WeakKeyDictionary[Any, RunContext]] = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, crawler: Any) -> RunContext:
        """The context of ``crawler``, created on first use."""
        context = cls._registry.get(crawler)
        if context is None:
            context = cls._registry[crawler] = cls()
        return context
