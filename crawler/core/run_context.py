"""The typed facts of one run, shared by the components of one crawler.

Components used to stick ad-hoc attributes on the Scrapy ``Crawler``
(``xhs_stop_reason``, ``xhs_exit_status``, ``crawl_run_id``, a Mongo handle). They now
ask ``RunContext.of(crawler)``, which returns the one context of that crawler (kept in
a weak registry, so it goes away with the crawler).
"""

from __future__ import annotations

import weakref
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
    # Anything a component must hand to another within the run, by a documented name.
    extras: dict[str, Any] = field(default_factory=dict)

    _registry: ClassVar[weakref.WeakKeyDictionary[Any, RunContext]] = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, crawler: Any) -> RunContext:
        """The context of ``crawler``, created on first use."""
        context = cls._registry.get(crawler)
        if context is None:
            context = cls._registry[crawler] = cls()
        return context
