"""RunSummary: the human summary at the end of every crawl and enrich run.

Logged at :data:`~crawler.extensions.run_record.run_finished` (during Scrapy's
``spider_closed``, so above Scrapy's stats dump): notes new / changed / unchanged,
images, enrichment by outcome and backend, Gemini requests and 429s, notes deferred
and until when, the refused inputs with their reasons, a table of the run's notes
(titles laid out by display width, CJK included) and where the data, the images and
the report are. ``bash .ci/demo`` shows exactly this.

The text is built by :func:`summary_text` (pure: the figures in, lines out); the store
is read once, by :func:`read_run_notes`. Without a store (database down) the summary
still shows the stats. Not written for a run stopped by the overlap guard.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import Crawler

from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from crawler.core.names import NOTE_STATS, NOTES
from crawler.core.timeutil import as_utc, utcnow
from crawler.extensions.progress import duration, notes_stored
from crawler.extensions.run_record import first_line, run_finished
from crawler.extensions.run_stats import sum_prefix
from crawler.report import fit, report_path

logger = logging.getLogger(__name__)

TABLE_ROWS = 12
RULE = 86


@dataclass
class RunNotes:
    """What the store says about the run's notes."""

    rows: list[dict[str, Any]] = field(default_factory=list)  # the first TABLE_ROWS
    total: int = 0
    by_backend: dict[str, int] = field(default_factory=dict)  # done notes per backend
    deferred_until: datetime | None = None  # latest next_attempt_at of its deferred notes


async def read_run_notes(db: Any, run_id: str, started_at: datetime | None) -> RunNotes:
    """The run's notes: those its crawl stored (``crawl_run_id``) or it enriched."""
    ids = [
        row["note_id"]
        async for row in db[NOTE_STATS].find({"crawl_run_id": run_id}, {"note_id": 1})
    ]
    clauses: list[dict[str, Any]] = [{"crawl_run_id": run_id}]
    if ids:
        clauses.append({"_id": {"$in": ids}})
    if started_at is not None:
        clauses.append({"enrichment.updated_at": {"$gte": started_at}})
    projection = {
        "title": 1, "images.status": 1, "interact.liked": 1, "enrichment.status": 1,
        "enrichment.backend": 1, "enrichment.next_attempt_at": 1, "enrichment.result.summary": 1,
    }  # fmt: skip
    found = RunNotes()
    async for doc in db[NOTES].find({"$or": clauses}, projection).sort("_id", 1):
        found.total += 1
        state = EnrichmentState.from_document(doc.get("enrichment"))
        status = state.status if state is not None else None
        if state is not None and status is EnrichmentStatus.DONE:
            backend = str(state.backend or "none")
            found.by_backend[backend] = found.by_backend.get(backend, 0) + 1
        until = state.next_attempt_at if state is not None else None
        if status is EnrichmentStatus.DEFERRED and isinstance(until, datetime):
            until = as_utc(until)
            found.deferred_until = max(found.deferred_until or until, until)
        if len(found.rows) < TABLE_ROWS:
            found.rows.append(doc)
    return found


def store_location(settings: Any) -> str:
    """Where the notes are, without credentials."""
    uri = settings.get("MONGO_URI") or ""
    database = settings.get("MONGO_DATABASE")
    if uri:
        try:
            host = urlsplit(uri).hostname or "?"
        except ValueError:
            host = "?"
        return f"MongoDB at {host} (MONGO_URI), database {database}"
    return f"embedded MongoDB in {settings.get('MONGO_DATA_DIR')}/, database {database}"


def _when(moment: datetime | None) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def summary_text(
    *,
    run_id: str,
    spider: str,
    reason: str,
    exit_status: int,
    elapsed_s: float | None,
    stats: Mapping[str, Any],
    notes: RunNotes | None,
    refused: Sequence[Any],
    places: Sequence[tuple[str, str]],
) -> str:
    """The summary block (pure)."""
    new, changed = stats.get("notes/new", 0), stats.get("notes/changed", 0)
    unchanged = stats.get("notes/unchanged", 0)
    stored = notes_stored(stats)
    images_ok = stats.get("media/images_ok", 0)
    reused = stats.get("media/skipped_existing", 0) + stats.get("incremental/media_reused", 0)
    deferred = stats.get("enrich/deferred", 0)
    backends = ", ".join(f"{k} {v}" for k, v in sorted((notes.by_backend if notes else {}).items()))
    took = f", {duration(elapsed_s)}" if elapsed_s is not None else ""
    lines = [
        "=" * RULE,
        f"Run {run_id} ({spider}): {reason}, exit status {exit_status}{took}",
        f"  notes       {stored} stored: {new} new, {changed} changed, {unchanged} unchanged",
        f"  images      {images_ok} downloaded, {reused} reused, "
        f"{sum_prefix(stats, 'media/images_failed/')} failed",
        f"  enrichment  {stats.get('enrich/done', 0)} done"
        + (f" ({backends})" if backends else "")
        + f", {stats.get('enrich/cache_hits', 0)} from cache, "
        f"{sum_prefix(stats, 'enrich/failed/')} failed, {deferred} deferred"
        + (f" until {_when(notes.deferred_until)}" if deferred and notes else ""),
        f"  Gemini      {sum_prefix(stats, 'gemini/requests/')} requests, "
        f"{sum_prefix(stats, 'gemini/429/')} answered 429",
    ]
    if stats.get("profiles/parsed"):
        lines.append(f"  creators    {stats['profiles/parsed']} profiles stored")
    if refused:
        lines.append(f"  refused     {len(refused)} input(s):")
        lines += [f"    {fit(r.entry, 28)}  {r.message[:160]}" for r in refused[:20]]
    if notes is not None and notes.rows:
        lines += [
            "-" * RULE,
            f"  {fit('title', 34)} {fit('enrichment', 15)} {fit('imgs', 4, align='right')} "
            f"{fit('likes', 6, align='right')}  summary",
        ]
        for doc in notes.rows:
            enrichment = doc.get("enrichment") or {}
            label = f"{enrichment.get('status', '-')}/{enrichment.get('backend', '-')}"
            summary = ((enrichment.get("result") or {}).get("summary")) or ""
            likes = (doc.get("interact") or {}).get("liked")
            lines.append(
                f"  {fit(doc.get('title') or doc['_id'], 34)} {fit(label, 15)} "
                f"{fit(str(len(doc.get('images') or [])), 4, align='right')} "
                f"{fit('' if likes is None else str(likes), 6, align='right')}  {fit(summary, 20)}"
            )
        if notes.total > len(notes.rows):
            lines.append(f"  … and {notes.total - len(notes.rows)} more")
    lines.append("-" * RULE)
    lines += [f"  {fit(name, 10)}  {where}" for name, where in places]
    lines.append("=" * RULE)
    return "\n".join(lines)


class RunSummary:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunSummary:
        ext = cls(crawler)
        crawler.signals.connect(ext.write, signal=run_finished)
        return ext

    def places(self, run_id: str) -> list[tuple[str, str]]:
        settings = self.crawler.settings
        found = [
            ("data", store_location(settings)),
            ("browse", "python -m crawler.web   (the analyst web app; or exports: python -m crawler.export)"),
            ("images", f"{settings.get('IMAGES_STORE')}/"),
        ]  # fmt: skip
        directory = settings.get("RUN_REPORT_DIR")
        found.append(
            ("report", str(report_path(Path(directory), run_id)) if directory else "none (RUN_REPORT_DIR empty)")
        )  # fmt: skip
        return found

    async def write(
        self, spider: Any, run_id: str, db: Any, reason: str, exit_status: int, **_: Any
    ) -> None:
        if reason == "overlap":
            return
        stats = self.crawler.stats.get_stats()  # type: ignore[union-attr]
        started = stats.get("start_time")
        notes = None
        if db is not None:
            try:
                notes = await read_run_notes(db, run_id, started)
            except Exception as exc:  # the summary shows the stats anyway
                logger.warning("Run summary without the stored notes: %s", first_line(exc))
        elapsed = None
        if isinstance(started, datetime):
            elapsed = (utcnow() - as_utc(started)).total_seconds()
        inputs = getattr(spider, "inputs", None)
        text = summary_text(
            run_id=run_id, spider=spider.name, reason=reason, exit_status=int(exit_status),
            elapsed_s=elapsed, stats=stats, notes=notes,
            refused=list(getattr(inputs, "refused", []) or []), places=self.places(run_id),
        )  # fmt: skip
        logger.info("Run summary\n%s", text)
