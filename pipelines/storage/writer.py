"""The writer (Scrapy-free): batched unordered ``bulk_write``s, retries, spool, probe.

Units are written per kind (:mod:`pipelines.storage.kinds`) in *waves* that never hold
the same document twice: the kind's insert for a fresh document, its order-free merge
updates otherwise; an insert or upsert colliding on ``_id`` gets the updates (or is
*superseded*: newer data is stored). Then the observation rows (``note_stats``), one
journaled ``insert_many``, which makes the batch durable.

Transient errors are retried with exponential backoff (``MONGO_RETRY_TIMES``); if the
database stays down the units go to the fsync'd spool, later batches go straight to
the spool until a probe (every ``MONGO_PROBE_INTERVAL`` s) finds the database back,
and the spool is replayed then, at the next start, or by
``python -m pipelines.storage replay``. Nothing is dropped: a unit Mongo refuses for
itself (a write error) is counted in ``storage/errors/<reason>`` and logged; a spooled
record that can never be stored (wrong shape: :mod:`pipelines.storage.records`) goes to
the spool's ``.bad`` once (``storage/spool_bad/<reason>``) and the others replay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from pymongo import InsertOne, UpdateOne, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from crawler.core.timeutil import as_utc
from pipelines.mongo import MongoSettings, error_reason, is_transient, snake_case
from pipelines.storage.kinds import UnitKind, kind_of
from pipelines.storage.merge import unique_waves
from pipelines.storage.records import unit_problem
from pipelines.storage.schema import ensure_schema
from pipelines.storage.spool import Spool

logger = logging.getLogger(__name__)

Unit = dict[str, Any]
Op = InsertOne | UpdateOne
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


class StatsSink(Protocol):
    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None: ...


class CounterStats(dict):
    """A minimal stats sink for scripts (same ``inc_value`` as Scrapy's collector)."""

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self[key] = self.get(key, start) + count


def _is_id_collision(error: Mapping[str, Any]) -> bool:
    """An upsert whose insert hit an existing ``_id``: two upserts raced (retrying as an
    update is the documented fix) or the freshness filter missed. A duplicate on
    another unique index is a real error."""
    return error.get("code") == 11000 and set(error.get("keyPattern") or {"_id": 1}) == {"_id"}


def _updates(kind: UnitKind, unit: Unit) -> list[UpdateOne]:
    return [UpdateOne(f, u, upsert=upsert) for f, u, upsert in kind.writes(unit)]


class UnitWriter:
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
        self._durable = WriteConcern(j=True)
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

    def _to_spool(self, units: list[Unit]) -> None:
        count = self.spool.append(units)
        self.stats.inc_value("storage/spooled", count)

    async def write(self, units: list[Unit]) -> None:
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
        left = await self._store(units)
        if left:
            self._to_spool(left)

    async def _store(self, units: list[Unit]) -> list[Unit]:
        """:meth:`_write_with_retry`, with a refusal of the whole batch (not a write
        error of one note: e.g. authorization) also leaving the units to the spool."""
        try:
            return await self._write_with_retry(units)
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
        """Store everything in the spool; units that fail again are spooled again.

        This is where a unit becomes a replay (``replayed: true``): the merge rules
        then never insert it whole and let it replace an enrichment only by a better one.
        """
        if not self.spool.pending():
            return 0
        claimed = self.spool.claim(check=unit_problem)
        self._count_bad(claimed.bad_reasons)
        units: list[Unit] = []
        others: list[Unit] = []
        for record in claimed.records:
            if kind_of(record) is None:
                others.append(record)
            else:
                units.append({**record, "replayed": True})
        if others:  # written by another version: kept for it, never dropped
            logger.warning("%d spool records of an unknown kind kept in the spool", len(others))
            self.spool.append(others)
        stored = 0
        for start in range(0, len(units), self.settings.batch_size):
            chunk = units[start : start + self.settings.batch_size]
            if self._down:
                self._to_spool(chunk)
                continue
            left, aside = await self._replay_chunk(chunk)
            if left:
                self._to_spool(left)
            stored += len(chunk) - len(left) - aside
        claimed.done()
        self.stats.inc_value("storage/replayed", stored)
        if units:
            logger.info("replayed %d of %d spooled notes", stored, len(units))
        return stored

    async def _replay_chunk(self, chunk: list[Unit]) -> tuple[list[Unit], int]:
        """:meth:`_store` for replayed units: (units left unstored, units set aside).

        A unit that makes the writer raise unexpectedly (a shape the structural check
        did not foresee) is found by storing the chunk's units one by one, and goes to
        the spool's ``.bad``: one bad record never blocks the others or the next start.
        """
        try:
            return await self._store(chunk), 0
        except Exception:
            if len(chunk) > 1:
                left: list[Unit] = []
                aside = 0
                for unit in chunk:
                    unit_left, unit_aside = await self._replay_chunk([unit])
                    left += unit_left
                    aside += unit_aside
                return left, aside
            logger.exception(
                "a spool record cannot be stored: set aside in %s", self.spool.bad_path
            )
            self.spool.set_aside([{k: v for k, v in chunk[0].items() if k != "replayed"}])
            self._count_bad({"unwritable": 1})
            return [], 1

    def _count_bad(self, reasons: Mapping[str, int]) -> None:
        for reason, count in reasons.items():
            self.stats.inc_value("storage/spool_bad", count)
            self.stats.inc_value(f"storage/spool_bad/{reason}", count)

    async def _write_with_retry(self, units: list[Unit]) -> list[Unit]:
        """Units left unstored after the retries (empty on success); marks the outage."""
        s = self.settings
        replayed = any(u.get("replayed") for u in units)
        for attempt in range(s.retry_times + 1):
            try:
                await self._ensure_schema()
                await self._write_once(units, dedupe_rows=replayed or attempt > 0)
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

    def _record_error(self, what: str, error: Mapping[str, Any]) -> None:
        code_name = str(
            error.get("codeName")
            or WRITE_ERROR_NAMES.get(error.get("code"))
            or f"code_{error.get('code')}"
        )
        self.stats.inc_value(f"storage/errors/{snake_case(code_name)}")
        logger.error(
            "%s refused by MongoDB (%s): %s", what, code_name, str(error.get("errmsg", ""))[:300]
        )

    async def _bulk(
        self, kind: UnitKind, ops: list[Op], owners: list[Unit], *, journaled: bool
    ) -> list[tuple[Op, Unit]]:
        """One unordered bulk on the kind's collection (``owners[i]`` is the unit of
        ``ops[i]``). Write errors other than an ``_id`` collision are recorded; the
        colliding operations are returned with their units (the rest is applied)."""
        collection = self.db[kind.collection]
        if journaled:
            collection = collection.with_options(write_concern=self._durable)
        try:
            result = await collection.bulk_write(ops, ordered=False)
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
                self._record_error(f"{kind.name} {kind.key(unit)}:", err)
        return collisions

    async def _write_once(self, units: list[Unit], *, dedupe_rows: bool) -> None:
        # The rows insert (journaled) ends the batch and makes it durable; when it may
        # write nothing (no rows, or all already present), the bulks are journaled.
        journaled = dedupe_rows or not any(u.get("stats") for u in units)
        by_kind: dict[str, tuple[UnitKind, list[Unit]]] = {}
        for unit in units:
            kind = kind_of(unit)
            if kind is not None:
                by_kind.setdefault(kind.name, (kind, []))[1].append(unit)
        # Kinds without rows first: the journaled rows insert then covers their writes too.
        ordered = sorted(by_kind.values(), key=lambda pair: pair[0].rows_collection is not None)
        for kind, group in ordered:
            for wave in unique_waves(group, kind.key):
                await self._write_wave(kind, wave, journaled=journaled)
            await self._insert_rows(kind, group, dedupe=dedupe_rows)

    async def _write_wave(self, kind: UnitKind, wave: list[Unit], *, journaled: bool) -> None:
        ops: list[Op] = []
        owners: list[Unit] = []
        for unit in wave:
            document = kind.insert_document(unit)
            updates = [InsertOne(document)] if document is not None else _updates(kind, unit)
            ops.extend(updates)
            owners.extend([unit] * len(updates))
        collisions = await self._bulk(kind, ops, owners, journaled=journaled)
        if not collisions:
            return
        # An insert collided: the document was stored meanwhile, merge it with updates.
        # An upsert collided: either two upserts raced (the retry is an update) or
        # newer data is stored; an update that collides again is superseded.
        ops, owners = [], []
        for op, unit in collisions:
            retry = _updates(kind, unit) if isinstance(op, InsertOne) else [op]
            ops.extend(retry)
            owners.extend([unit] * len(retry))
        superseded = [u for _, u in await self._bulk(kind, ops, owners, journaled=journaled)]
        for unit in superseded:
            self.stats.inc_value("storage/superseded")
            logger.info("%s %s: newer data already stored, kept", kind.name, kind.key(unit))
        ops, owners = [], []
        for unit in superseded:
            fixups = [UpdateOne(f, u, upsert=up) for f, u, up in kind.superseded_writes(unit)]
            ops.extend(fixups)
            owners.extend([unit] * len(fixups))
        if ops:
            await self._bulk(kind, ops, owners, journaled=journaled)

    async def _insert_rows(self, kind: UnitKind, units: list[Unit], *, dedupe: bool) -> None:
        """One observation row per unit. After a failure or on replay some rows may
        already be stored: time-series collections have no unique key to lean on, so
        the identity pairs already present are skipped."""
        if kind.rows_collection is None:
            return
        rows = [dict(u["stats"]) for u in units if u.get("stats")]
        key, at = kind.row_identity
        if dedupe and rows:
            present = set()
            cursor = self.db[kind.rows_collection].find(
                {
                    key: {"$in": sorted({r[key] for r in rows})},
                    at: {"$in": sorted({r[at] for r in rows})},
                },
                {key: 1, at: 1, "_id": 0},
            )
            async for doc in cursor:
                present.add((doc[key], as_utc(doc[at])))
            rows = [r for r in rows if (r[key], r[at]) not in present]
        if not rows:
            return
        collection = self.db[kind.rows_collection].with_options(write_concern=self._durable)
        try:
            await collection.insert_many(rows, ordered=False)
        except BulkWriteError as exc:
            for err in exc.details.get("writeErrors", []):
                self._record_error(f"{kind.rows_collection} row of {rows[err['index']][key]}:", err)
