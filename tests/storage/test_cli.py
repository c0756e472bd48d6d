"""``python -m pipelines.storage replay`` and what replay keeps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pymongo import MongoClient

from pipelines.storage import (
    Spool,
    prepare_unit,
)
from tests.factories import T0, make_note, mongo_settings

ROOT = Path(__file__).resolve().parents[2]


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
    assert (
        "replay: 3 spooled record(s) stored, 0 set aside as unreadable, the spool is empty"
        in out.stdout
    )
    assert mongo_sync.notes.count_documents({}) == 3 and not spool.pending()
    client: MongoClient = mongo_sync.client
    assert client[mongo_db_name].note_stats.count_documents({}) == 3


def test_replay_keeps_records_it_does_not_know(mongo_uri, mongo_db_name, mongo_sync, tmp_path):
    import asyncio

    from pymongo import AsyncMongoClient

    from pipelines.storage import CounterStats, UnitWriter

    spool = Spool(tmp_path / "notes.jsonl")
    unit = prepare_unit(make_note(1), now=T0, run_id="r1", max_chars=1000)
    spool.append([unit, {"type": "note", "v": 99, "note_id": "future"}, {"type": "other"}])

    async def replay() -> int:
        client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
        try:
            settings = mongo_settings(uri=mongo_uri, database=mongo_db_name)
            writer = UnitWriter(client[mongo_db_name], settings, CounterStats(), spool=spool)
            return await writer.replay()
        finally:
            await client.close()

    assert asyncio.run(replay()) == 1
    assert mongo_sync.notes.count_documents({}) == 1
    kept = spool.claim().records
    assert kept == [{"type": "note", "v": 99, "note_id": "future"}, {"type": "other"}]
