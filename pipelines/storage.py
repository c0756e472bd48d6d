"""MongoStoragePipeline: batched upserts into ``notes``, one ``note_stats`` row per crawl.

Every note becomes a *unit* (a plain dict, also the spool record): the sanitized note
fields, its enrichment, bookkeeping (crawled_at, run id, content hash) and its
``note_stats`` row. Units are buffered and written with unordered ``bulk_write``s when
``MONGO_BATCH_SIZE`` units are waiting or the oldest has waited ``MONGO_FLUSH_INTERVAL``
seconds, and on close.

The ``notes`` update is an aggregation-pipeline upsert (one round trip, no read), so
the merge rules hold even for concurrent writers and spool replays:

- latest fields are written only if this unit is at least as recent as the stored
  ``last_crawled_at`` (a replayed old unit never overwrites newer data);
- ``first_seen_at`` is the earliest crawl time ever seen;
- ``enrichment`` is replaced only by one at least as good (rank: done+gemini 4 >
  done+other 3 > deferred/failed/skipped 2 > pending 1 > none 0; ties go to the
  newer). A kept result that described other content gets ``stale: true``.

Transient errors are retried with exponential backoff (``MONGO_RETRY_TIMES``); if the
database stays down the units go to the fsync'd spool, later batches go straight to
the spool until a probe (every ``MONGO_PROBE_INTERVAL`` s) finds the database back,
and the spool is replayed then, at the next start, or by
``python -m pipelines.storage replay``. Nothing is dropped: a unit Mongo refuses for
itself (a write error) is counted in ``storage/errors/<reason>`` and logged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import bson
from itemadapter import ItemAdapter
from pymongo import UpdateOne
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

from pipelines.incremental import COUNT_FIELDS, content_hash, error_reason, snake_case
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
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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


def escape_key(key: Any) -> str:
    """Field names safe for MongoDB: ``$``/``.``/NUL become ＄/．/U+FFFD."""
    return repair_text(str(key)).translate(_KEY_ESCAPES)


def sanitize(value: Any, max_chars: int, path: str = "", truncated: list[str] | None = None) -> Any:
    """A BSON-safe copy of scraped data.

    Keys are escaped (:func:`escape_key`), strings repaired (:func:`repair_text`) and
    cut at ``max_chars`` characters (``…[truncated]`` appended, the dotted path
    recorded in ``truncated``), integers beyond int64 kept as decimal strings, sets
    sorted into lists, unknown types stringified.
    """
    if truncated is None:
        truncated = []
    if isinstance(value, str):
        value = repair_text(value)
        if len(value) > max_chars:
            truncated.append(path or "<value>")
            value = value[:max_chars] + TRUNCATION_MARK
        return value
    if value is None or isinstance(value, bool | float | datetime):
        return value
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            key = escape_key(k)
            out[key] = sanitize(v, max_chars, f"{path}.{key}" if path else key, truncated)
        return out
    if isinstance(value, list | tuple):
        return [sanitize(v, max_chars, f"{path}.{i}", truncated) for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        return sanitize(sorted(value, key=str), max_chars, path, truncated)
    return sanitize(str(value), max_chars, path, truncated)


def enrichment_rank(enrichment: Any) -> int:
    """How good an enrichment is (see module doc). Twin of :data:`ENRICHMENT_RANK_EXPR`."""
    if not isinstance(enrichment, Mapping):
        return 0
    status = enrichment.get("status")
    if status == "done":
        return 4 if enrichment.get("backend") == "gemini" else 3
    if status in ("deferred", "failed", "skipped"):
        return 2
    return 1


ENRICHMENT_RANK_EXPR: dict[str, Any] = {
    "$switch": {
        "branches": [
            {"case": {"$ne": [{"$type": "$enrichment"}, "object"]}, "then": 0},
            {
                "case": {
                    "$and": [
                        {"$eq": ["$enrichment.status", "done"]},
                        {"$eq": ["$enrichment.backend", "gemini"]},
                    ]
                },
                "then": 4,
            },
            {"case": {"$eq": ["$enrichment.status", "done"]}, "then": 3},
            {"case": {"$in": ["$enrichment.status", ["deferred", "failed", "skipped"]]}, "then": 2},
        ],
        "default": 1,
    }
}


class RejectedNote(ValueError):
    """A note that can never be stored (e.g. too large); ``reason`` is a stats key part."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def prepare_unit(item: Any, *, crawled_at: datetime, run_id: str, max_chars: int) -> dict[str, Any]:
    """The storage unit (and spool record) for one item. Raises :class:`RejectedNote`."""
    data = ItemAdapter(item).asdict()
    note_id = repair_text(str(data.pop("note_id")))
    change = data.pop("change", None)
    truncated: list[str] = []
    enrichment = sanitize(data.pop("enrichment", None), max_chars, "enrichment", truncated)
    fields = sanitize(data, max_chars, "", truncated)
    interact = fields.get("interact") or {}
    crawled_at = _as_utc(crawled_at)
    unit = {
        "type": "note",
        "v": UNIT_VERSION,
        "note_id": note_id,
        "crawled_at": crawled_at,
        "run_id": run_id,
        "change": change,
        "content_hash": content_hash(item),
        "fields": fields,
        "enrichment": enrichment,
        "truncated": truncated,
        "stats": {
            "note_id": note_id,
            "crawled_at": crawled_at,
            "crawl_run_id": run_id,
            **{k: interact.get(k) for k in COUNT_FIELDS},
        },
    }
    try:
        size = len(bson.encode({"u": note_update(unit)}))
    except (InvalidDocument, OverflowError, TypeError) as exc:
        raise RejectedNote(
            "invalid_document", f"note {note_id}: not BSON-encodable: {exc}"
        ) from exc
    if size > MAX_UNIT_BSON_BYTES:
        raise RejectedNote(
            "document_too_large", f"note {note_id}: {size} bytes of BSON exceeds the 15 MiB cap"
        )
    return unit


def note_update(unit: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The aggregation-pipeline update of ``notes`` for one unit (see module doc)."""
    t = unit["crawled_at"]
    fresh = {"$lte": [{"$ifNull": ["$last_crawled_at", _EPOCH]}, t]}

    def latest(name: str, value: Any) -> dict[str, Any]:
        return {"$cond": [fresh, {"$literal": value}, f"${name}"]}

    set_: dict[str, Any] = {name: latest(name, v) for name, v in unit["fields"].items()}
    set_.update(
        last_crawled_at=latest("last_crawled_at", t),
        crawl_run_id=latest("crawl_run_id", unit["run_id"]),
        content_hash=latest("content_hash", unit["content_hash"]),
        last_change=latest("last_change", unit["change"]),
        truncated_fields=latest("truncated_fields", unit["truncated"]),
        schema_version=latest("schema_version", SCHEMA_VERSION),
        first_seen_at={"$min": ["$first_seen_at", t]},
    )
    new_rank = enrichment_rank(unit["enrichment"])
    take_new = {
        "$or": [
            {"$gt": [new_rank, ENRICHMENT_RANK_EXPR]},
            {"$and": [{"$eq": [new_rank, ENRICHMENT_RANK_EXPR]}, fresh]},
        ]
    }
    describes_other_content = {
        "$and": [
            {"$eq": [{"$type": "$enrichment"}, "object"]},
            {"$ne": ["$content_hash", unit["content_hash"]]},
            fresh,
        ]
    }
    keep = {
        "$cond": [
            describes_other_content,
            {"$mergeObjects": ["$enrichment", {"stale": True}]},
            "$enrichment",
        ]
    }
    set_["enrichment"] = {"$cond": [take_new, {"$literal": unit["enrichment"]}, keep]}
    return [{"$set": set_}]


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


def _is_upsert_race(error: Mapping[str, Any]) -> bool:
    """Two concurrent upserts of one ``_id``: the loser's retry is an update (the
    documented fix). A duplicate on another unique index is a real error."""
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
    ) -> None:
        self.db = db
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
        left = await self._write_with_retry(units, dedupe_stats=False)
        if left:
            self._to_spool(left)

    async def replay(self) -> int:
        """Store everything in the spool; units that fail again are spooled again."""
        if not self.spool.pending():
            return 0
        claimed = self.spool.claim()
        units = [r for r in claimed.records if r.get("type") == "note"]
        stored = 0
        for start in range(0, len(units), self.settings.batch_size):
            chunk = units[start : start + self.settings.batch_size]
            if self._down:
                self._to_spool(chunk)
                continue
            left = await self._write_with_retry(chunk, dedupe_stats=True)
            if left:
                self._to_spool(left)
            stored += len(chunk) - len(left)
        claimed.done()
        self.stats.inc_value("storage/replayed", stored)
        if units:
            logger.info("replayed %d of %d spooled notes", stored, len(units))
        return stored

    async def _write_with_retry(
        self, units: list[dict[str, Any]], *, dedupe_stats: bool
    ) -> list[dict[str, Any]]:
        """Units left unstored after the retries (empty on success); marks the outage."""
        s = self.settings
        for attempt in range(s.retry_times + 1):
            try:
                await self._ensure_schema()
                await self._write_once(units, dedupe_stats=dedupe_stats or attempt > 0)
                return []
            except PyMongoError as exc:
                if not is_transient(exc):
                    raise
                if attempt == s.retry_times:
                    self._mark_down(exc)
                    return units
                self.stats.inc_value("storage/retries")
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

    async def _write_once(self, units: list[dict[str, Any]], *, dedupe_stats: bool) -> None:
        notes = self.db[NOTES]
        for wave in unique_waves(units):
            ops = [UpdateOne({"_id": u["note_id"]}, note_update(u), upsert=True) for u in wave]
            try:
                result = await notes.bulk_write(ops, ordered=False)
                details = result.bulk_api_result
                errors: list[Mapping[str, Any]] = []
            except BulkWriteError as exc:
                details = exc.details
                errors = details.get("writeErrors", [])
            self.stats.inc_value("storage/upserted", details.get("nUpserted", 0))
            self.stats.inc_value("storage/modified", details.get("nModified", 0))
            retry = [e for e in errors if _is_upsert_race(e)]
            for err in errors:
                if not _is_upsert_race(err):
                    self._record_error(wave[err["index"]], err, "note")
            if retry:
                again = [ops[e["index"]] for e in retry]
                try:
                    result = await notes.bulk_write(again, ordered=False)
                    self.stats.inc_value("storage/upserted", result.upserted_count)
                    self.stats.inc_value("storage/modified", result.modified_count)
                except BulkWriteError as exc:
                    for err in exc.details.get("writeErrors", []):
                        self._record_error(wave[retry[err["index"]]["index"]], err, "note")
        await self._insert_stats(units, dedupe=dedupe_stats)

    async def _insert_stats(self, units: list[dict[str, Any]], *, dedupe: bool) -> None:
        """One ``note_stats`` row per unit. After a failure or on replay some rows may
        already be stored: time-series collections have no unique key to lean on, so
        the (note_id, crawled_at) pairs already present are skipped."""
        rows = [dict(u["stats"]) for u in units]
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
            await self.db[NOTE_STATS].insert_many(rows, ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                self._record_error(rows[err["index"]], err, "note_stats row")


# --- Scrapy pipeline ----------------------------------------------------------------------


class MongoStoragePipeline:
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
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> MongoStoragePipeline:
        return cls(crawler, MongoSettings.from_settings(crawler.settings))

    async def open_spider(self) -> None:
        self._handle = await get_mongo(self.crawler)
        self.writer = NoteWriter(
            self._handle.db,
            self.settings,
            self.stats,
            monotonic=self._monotonic,
            sleep=self._sleep,
        )
        await self.writer.start()
        self._flusher = asyncio.create_task(self._flush_periodically())

    async def close_spider(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self.flush()

    async def process_item(self, item: Any) -> Any:
        change = ItemAdapter(item).get("change") or "unknown"
        self.stats.inc_value(f"notes/{change}")
        try:
            unit = prepare_unit(
                item,
                crawled_at=self._clock(),
                run_id=crawl_run_id(self.crawler),
                max_chars=self.settings.max_string_chars,
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
            await self.flush()
        return item

    async def flush(self) -> None:
        """Write everything buffered (in order: one flush at a time)."""
        async with self._flush_lock:
            while self._buffer:
                units = self._buffer[: self.settings.batch_size]
                del self._buffer[: len(units)]
                if self._buffer:
                    self._oldest = self._monotonic()
                assert self.writer is not None, "open_spider() not called"
                await self.writer.write(units)

    async def _flush_periodically(self) -> None:
        interval = self.settings.flush_interval_s
        while True:
            await asyncio.sleep(max(0.01, interval / 4))
            if self._buffer and self._monotonic() - self._oldest >= interval:
                try:
                    await self.flush()
                except Exception:
                    logger.exception("background flush failed; retried at the next flush")


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
