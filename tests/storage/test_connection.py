"""The embedded server (start, join, stale info, serve CLI); the handles:
tests/storage/test_handle.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from pymongo import MongoClient

from pipelines.mongo import (
    EMBEDDED_JSON,
    MongoHandle,
    read_embedded_info,
)
from sandbox.harness import free_port
from tests.factories import mongo_settings

ROOT = Path(__file__).resolve().parents[2]


PYTHON = sys.executable


EMBEDDED_PEER = """
import asyncio, dataclasses, json, sys
from scrapy.utils.project import get_project_settings
from pipelines.mongo import MongoHandle, MongoSettings

async def main():
    h = MongoHandle(dataclasses.replace(MongoSettings.from_settings(get_project_settings()), data_dir=sys.argv[1], database="peer"))
    await h.start()
    await h.db.notes.insert_one({"_id": "from-peer"})
    print(json.dumps({"uri": h.uri_fingerprint, "owns": h._owns_embedded}))
    await h.close()

asyncio.run(main())
"""


async def test_embedded_server_started_and_reused_by_another_process(tmp_path: Path):
    data_dir = tmp_path / "mongo"
    h1 = MongoHandle(mongo_settings(data_dir=str(data_dir), database="xhs"))
    await h1.start()
    try:
        assert h1.embedded
        info = read_embedded_info(data_dir)
        assert info is not None and info["pid"] == os.getpid()
        assert info["uri"] == h1.uri_fingerprint
        # A second handle in this process shares the server (reference counted) …
        h2 = MongoHandle(mongo_settings(data_dir=str(data_dir), database="xhs"))
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
    h3 = MongoHandle(mongo_settings(data_dir=str(data_dir), database="xhs"))
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
    h = MongoHandle(mongo_settings(data_dir=str(data_dir)))
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
