"""MongoStoragePipeline: batched upserts into ``notes``, one ``note_stats`` row per crawl.

Every note becomes a *unit* (a plain dict, also the spool record): the sanitized note
fields, its enrichment, bookkeeping (crawled_at, run id, content hash) and its
``note_stats`` row. Units are buffered and written with unordered ``bulk_write``s when
``MONGO_BATCH_SIZE`` units are waiting or the oldest has waited ``MONGO_FLUSH_INTERVAL``
seconds, and on close.

A note the incremental check found ``new`` is inserted whole (:func:`new_note_document`:
what the upserts below would create; an insert costs the server about a third of an
upsert). If it was stored meanwhile (another process, a retried batch) the insert
collides on ``_id`` and the note gets the updates below instead. Every other note gets
plain updates (no read, no aggregation pipeline: secantus runs those about 7× slower),
built so the merge rules hold for concurrent writers and spool replays whatever the
order the server applies them in (:func:`note_writes`):

- the latest fields are written only if this unit is at least as recent as the stored
  ``last_crawled_at`` (a replayed old unit never overwrites newer data);
- ``first_seen_at`` is the earliest crawl time ever seen;
- ``enrichment`` is replaced only by one at least as good (:func:`enrichment_rank`:
  done+gemini 4 > done+other 3 > deferred/failed/skipped 2 > pending 1 > none 0; ties
  go to the newer). It carries the ``content_hash`` it was made for; a kept ``done``
  result made for other content gets ``enrichment.stale: true`` (the enrich spider's
  backlog picks it up).

Transient errors are retried with exponential backoff (``MONGO_RETRY_TIMES``); if the
database stays down the units go to the fsync'd spool, later batches go straight to
the spool until a probe (every ``MONGO_PROBE_INTERVAL`` s) finds the database back,
and the spool is replayed then, at the next start, or by
``python -m pipelines.storage replay``. Nothing is dropped: a unit Mongo refuses for
itself (a write error) is counted in ``storage/errors/<reason>`` and logged.

Stats: ``storage/upserted`` (note documents created), ``storage/modified`` (documents changed by updates,
enrichment merges included), ``storage/spooled``, ``storage/replayed``,
``storage/retries``, ``storage/superseded`` (newer data was already stored),
``storage/truncated_notes``, ``storage/errors/<reason>``, and ``notes/<change>`` from
the incremental verdict (``new``, ``changed``, ``unchanged``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import bson
from itemadapter import ItemAdapter
from pymongo import InsertOne, UpdateOne, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    CollectionInvalid,
    ConnectionFailure,
    InvalidDocument,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from pipelines.incremental import (
    COUNT_FIELDS,
    as_adapter,
    content_hash,
    error_reason,
    snake_case,
)
from pipelines.mongo import (
    Clock,
    MongoHandle,
    MongoSettings,
    crawl_run_id,
    get_mongo,
    utcnow,
)
from pipelines.spool import Spool

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
UNIT_VERSION = 1
NOTES = "notes"
NOTE_STATS = "note_stats"
TRANSIENT_ERRORS = (AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError, ConnectionFailure)
# writeErrors carry a code but usually no codeName.
WRITE_ERROR_NAMES = {
    2: "BadValue",
    9: "FailedToParse",
    14: "TypeMismatch",
    52: "DollarPrefixedFieldName",
    121: "DocumentValidationFailure",
    10334: "BSONObjectTooLarge",
    11000: "DuplicateKey",
    17419: "BSONObjectTooLarge",
}
# A document must stay well under BSON's 16 MiB (the update pipeline wraps it).
MAX_UNIT_BSON_BYTES = 15 * 1024 * 1024
_INT64 = 1 << 63
_KEY_ESCAPES = str.maketrans({"$": "＄", ".": "．", "\x00": "\ufffd"})
TRUNCATION_MARK = "…[truncated]"


class StatsSink(Protocol):
    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None: ...


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError")


# --- Pure preparation ---------------------------------------------------------------------


def repair_text(text: str) -> str:
    """Valid UTF-8-encodable text: surrogate pairs joined, lone surrogates → U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


@functools.lru_cache(maxsize=4096)  # the same few dozen field names, note after note
def escape_key(key: Any) -> str:
    """Field names safe for MongoDB: ``$``/``.``/NUL become ＄/．/U+FFFD."""
    return repair_text(str(key)).translate(_KEY_ESCAPES)


# Where a value sits, built only as far as needed: (parent, key) links, joined with
# dots when a string has to be cut (see _dotted); a path string per value cost more
# than the rest of the sanitizing.
_Where = tuple[Any, str | int] | str | None


def _dotted(where: _Where) -> str:
    parts: list[str] = []
    while isinstance(where, tuple):
        where, key = where
        parts.append(str(key))
    if where:
        parts.append(where)
    return ".".join(reversed(parts)) or "<value>"


def sanitize(value: Any, max_chars: int, path: str = "", truncated: list[str] | None = None) -> Any:
    """A BSON-safe copy of scraped data.

    Keys are escaped (:func:`escape_key`), strings repaired (:func:`repair_text`) and
    cut at ``max_chars`` characters (``…[truncated]`` appended, the dotted path
    recorded in ``truncated``), integers beyond int64 kept as decimal strings, sets
    sorted into lists, dataclasses and other items turned into dicts, unknown types
    stringified.
    """
    return _clean(value, max_chars, path or None, [] if truncated is None else truncated)


_AS_IS = frozenset({type(None), bool, float, datetime})


def _kept(value: Any, max_chars: int) -> bool:
    """Whether a scalar can be stored as it is. :func:`_clean` asks first, and its loops
    ask before recursing: most values of a note are such scalars, and the check costs a
    fraction of a recursive call."""
    kind = type(value)
    return (
        kind in _AS_IS
        or (kind is int and -_INT64 <= value < _INT64)
        or (
            kind is str
            and len(value) <= max_chars
            and (value.isascii() or repair_text(value) is value)
        )
    )


def _clean(value: Any, max_chars: int, where: _Where, truncated: list[str]) -> Any:
    if _kept(value, max_chars):
        return value
    kind = type(value)
    if kind is str:  # to repair or to cut
        value = repair_text(value)
        if len(value) > max_chars:
            truncated.append(_dotted(where))
            value = value[:max_chars] + TRUNCATION_MARK
        return value
    if kind is int:  # beyond int64
        return str(value)
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        out = {}
        for k, v in value.items():
            key = escape_key(k)
            out[key] = v if _kept(v, max_chars) else _clean(v, max_chars, (where, key), truncated)
        return out
    if kind is list or isinstance(value, list | tuple):
        return [
            v if _kept(v, max_chars) else _clean(v, max_chars, (where, i), truncated)
            for i, v in enumerate(value)
        ]
    if isinstance(value, str):  # str subclasses
        return _clean(str(value), max_chars, where, truncated)
    if isinstance(value, bool | float | datetime):
        return value
    if isinstance(value, int):
        return _clean(int(value), max_chars, where, truncated)
    if isinstance(value, set | frozenset):
        return _clean(sorted(value, key=str), max_chars, where, truncated)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Direct field access: ItemAdapter.asdict() costs ~3× the whole sanitizing.
        data = {name: getattr(value, name) for name in _field_names(kind)}
        return _clean(data, max_chars, where, truncated)
    if ItemAdapter.is_item(value):
        return _clean(ItemAdapter(value).asdict(), max_chars, where, truncated)
    return _clean(str(value), max_chars, where, truncated)


@functools.lru_cache(maxsize=256)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def enrichment_rank(enrichment: Any) -> int:
    """How good an enrichment is: done+gemini 4 > done+other 3 > deferred/failed/skipped 2
    > pending (or anything else) 1 > none 0. Twin of :func:`enrichment_filters`."""
    if not isinstance(enrichment, Mapping):
        return 0
    status = enrichment.get("status")
    if status == "done":
        return 4 if enrichment.get("backend") == "gemini" else 3
    if status in ("deferred", "failed", "skipped"):
        return 2
    return 1


def enrichment_filters(max_rank: int) -> list[dict[str, Any]]:
    """Queries that together match the notes whose stored enrichment ranks at most
    ``max_rank``. Single-field conditions only: secantus cannot use the ``_id`` index
    for a filter with ``$or``/``$nor``/``$expr`` and scans the collection (measured
    ~5× slower on 300 notes, worse as it grows), so "rank ≤ 3" is two queries."""
    not_done = {"enrichment.status": {"$ne": "done"}}
    if max_rank >= 4:
        return [{}]
    if max_rank == 3:
        return [not_done, {"enrichment.status": "done", "enrichment.backend": {"$ne": "gemini"}}]
    if max_rank == 2:
        return [not_done]
    if max_rank == 1:
        return [{"enrichment.status": {"$nin": ["done", "deferred", "failed", "skipped"]}}]
    if max_rank == 0:
        return [{"enrichment": {"$not": {"$type": "object"}}}]
    return []


class RejectedNote(ValueError):
    """A note that can never be stored (e.g. too large); ``reason`` is a stats key part."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _as_utc(value: datetime) -> datetime:
    """Aware UTC, cut to milliseconds: BSON keeps milliseconds, and values read back
    must compare equal to the ones written (spool replay deduplication)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def prepare_unit(
    item: Any,
    *,
    now: datetime,
    run_id: str,
    max_chars: int,
    run_started_at: datetime | None = None,
) -> dict[str, Any]:
    """The storage unit (and spool record) for one item. Raises :class:`RejectedNote`.

    The crawl time is the item's ``fetched_at`` (else ``now``). An item fetched before
    this run started (a stored note passing through again, e.g. in the ``enrich``
    spider) is not a new observation: it gets no ``note_stats`` row and does not move
    ``last_crawled_at``.
    """
    adapter = as_adapter(item)
    data = dict(adapter)  # shallow: sanitize() converts nested dataclasses
    crawled_at = _as_utc(data.get("fetched_at") or now)
    observed = run_started_at is None or crawled_at >= _as_utc(run_started_at)
    note_id = repair_text(str(data.pop("note_id")))
    change = data.pop("change", None)
    # The incremental check's hash when it ran (the same function of the same content).
    digest = data.pop("content_hash", None) or content_hash(adapter)
    truncated: list[str] = []
    enrichment = sanitize(data.pop("enrichment", None), max_chars, "enrichment", truncated)
    fields = sanitize(data, max_chars, "", truncated)
    if isinstance(enrichment, dict):
        enrichment["content_hash"] = digest  # what the result describes (stale if ≠ note's)
    interact = fields.get("interact") or {}
    stats_row = {
        "note_id": note_id,
        "crawled_at": crawled_at,
        "crawl_run_id": run_id,
        **{k: interact.get(k) for k in COUNT_FIELDS},
    }
    unit = {
        "type": "note",
        "v": UNIT_VERSION,
        "note_id": note_id,
        "crawled_at": crawled_at,
        "run_id": run_id,
        "change": change,
        "content_hash": digest,
        "fields": fields,
        "enrichment": enrichment,
        "truncated": truncated,
        "stats": stats_row if observed else None,
    }
    try:
        size = len(bson.encode({"fields": fields, "enrichment": enrichment}))
    except (InvalidDocument, OverflowError, TypeError) as exc:
        raise RejectedNote(
            "invalid_document", f"note {note_id}: not BSON-encodable: {exc}"
        ) from exc
    if size > MAX_UNIT_BSON_BYTES:
        raise RejectedNote(
            "document_too_large", f"note {note_id}: {size} bytes of BSON exceeds the 15 MiB cap"
        )
    return unit


NoteWrite = tuple[dict[str, Any], dict[str, Any], bool]  # (filter, update, upsert)
NoteOp = InsertOne | UpdateOne


def _latest_fields(unit: Mapping[str, Any]) -> dict[str, Any]:
    """The fields a unit sets on its note: the scraped ones plus the crawl bookkeeping."""
    return {
        **unit["fields"],
        "last_crawled_at": unit["crawled_at"],
        "crawl_run_id": unit["run_id"],
        "content_hash": unit["content_hash"],
        "last_change": unit["change"],
        "truncated_fields": unit["truncated"],
        "schema_version": SCHEMA_VERSION,
    }


def insertable(unit: Mapping[str, Any], *, replay: bool) -> bool:
    """Whether a unit is written with one insert: its note was not stored when the
    incremental check looked (a spooled unit may be stale: it is always merged)."""
    return unit.get("change") == "new" and not replay


def new_note_document(unit: Mapping[str, Any]) -> dict[str, Any]:
    """The note document :func:`note_writes` would create when nothing is stored."""
    return {
        "_id": unit["note_id"],
        **_latest_fields(unit),
        "first_seen_at": unit["crawled_at"],
        "enrichment": unit["enrichment"],
    }


def note_writes(unit: Mapping[str, Any], *, replay: bool = False) -> list[NoteWrite]:
    """The ``notes`` writes for one unit (see module doc): plain updates, no read.

    1. Upsert of the latest fields, filtered on ``last_crawled_at <= crawled_at``: when
       newer data is stored the filter misses (a missing or null ``last_crawled_at``
       matches ``$not: {$gt}``), the upsert's insert collides on ``_id``
       and the unit is *superseded* (its fields are not written). ``first_seen_at`` is
       ``$min``'d, ``enrichment`` only ``$setOnInsert``.
    2. The enrichment, on existing notes whose stored one is not better (for a
       replayed, older unit: strictly worse); one or two updates with disjoint filters.
       A fresh done+gemini result outranks everything: it goes into the upsert itself.
    3. ``enrichment.stale: true`` on a kept ``done`` enrichment whose
       ``enrichment.content_hash`` is not this unit's (the note changed since).

    Independent of their order, so an unordered bulk may apply them either way.
    """
    t = unit["crawled_at"]
    note_id = unit["note_id"]
    latest = _latest_fields(unit)
    rank = enrichment_rank(unit["enrichment"])
    best = rank == 4 and not replay  # nothing outranks it: no conditional write needed
    update: dict[str, Any] = {"$set": latest, "$min": {"first_seen_at": t}}
    if best:
        latest["enrichment"] = unit["enrichment"]
    else:
        update["$setOnInsert"] = {"enrichment": unit["enrichment"]}
    writes: list[NoteWrite] = [
        ({"_id": note_id, "last_crawled_at": {"$not": {"$gt": t}}}, update, True)
    ]
    if rank and not best:
        for query in enrichment_filters(rank - 1 if replay else rank):
            writes.append(
                ({"_id": note_id, **query}, {"$set": {"enrichment": unit["enrichment"]}}, False)
            )
    if not best and not replay:
        # A kept done result made for other content is flagged for the enrich backlog.
        # Order-free: a write of the new enrichment (above) replaces the whole object,
        # and once it is stored its content_hash equals this one, so this no longer matches.
        stale_filter = {
            "_id": note_id,
            "enrichment.status": "done",
            "enrichment.content_hash": {"$exists": True, "$ne": unit["content_hash"]},
        }
        writes.append((stale_filter, {"$set": {"enrichment.stale": True}}, False))
    return writes


def unique_waves(units: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split units so no wave holds the same note twice (unordered writes must not race)."""
    waves: list[tuple[set[str], list[dict[str, Any]]]] = []
    for unit in units:
        for ids, wave in waves:
            if unit["note_id"] not in ids:
                ids.add(unit["note_id"])
                wave.append(unit)
                break
        else:
            waves.append(({unit["note_id"]}, [unit]))
    return [wave for _, wave in waves]


# --- Schema -------------------------------------------------------------------------------

NOTE_INDEXES: list[tuple[str, list[tuple[str, int]]]] = [
    ("user_id", [("user.user_id", 1)]),
    ("tags", [("tags", 1)]),
    ("published_at", [("published_at", -1)]),
    ("enrichment_backlog", [("enrichment.status", 1), ("enrichment.next_attempt_at", 1)]),
    ("last_crawled_at", [("last_crawled_at", -1)]),
]
NOTE_STATS_INDEX = ("note_id_crawled_at", [("note_id", 1), ("crawled_at", 1)])


async def ensure_schema(db: AsyncDatabase) -> str:
    """Create ``note_stats`` and every index (idempotent). Returns the kind of
    ``note_stats``: ``timeseries`` where the server supports it, else ``plain``."""
    existing = await db.list_collection_names(filter={"name": NOTE_STATS})
    if not existing:
        try:
            await db.create_collection(
                NOTE_STATS,
                timeseries={
                    "timeField": "crawled_at",
                    "metaField": "note_id",
                    "granularity": "hours",
                },
            )
        except CollectionInvalid:
            pass  # created concurrently
        except OperationFailure as exc:
            logger.info("time-series collections unsupported (%s): plain note_stats", exc)
            with contextlib.suppress(CollectionInvalid):
                await db.create_collection(NOTE_STATS)
    kind = "plain"
    async for info in await db.list_collections(filter={"name": NOTE_STATS}):
        is_ts = info.get("type") == "timeseries" or (info.get("options") or {}).get("timeseries")
        kind = "timeseries" if is_ts else "plain"
    for name, keys in NOTE_INDEXES:
        await db[NOTES].create_index(keys, name=name)
    await db[NOTE_STATS].create_index(NOTE_STATS_INDEX[1], name=NOTE_STATS_INDEX[0])
    return kind


def _is_id_collision(error: Mapping[str, Any]) -> bool:
    """An upsert whose insert hit an existing ``_id``: two upserts raced (retrying as an
    update is the documented fix) or the freshness filter missed. A duplicate on
    another unique index is a real error."""
    return error.get("code") == 11000 and set(error.get("keyPattern") or {"_id": 1}) == {"_id"}


# --- Writer (Scrapy-free) -----------------------------------------------------------------


class CounterStats(dict):
    """A minimal stats sink for scripts (same ``inc_value`` as Scrapy's collector)."""

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self[key] = self.get(key, start) + count


class NoteWriter:
    """Writes units with retries, spools them when the database stays down, replays."""

    def __init__(
        self,
        db: AsyncDatabase,
        settings: MongoSettings,
        stats: StatsSink,
        *,
        spool: Spool | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        take_over: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.db = db
        # A batch counts as stored once it is journaled: without j the embedded server
        # loses acknowledged writes when its process is killed (measured: 10 of 20
        # notes). The journal is sequential, so one journaled command at the end of a
        # batch makes the batch's earlier commands durable too; j on every command
        # would double secantus' cost per upserted document.
        durable = WriteConcern(j=True)
        self._notes = db[NOTES]
        self._notes_journaled = db[NOTES].with_options(write_concern=durable)
        self._note_stats = db[NOTE_STATS].with_options(write_concern=durable)
        self._take_over = take_over
        self.settings = settings
        self.stats = stats
        self.spool = spool or Spool(settings.spool_path)
        self._monotonic = monotonic
        self._sleep = sleep
        self._schema_ready = False
        self._down = False
        self._last_probe = 0.0
        self.note_stats_kind: str | None = None

    @property
    def down(self) -> bool:
        return self._down

    async def start(self) -> None:
        """Schema, then any spooled units; a database that is down now is not fatal."""
        try:
            await self._ensure_schema()
        except PyMongoError as exc:
            if not is_transient(exc):
                raise
            self._mark_down(exc)
            return
        await self.replay()

    async def _ensure_schema(self) -> None:
        if not self._schema_ready:
            self.note_stats_kind = await ensure_schema(self.db)
            self._schema_ready = True

    def _mark_down(self, exc: BaseException | None) -> None:
        if not self._down:
            logger.error(
                "MongoDB unavailable (%s): notes go to the spool %s until it is back",
                error_reason(exc) if exc else "down",
                self.spool.path,
            )
        self._down = True
        self._last_probe = self._monotonic()

    async def _probe(self) -> bool:
        self._last_probe = self._monotonic()
        if self._take_over is not None and await self._take_over():
            self.stats.inc_value("storage/embedded_takeover")
        try:
            await self.db.client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    def _to_spool(self, units: list[dict[str, Any]]) -> None:
        count = self.spool.append(units)
        self.stats.inc_value("storage/spooled", count)

    async def write(self, units: list[dict[str, Any]]) -> None:
        """Store units, or spool them; never raises for an unavailable database."""
        if not units:
            return
        if self._down:
            if self._monotonic() - self._last_probe < self.settings.probe_interval_s or not (
                await self._probe()
            ):
                self._to_spool(units)
                return
            logger.info("MongoDB is back: replaying the spool")
            self._down = False
            await self.replay()
            if self._down:
                self._to_spool(units)
                return
        left = await self._store(units, replay=False)
        if left:
            self._to_spool(left)

    async def _store(self, units: list[dict[str, Any]], *, replay: bool) -> list[dict[str, Any]]:
        """:meth:`_write_with_retry`, with a refusal of the whole batch (not a write
        error of one note: e.g. authorization) also leaving the units to the spool."""
        try:
            return await self._write_with_retry(units, replay=replay)
        except PyMongoError as exc:
            self.stats.inc_value(f"storage/errors/{error_reason(exc)}")
            logger.error(
                "MongoDB refused a batch of %d notes (%s: %s): kept in the spool",
                len(units),
                type(exc).__name__,
                str(exc)[:300],
            )
            return units

    async def replay(self) -> int:
        """Store everything in the spool; units that fail again are spooled again."""
        if not self.spool.pending():
            return 0
        claimed = self.spool.claim()
        units: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        for record in claimed.records:
            known = record.get("type") == "note" and record.get("v") == UNIT_VERSION
            (units if known else others).append(record)
        if others:  # written by another version: kept for it, never dropped
            logger.warning("%d spool records of an unknown kind kept in the spool", len(others))
            self.spool.append(others)
        stored = 0
        for start in range(0, len(units), self.settings.batch_size):
            chunk = units[start : start + self.settings.batch_size]
            if self._down:
                self._to_spool(chunk)
                continue
            left = await self._store(chunk, replay=True)
            if left:
                self._to_spool(left)
            stored += len(chunk) - len(left)
        claimed.done()
        self.stats.inc_value("storage/replayed", stored)
        if units:
            logger.info("replayed %d of %d spooled notes", stored, len(units))
        return stored

    async def _write_with_retry(
        self, units: list[dict[str, Any]], *, replay: bool
    ) -> list[dict[str, Any]]:
        """Units left unstored after the retries (empty on success); marks the outage."""
        s = self.settings
        for attempt in range(s.retry_times + 1):
            try:
                await self._ensure_schema()
                await self._write_once(units, replay=replay, dedupe_stats=replay or attempt > 0)
                return []
            except PyMongoError as exc:
                if not is_transient(exc):
                    raise
                if attempt == s.retry_times:
                    self._mark_down(exc)
                    return units
                self.stats.inc_value("storage/retries")
                if self._take_over is not None and await self._take_over():
                    self.stats.inc_value("storage/embedded_takeover")
                    continue
                delay = min(s.retry_backoff_s * 2**attempt, s.retry_backoff_max_s)
                logger.warning(
                    "MongoDB write failed (%s), retry %d/%d in %.1f s",
                    error_reason(exc),
                    attempt + 1,
                    s.retry_times,
                    delay,
                )
                await self._sleep(delay)
        return units

    def _record_error(self, unit: Mapping[str, Any], error: Mapping[str, Any], what: str) -> None:
        code_name = str(
            error.get("codeName")
            or WRITE_ERROR_NAMES.get(error.get("code"))
            or f"code_{error.get('code')}"
        )
        self.stats.inc_value(f"storage/errors/{snake_case(code_name)}")
        logger.error(
            "note %s: %s refused by MongoDB (%s): %s",
            unit["note_id"],
            what,
            code_name,
            str(error.get("errmsg", ""))[:300],
        )

    async def _bulk(
        self, ops: list[NoteOp], owners: list[dict[str, Any]], *, journaled: bool
    ) -> list[tuple[NoteOp, dict[str, Any]]]:
        """One unordered bulk on ``notes`` (``owners[i]`` is the unit of ``ops[i]``).
        Write errors other than an ``_id`` collision are recorded; the colliding
        operations are returned with their units (the rest is applied)."""
        notes = self._notes_journaled if journaled else self._notes
        try:
            result = await notes.bulk_write(ops, ordered=False)
            details, errors = result.bulk_api_result, []
        except BulkWriteError as exc:
            details = exc.details
            errors = details.get("writeErrors", [])
        created = details.get("nUpserted", 0) + details.get("nInserted", 0)
        self.stats.inc_value("storage/upserted", created)
        self.stats.inc_value("storage/modified", details.get("nModified", 0))
        collisions = []
        for err in errors:
            op, unit = ops[err["index"]], owners[err["index"]]
            if _is_id_collision(err):
                collisions.append((op, unit))
            else:
                self._record_error(unit, err, "note")
        return collisions

    async def _write_once(
        self, units: list[dict[str, Any]], *, replay: bool, dedupe_stats: bool
    ) -> None:
        # The note_stats insert (journaled) ends the batch and makes it durable; when it
        # may write nothing (no rows, or all already present), the notes bulk is journaled.
        journaled = dedupe_stats or not any(u.get("stats") for u in units)
        for wave in unique_waves(units):
            ops: list[NoteOp] = []
            owners: list[dict[str, Any]] = []
            for unit in wave:
                if insertable(unit, replay=replay):
                    ops.append(InsertOne(new_note_document(unit)))
                    owners.append(unit)
                    continue
                for filter_, update, upsert in note_writes(unit, replay=replay):
                    ops.append(UpdateOne(filter_, update, upsert=upsert))
                    owners.append(unit)
            collisions = await self._bulk(ops, owners, journaled=journaled)
            if not collisions:
                continue
            # An insert collided: the note was stored meanwhile, merge it with updates.
            # An upsert collided: either two upserts raced (the retry is an update) or
            # newer data is stored; an update that collides again is superseded.
            ops, owners = [], []
            for op, unit in collisions:
                if isinstance(op, InsertOne):
                    for filter_, update, upsert in note_writes(unit, replay=replay):
                        ops.append(UpdateOne(filter_, update, upsert=upsert))
                        owners.append(unit)
                else:
                    ops.append(op)
                    owners.append(unit)
            superseded = [unit for _, unit in await self._bulk(ops, owners, journaled=journaled)]
            for unit in superseded:
                self.stats.inc_value("storage/superseded")
                logger.info("note %s: newer data already stored, kept", unit["note_id"])
            if superseded:  # still an earlier sighting of the note
                ops = [
                    UpdateOne(
                        {"_id": u["note_id"], "first_seen_at": {"$gt": u["crawled_at"]}},
                        {"$set": {"first_seen_at": u["crawled_at"]}},
                    )
                    for u in superseded
                ]
                await self._bulk(ops, superseded, journaled=journaled)
        await self._insert_stats(units, dedupe=dedupe_stats)

    async def _insert_stats(self, units: list[dict[str, Any]], *, dedupe: bool) -> None:
        """One ``note_stats`` row per unit. After a failure or on replay some rows may
        already be stored: time-series collections have no unique key to lean on, so
        the (note_id, crawled_at) pairs already present are skipped."""
        rows = [dict(u["stats"]) for u in units if u.get("stats")]
        if dedupe and rows:
            present = set()
            cursor = self.db[NOTE_STATS].find(
                {
                    "note_id": {"$in": sorted({r["note_id"] for r in rows})},
                    "crawled_at": {"$in": sorted({r["crawled_at"] for r in rows})},
                },
                {"note_id": 1, "crawled_at": 1, "_id": 0},
            )
            async for doc in cursor:
                present.add((doc["note_id"], _as_utc(doc["crawled_at"])))
            rows = [r for r in rows if (r["note_id"], r["crawled_at"]) not in present]
        if not rows:
            return
        try:
            await self._note_stats.insert_many(rows, ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                self._record_error(rows[err["index"]], err, "note_stats row")


# --- Scrapy pipeline ----------------------------------------------------------------------


class MongoStoragePipeline:
    """Buffers units and hands full batches to one background writer task.

    ``process_item`` returns once its note is buffered; it waits only when two batches
    are already queued behind the one being written (backpressure), so preparing notes
    overlaps with the database's work. Batches are written in order. ``flush()`` waits
    until everything buffered is stored (or spooled); ``close_spider`` flushes.
    """

    MAX_QUEUED_BATCHES = 2

    def __init__(
        self,
        crawler: Any,
        settings: MongoSettings,
        *,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.crawler = crawler
        self.settings = settings
        self.stats: StatsSink = crawler.stats
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._handle: MongoHandle | None = None
        self.writer: NoteWriter | None = None
        self._buffer: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue(
            maxsize=self.MAX_QUEUED_BATCHES
        )
        self._tasks: list[asyncio.Task] = []
        self._opened_at: datetime | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> MongoStoragePipeline:
        return cls(crawler, MongoSettings.from_settings(crawler.settings))

    async def open_spider(self) -> None:
        self._opened_at = self._clock()
        self._handle = await get_mongo(self.crawler)
        self.writer = NoteWriter(
            self._handle.db,
            self.settings,
            self.stats,
            monotonic=self._monotonic,
            sleep=self._sleep,
            take_over=self._handle.take_over,
        )
        await self.writer.start()
        self._tasks = [
            asyncio.create_task(self._write_batches()),
            asyncio.create_task(self._flush_periodically()),
        ]

    async def close_spider(self) -> None:
        if self._tasks:
            await self.flush()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        change = adapter.get("change") or "unknown"
        self.stats.inc_value(f"notes/{change}")
        try:
            unit = prepare_unit(
                adapter,
                now=self._clock(),
                run_id=crawl_run_id(self.crawler),
                max_chars=self.settings.max_string_chars,
                run_started_at=self._opened_at,
            )
        except RejectedNote as exc:
            self.stats.inc_value(f"storage/errors/{exc.reason}")
            logger.error("not stored: %s", exc)
            return item
        if unit["truncated"]:
            self.stats.inc_value("storage/truncated_notes")
        if not self._buffer:
            self._oldest = self._monotonic()
        self._buffer.append(unit)
        if len(self._buffer) >= self.settings.batch_size:
            await self._hand_over(everything=False)
        return item

    async def _hand_over(self, *, everything: bool) -> None:
        """Queue full batches (and with ``everything``, the remainder too), in order."""
        size = self.settings.batch_size
        while len(self._buffer) >= size or (everything and self._buffer):
            units = self._buffer[:size]
            del self._buffer[: len(units)]
            self._oldest = self._monotonic()
            await self._queue.put(units)

    async def flush(self) -> None:
        """Store (or spool) everything buffered so far; returns when it is done."""
        if not self._tasks:
            raise RuntimeError("open_spider() not called")
        await self._hand_over(everything=True)
        await self._queue.join()

    async def _write_batches(self) -> None:
        assert self.writer is not None
        while True:
            units = await self._queue.get()
            try:
                await self.writer.write(units)
            except Exception:  # e.g. the spool's disk is full: nowhere left to keep them
                self.stats.inc_value("storage/errors/lost", len(units))
                logger.exception("%d notes could be neither stored nor spooled", len(units))
            finally:
                self._queue.task_done()

    async def _flush_periodically(self) -> None:
        interval = self.settings.flush_interval_s
        while True:
            await asyncio.sleep(max(0.01, interval / 4))
            if self._buffer and self._monotonic() - self._oldest >= interval:
                await self._hand_over(everything=True)


# --- CLI ----------------------------------------------------------------------------------


async def replay_main(settings: MongoSettings) -> CounterStats:
    handle = MongoHandle(settings)
    stats = CounterStats()
    await handle.start()
    try:
        writer = NoteWriter(handle.db, settings, stats)
        await writer.start()
        if writer.down:
            stats.inc_value("storage/replay_failed_db_down")
    finally:
        await handle.close()
    return stats


def _settings_for_cli(overrides: Iterable[tuple[str, str | None]]) -> MongoSettings:
    from scrapy.utils.project import get_project_settings

    settings = get_project_settings()
    for name, value in overrides:
        if value is not None:
            settings.set(name, value, priority="cmdline")
    return MongoSettings.from_settings(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.storage")
    sub = parser.add_subparsers(dest="command", required=True)
    p_replay = sub.add_parser("replay", help="store the spooled notes now")
    p_replay.add_argument("--uri", help="MONGO_URI (default: settings / env / embedded)")
    p_replay.add_argument("--database", help="MONGO_DATABASE")
    p_replay.add_argument("--data", help="MONGO_DATA_DIR of the embedded server")
    p_replay.add_argument("--spool", help="MONGO_SPOOL_PATH")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = _settings_for_cli(
        [
            ("MONGO_URI", args.uri),
            ("MONGO_DATABASE", args.database),
            ("MONGO_DATA_DIR", args.data),
            ("MONGO_SPOOL_PATH", args.spool),
        ]
    )
    stats = asyncio.run(replay_main(settings))
    for key in sorted(stats):
        print(f"{key}: {stats[key]}")
    return (
        1
        if stats.get("storage/replay_failed_db_down") or Spool(settings.spool_path).pending()
        else 0
    )


if __name__ == "__main__":
    raise SystemExit(main())
