"""Connection handling, the embedded server, the quota store and the run lease."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient, MongoClient
from scrapy.utils.test import get_crawler

from pipelines.mongo import (
    EMBEDDED_JSON,
    MongoHandle,
    MongoQuotaStateStore,
    MongoSettings,
    acquire_lease,
    close_databases,
    close_mongo,
    get_mongo,
    mask_uri,
    open_database,
    read_embedded_info,
    release_lease,
    renew_lease,
)

from .notes_factory import T0
from .test_outage import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def test_settings_from_scrapy_settings_and_env(monkeypatch):
    monkeypatch.setenv("MONGO_BATCH_SIZE", "7")
    crawler = get_crawler(settings_dict={"MONGO_DATABASE": "other", "MONGO_FLUSH_INTERVAL": "0.5"})
    s = MongoSettings.from_settings(crawler.settings)
    assert (s.uri, s.database, s.batch_size, s.flush_interval_s) == ("", "other", 7, 0.5)
    assert s.data_dir == "data/mongo" and s.spool_path == "data/spool/notes.jsonl"


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
        (
            "mongodb://alice:s3cr3t@h1:1,h2:2/xhs?authSource=admin",
            "mongodb://***@h1:1,h2:2/xhs?authSource=admin",
        ),
        ("mongodb+srv://u:p%40ss@cluster.example.net", "mongodb+srv://***@cluster.example.net"),
        (
            "mongodb://h/?tlsCertificateKeyFilePassword=pw&w=1",
            "mongodb://h/?tlsCertificateKeyFilePassword=***&w=1",
        ),
        ("not a uri s3cr3t", "***"),
    ],
)
def test_mask_uri(uri, masked):
    assert mask_uri(uri) == masked
    assert "s3cr3t" not in mask_uri(uri) and "p%40ss" not in mask_uri(uri)


async def test_uri_handle_is_shared_per_crawler(mongo_uri, mongo_db_name):
    crawler = get_crawler(settings_dict={"MONGO_URI": mongo_uri, "MONGO_DATABASE": mongo_db_name})
    a = await get_mongo(crawler)
    b = await get_mongo(crawler)
    assert a is b and not a.embedded and a.uri_fingerprint == mongo_uri
    assert a.db.name == mongo_db_name
    await a.db.probe.insert_one({"x": 1})
    await close_mongo(crawler)
    with pytest.raises(RuntimeError):
        _ = a.db


async def test_open_database_is_shared_per_process(mongo_uri, mongo_db_name):
    settings = MongoSettings(uri=mongo_uri, database=mongo_db_name)
    client1, db1 = await open_database(settings)
    client2, _ = await open_database(settings)
    assert client1 is client2 and db1.name == mongo_db_name
    await close_databases()


EMBEDDED_PEER = """
import asyncio, json, sys
from pipelines.mongo import MongoHandle, MongoSettings

async def main():
    h = MongoHandle(MongoSettings(data_dir=sys.argv[1], database="peer"))
    await h.start()
    await h.db.notes.insert_one({"_id": "from-peer"})
    print(json.dumps({"uri": h.uri_fingerprint, "owns": h._owns_embedded}))
    await h.close()

asyncio.run(main())
"""


async def test_embedded_server_started_and_reused_by_another_process(tmp_path: Path):
    data_dir = tmp_path / "mongo"
    h1 = MongoHandle(MongoSettings(data_dir=str(data_dir), database="xhs"))
    await h1.start()
    try:
        assert h1.embedded
        info = read_embedded_info(data_dir)
        assert info is not None and info["pid"] == os.getpid()
        assert info["uri"] == h1.uri_fingerprint
        # A second handle in this process shares the server (reference counted) …
        h2 = MongoHandle(MongoSettings(data_dir=str(data_dir), database="xhs"))
        await h2.start()
        await h2.close()
        await h1.db.notes.insert_one({"_id": "still-up"})
        # … and another process connects to it instead of starting its own.
        out = subprocess.run(
            [PYTHON, "-c", EMBEDDED_PEER, str(data_dir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        peer = json.loads(out.stdout.strip().splitlines()[-1])
        assert peer == {"uri": info["uri"], "owns": False}
        assert await h1.client.peer.notes.find_one({"_id": "from-peer"}) is not None
    finally:
        await h1.close()
    assert not (data_dir / EMBEDDED_JSON).exists()
    # Data persists: a fresh start on the directory sees the earlier writes.
    h3 = MongoHandle(MongoSettings(data_dir=str(data_dir), database="xhs"))
    await h3.start()
    try:
        assert await h3.db.notes.find_one({"_id": "still-up"}) is not None
    finally:
        await h3.close()


async def test_stale_embedded_json_is_ignored(tmp_path: Path):
    data_dir = tmp_path / "mongo"
    data_dir.mkdir()
    dead = subprocess.run(
        [PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (data_dir / EMBEDDED_JSON).write_text(
        json.dumps({"uri": "mongodb://127.0.0.1:9/", "pid": int(dead.stdout)})
    )
    h = MongoHandle(MongoSettings(data_dir=str(data_dir)))
    await h.start()
    try:
        assert read_embedded_info(data_dir)["pid"] == os.getpid()
        await h.db.command("ping")
    finally:
        await h.close()


def test_serve_cli(tmp_path: Path):
    port = free_port()
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "pipelines.mongo",
            "serve",
            "--data",
            str(tmp_path / "d"),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"mongodb://127.0.0.1:{port}/" in line, line + proc.stderr.read()
        client: MongoClient = MongoClient(
            f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=5000
        )
        client.xhs.notes.insert_one({"_id": "a"})
        assert client.xhs.notes.count_documents({}) == 1
        client.close()
        # A second serve of the same directory refuses and names the live one.
        second = subprocess.run(
            [
                PYTHON,
                "-m",
                "pipelines.mongo",
                "serve",
                "--data",
                str(tmp_path / "d"),
                "--port",
                "0",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and f"127.0.0.1:{port}" in second.stdout
        # Another directory on a port that is taken: a clear message, not a traceback.
        taken = subprocess.run(
            [
                PYTHON,
                "-m",
                "pipelines.mongo",
                "serve",
                "--data",
                str(tmp_path / "e"),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert taken.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in taken.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert not (tmp_path / "d" / EMBEDDED_JSON).exists()


async def test_quota_store_round_trip(mongo_uri, mongo_db_name):
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        db = client[mongo_db_name]
        store = MongoQuotaStateStore(db)
        assert await store.load() == {}
        state = {
            "p1/gemini-2.5-flash": {"rpd_used": 17, "exhausted_until": T0, "limits": {"rpm": 10}},
            "p2/gemini-3.0-flash$x": {"rpd_used": 0, "models": ["a.b", "c"]},
            "100%": None,
        }
        await store.save(state)
        assert await MongoQuotaStateStore(db).load() == state
        await store.save({"p1/gemini-2.5-flash": {"rpd_used": 18}})
        assert await store.load() == {"p1/gemini-2.5-flash": {"rpd_used": 18}}
        assert await db.gemini_quota.count_documents({}) == 1
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()


async def test_lease(mongo_uri, mongo_db_name):
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        db = client[mongo_db_name]
        now = T0
        assert await acquire_lease(db, "crawl:xhs", "run-a", 60, now=now)
        assert not await acquire_lease(
            db, "crawl:xhs", "run-b", 60, now=now + timedelta(seconds=30)
        )
        assert await acquire_lease(db, "crawl:xhs", "run-a", 60, now=now + timedelta(seconds=30))
        assert await renew_lease(db, "crawl:xhs", "run-a", 60, now=now + timedelta(seconds=40))
        # run-a crashed: after the ttl its lease is taken over.
        later = now + timedelta(seconds=101)
        assert await acquire_lease(db, "crawl:xhs", "run-b", 60, now=later)
        doc = await db.leases.find_one({"_id": "crawl:xhs"})
        assert doc["owner"] == "run-b" and doc["acquired_at"] == later
        assert not await renew_lease(db, "crawl:xhs", "run-a", 60, now=later)
        assert not await release_lease(db, "crawl:xhs", "run-a")
        assert await release_lease(db, "crawl:xhs", "run-b")
        assert await acquire_lease(db, "crawl:xhs", "run-c", 60, now=later)
        # Other names are independent.
        assert await acquire_lease(db, "enrich", "run-a", 60, now=later)
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()
