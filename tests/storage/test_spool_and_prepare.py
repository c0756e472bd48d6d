"""The spool format and the pure preparation of storage units."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pymongo import MongoClient

from pipelines.spool import Spool, dumps_record, loads_record
from pipelines.storage import (
    TRUNCATION_MARK,
    RejectedNote,
    enrichment_filters,
    enrichment_rank,
    escape_key,
    prepare_unit,
    repair_text,
    sanitize,
    unique_waves,
)

from .notes_factory import T0, make_note

ROOT = Path(__file__).resolve().parents[2]


def test_record_round_trip_is_exact():
    record = {
        "at": datetime(2026, 1, 1, 12, 30, 1, 123000, tzinfo=UTC),
        "cst": datetime(2026, 1, 1, 20, 0, tzinfo=timezone(timedelta(hours=8))),
        "naive": datetime(2026, 1, 1),
        "nested": [{"__type__": "datetime", "value": "not a date"}, {"a": [1, 2.5, None, True]}],
        "text": "中文 $ . \ud800",
    }
    line = dumps_record(record)
    assert "\n" not in line
    assert loads_record(line) == record


def test_spool_append_claim_done(tmp_path: Path):
    spool = Spool(tmp_path / "sub" / "notes.jsonl")
    assert not spool.pending()
    assert spool.append([{"n": 1}, {"n": 2}]) == 2
    assert spool.append([]) == 0
    claimed = spool.claim()
    assert [r["n"] for r in claimed.records] == [1, 2]
    spool.append([{"n": 3}])  # arrives while the claim is being replayed
    claimed.done()
    assert [r["n"] for r in spool.claim().records] == [3]


def test_leftover_claims_and_torn_lines(tmp_path: Path):
    spool = Spool(tmp_path / "notes.jsonl")
    spool.append([{"n": 1}])
    spool.claim()  # "crashed" before done(): picked up again by the next claim
    spool.append([{"n": 2}])
    with spool.path.open("a") as fh:
        fh.write('{"n": 3, "tor')  # a torn last write
    claimed = spool.claim()
    assert [r["n"] for r in claimed.records] == [1, 2]
    assert '"tor' in (tmp_path / "notes.jsonl.bad").read_text()
    claimed.done()
    assert not spool.pending()


def test_claims_of_a_live_other_process_are_left_alone(tmp_path: Path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / f"notes.jsonl.replay-1-{other.pid}").write_text('{"n": 9}\n')
        assert Spool(tmp_path / "notes.jsonl").claim().records == []
    finally:
        other.kill()
        other.wait()
    assert Spool(tmp_path / "notes.jsonl").claim().records == [{"n": 9}]


def test_repair_and_escape():
    assert repair_text("ok 中文") == "ok 中文"
    assert repair_text("a\ud800b") == "a\ufffdb"
    assert repair_text("\ud83d\ude00") == "😀"  # a split pair is joined, not replaced
    assert escape_key("$where.x\x00") == "＄where．x\ufffd"


def test_sanitize():
    truncated: list[str] = []
    value = {
        "a.b": ["x" * 12, {"$k": "y"}],
        "big": 1 << 70,
        "set": {"b", "a"},
        "when": T0,
        "n": None,
        "f": 1.5,
        "s": ["ok", "a\ud800b", -(1 << 64), True],
        "t": "z\udfff",
    }
    out = sanitize(value, 10, "", truncated)
    assert out == {
        "a．b": ["x" * 10 + TRUNCATION_MARK, {"＄k": "y"}],
        "big": str(1 << 70),
        "set": ["a", "b"],
        "when": T0,
        "n": None,
        "f": 1.5,
        "s": ["ok", "a\ufffdb", str(-(1 << 64)), True],
        "t": "z\ufffd",
    }
    assert truncated == ["a．b.0"]


def test_prepare_unit():
    item = make_note(5, enrichment={"status": "done", "backend": "gemini"})
    unit = prepare_unit(item, now=T0.replace(tzinfo=None), run_id="r1", max_chars=1000)
    assert unit["note_id"] == item.note_id and "note_id" not in unit["fields"]
    assert "enrichment" not in unit["fields"] and "change" not in unit["fields"]
    assert unit["crawled_at"] == T0 and unit["crawled_at"].tzinfo is not None
    assert unit["stats"] == {
        "note_id": item.note_id,
        "crawled_at": T0,
        "crawl_run_id": "r1",
        "liked": 5,
        "collected": 10,
        "comments": 3,
        "shares": 1,
    }
    assert unit["fields"]["images"][0]["status"] == "pending"
    assert loads_record(dumps_record(unit)) == unit
    # The crawl time is fetched_at (to the millisecond); a note fetched before the run
    # started is passing through again (enrich spider), not a new observation.
    fetched = make_note(5, fetched_at=T0 + timedelta(microseconds=1500))
    unit = prepare_unit(
        fetched, now=T0 + timedelta(hours=1), run_id="r", max_chars=9, run_started_at=T0
    )
    assert unit["crawled_at"] == T0 + timedelta(milliseconds=1) and unit["stats"] is not None
    unit = prepare_unit(fetched, now=T0, run_id="r", max_chars=9, run_started_at=T0 + timedelta(1))
    assert unit["stats"] is None and unit["crawled_at"] == T0 + timedelta(milliseconds=1)
    with pytest.raises(RejectedNote) as info:
        prepare_unit(make_note(1, desc="x" * (16 << 20)), now=T0, run_id="r", max_chars=1 << 30)
    assert info.value.reason == "document_too_large"


ENRICHMENTS = [
    (None, 0),
    ("junk", 0),
    ({"status": "pending"}, 1),
    ({"status": "odd"}, 1),
    ({"status": "deferred"}, 2),
    ({"status": "failed"}, 2),
    ({"status": "skipped"}, 2),
    ({"status": "done", "backend": "local"}, 3),
    ({"status": "done", "backend": "gemini"}, 4),
]


def test_enrichment_filter_matches_the_rank(mongo_sync):
    """The server-side filter lets a new enrichment in exactly when it ranks at least as
    high as the stored one (or strictly higher, for replays)."""
    assert [enrichment_rank(e) for e, _ in ENRICHMENTS] == [r for _, r in ENRICHMENTS]
    missing = {"_id": "missing"}
    docs = [missing] + [{"_id": i, "enrichment": e} for i, (e, _) in enumerate(ENRICHMENTS)]
    mongo_sync.r.insert_many(docs)
    ranks = {"missing": 0} | {i: r for i, (_, r) in enumerate(ENRICHMENTS)}
    for max_rank in range(-1, 5):
        found = {d["_id"] for q in enrichment_filters(max_rank) for d in mongo_sync.r.find(q)}
        assert found == {k for k, r in ranks.items() if r <= max_rank}, max_rank


def test_unique_waves():
    units = [{"note_id": n} for n in ["a", "b", "a", "c", "a", "b"]]
    waves = unique_waves(units)
    assert [[u["note_id"] for u in w] for w in waves] == [["a", "b", "c"], ["a", "b"], ["a"]]


def test_replay_cli(mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path):
    spool = Spool(tmp_path / "notes.jsonl")
    spool.append(
        [prepare_unit(make_note(i), now=T0, run_id="r1", max_chars=1000) for i in range(3)]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONGO_")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.storage",
            "replay",
            "--uri",
            mongo_uri,
            "--database",
            mongo_db_name,
            "--spool",
            str(spool.path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "storage/replayed: 3" in out.stdout
    assert mongo_sync.notes.count_documents({}) == 3 and not spool.pending()
    client: MongoClient = mongo_sync.client
    assert client[mongo_db_name].note_stats.count_documents({}) == 3


def test_replay_keeps_records_it_does_not_know(mongo_uri, mongo_db_name, mongo_sync, tmp_path):
    import asyncio

    from pymongo import AsyncMongoClient

    from pipelines.mongo import MongoSettings
    from pipelines.storage import CounterStats, NoteWriter

    spool = Spool(tmp_path / "notes.jsonl")
    unit = prepare_unit(make_note(1), now=T0, run_id="r1", max_chars=1000)
    spool.append([unit, {"type": "note", "v": 99, "note_id": "future"}, {"type": "other"}])

    async def replay() -> int:
        client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
        try:
            settings = MongoSettings(uri=mongo_uri, database=mongo_db_name)
            writer = NoteWriter(client[mongo_db_name], settings, CounterStats(), spool=spool)
            return await writer.replay()
        finally:
            await client.close()

    assert asyncio.run(replay()) == 1
    assert mongo_sync.notes.count_documents({}) == 1
    kept = spool.claim().records
    assert kept == [{"type": "note", "v": 99, "note_id": "future"}, {"type": "other"}]
