"""Issue 18, defect 3: structurally invalid spool records go aside once, the rest replay.

Before the fix, valid JSON without ``note_id`` crashed the replay with a ``KeyError``
at the storage pipeline's start: every later crawl failed to start, the good records
were never replayed and ``.bad`` grew on each try (the torn line was set aside again).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.mongo import close_mongo
from pipelines.storage import Spool
from pipelines.storage.spool import dumps_record
from sandbox.harness import sandbox_settings
from tests.factories import build_storage, make_note

GOOD = 6

BAD_RECORDS = 6


def poison(spool_path: Path, units: list[dict]) -> Spool:
    """A spool of ``units`` with BAD_RECORDS records that can never be replayed among
    them: no note_id, wrong types, a date that is not one, no type, not an object, and a
    torn last line."""
    no_id = {k: v for k, v in units[0].items() if k != "note_id"}
    wrong_types = {**units[1], "note_id": 12345, "fields": "not an object"}
    bad_date = {**units[2], "note_id": "abc", "crawled_at": "yesterday"}
    no_type = {"note_id": "x", "hello": "world"}
    spool = Spool(spool_path)
    spool.append(units[:3])
    lines = [dumps_record(r) for r in (no_id, wrong_types, bad_date, no_type)]
    lines.append(json.dumps([1, 2, 3]))
    with spool_path.open("a") as fh:
        fh.write("\n".join(lines) + "\n")
    spool.append(units[3:])
    with spool_path.open("a") as fh:
        fh.write('{"type": "note", "v": 1, "note_id": "torn')  # a crash mid-write
    return spool


async def _open_and_close(uri: str, db: str, spool: Path):
    pipeline = build_storage(uri, db, spool)
    await pipeline.open_spider()
    await pipeline.close_spider()
    await close_mongo(pipeline.crawler)
    return pipeline.crawler.stats


async def _good_units(uri: str, db: str, tmp_path: Path) -> list[dict]:
    """The units storage makes of GOOD notes (what a crawl with Mongo down spools)."""
    pipeline = build_storage(uri, db, tmp_path / "unused.jsonl")
    await pipeline.open_spider()
    for i in range(GOOD):
        await pipeline.process_item(make_note(100 + i))
    units = list(pipeline._buffer)
    pipeline._buffer.clear()
    await pipeline.close_spider()
    await close_mongo(pipeline.crawler)
    return units


async def test_invalid_records_go_aside_once_and_the_rest_replay(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
) -> None:
    units = await _good_units(mongo_uri, mongo_db_name, tmp_path)
    spool_path = tmp_path / "spool" / "notes.jsonl"
    spool = poison(spool_path, units)

    stats = await _open_and_close(mongo_uri, mongo_db_name, spool_path)

    stored = {d["_id"] for d in mongo_sync.notes.find({}, {"_id": 1})}
    assert stored == {u["note_id"] for u in units}
    assert stats.get_value("storage/replayed") == GOOD
    assert stats.get_value("storage/spool_bad") == BAD_RECORDS
    bad = spool_path.with_name("notes.jsonl.bad")
    assert len(bad.read_text().splitlines()) == BAD_RECORDS
    assert not spool.pending()  # nothing left to read again

    again = await _open_and_close(mongo_uri, mongo_db_name, spool_path)  # a later crawl
    assert not again.get_value("storage/spool_bad")
    assert len(bad.read_text().splitlines()) == BAD_RECORDS  # set aside once, never re-read
    assert mongo_sync.notes.count_documents({}) == GOOD


async def test_a_replay_that_fails_midway_does_not_set_torn_lines_aside_twice(
    mongo_uri, mongo_db_name, tmp_path: Path
) -> None:
    """A claimed file is read again after a crash; its bad lines were already taken out."""
    spool_path = tmp_path / "notes.jsonl"
    spool = Spool(spool_path)
    spool.append([{"type": "note", "v": 1, "note_id": "n1"}])
    with spool_path.open("a") as fh:
        fh.write("{torn\n")
    first = spool.claim(check=lambda record: None)
    assert len(first.records) == 1 and first.bad == 1
    # ... the process dies here, before done(): the claimed file stays for the next start
    second = spool.claim(check=lambda record: None)
    assert len(second.records) == 1 and second.bad == 0
    second.done()
    assert len(spool_path.with_name("notes.jsonl.bad").read_text().splitlines()) == 1


@pytest.mark.slow
async def test_crawls_start_fine_with_a_poisoned_spool(
    hostile, scrapy_crawl, mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
) -> None:
    units = await _good_units(mongo_uri, mongo_db_name, tmp_path / "prep")
    spool_path = Path(sandbox_settings(tmp_path)["MONGO_SPOOL_PATH"])  # the crawl's spool
    poison(spool_path, units)
    hostile.add_note(1)
    env = hostile.env(ENRICH_BACKEND="off", MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name)
    for run in range(2):
        result = scrapy_crawl("xhs", {"note_ids": hostile.note_ids()}, env)
        assert result.returncode == 0, result.log[-4000:]
        assert result.stats.get("storage/spool_bad") == (BAD_RECORDS if run == 0 else None)
        assert mongo_sync.notes.count_documents({}) == GOOD + 1
    assert len(spool_path.with_name("notes.jsonl.bad").read_text().splitlines()) == BAD_RECORDS


def test_every_kind_of_unit_storage_makes_passes_the_check() -> None:
    """The check sets aside only what can never be stored: real units of every kind,
    spooled and read back, pass it (and another version's unit is kept for it)."""
    from crawler.core.timeutil import utcnow
    from pipelines.storage.comments import prepare_comment_unit
    from pipelines.storage.records import unit_problem
    from pipelines.storage.spool import loads_record
    from pipelines.storage.unit import prepare_unit
    from pipelines.storage.users import prepare_user_unit
    from tests.factories import make_comment, make_profile

    common = {"now": utcnow(), "run_id": "run-1", "max_chars": 100_000}
    units = [
        prepare_unit(make_note(1), **common),
        prepare_comment_unit(make_comment(1, 0), **common),
        prepare_user_unit(make_profile(1), **common),
    ]
    for unit in units:
        assert unit_problem(loads_record(dumps_record(unit))) is None, unit["type"]
    assert unit_problem({**units[0], "v": 99}) is None  # another version's: kept
    assert unit_problem({**units[1], "comment_id": None}) == "bad_key"
