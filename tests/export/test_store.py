"""The export over the embedded store (``MONGO_URI`` empty): it joins a live server, or
serves the directory from a child process it stops at the end, never from itself."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from crawler.export._store import export_database
from pipelines.mongo import (
    EMBEDDED_JSON,
    EMBEDDED_LOCK,
    MongoSettings,
    pid_alive,
    read_embedded_info,
)
from sandbox.harness import MongoServer
from tests.export.factory import note_doc

ROOT = Path(__file__).resolve().parents[2]
N = 25


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory holding N notes, served by nobody."""
    path = tmp_path / "mongo"
    with MongoServer(path) as server:
        client: MongoClient = MongoClient(server.uri)
        client.xhs.notes.insert_many([note_doc(i) for i in range(N)])
        client.close()
    return path


def _export(data_dir: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crawler.export", "notes", "--format", "jsonl", "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "MONGO_URI": "",
            "MONGO_DATABASE": "xhs",
            "MONGO_DATA_DIR": str(data_dir),
            **env,
        },
        timeout=120,
    )


def _lock_free(data_dir: Path) -> bool:
    fd = os.open(data_dir / EMBEDDED_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_unserved_directory_is_served_by_a_child_and_released(data_dir, tmp_path) -> None:
    out = tmp_path / "n.jsonl"
    done = _export(data_dir, out)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert sorted(r["note_id"] for r in rows) == sorted(note_doc(i)["_id"] for i in range(N))
    assert not (data_dir / EMBEDDED_JSON).exists()  # the child withdrew it when stopped
    assert _lock_free(data_dir)  # and nobody serves the directory any more


async def test_the_server_is_another_process_for_the_export_only(data_dir) -> None:
    from dataclasses import replace

    from scrapy.utils.project import get_project_settings

    base = MongoSettings.from_settings(get_project_settings())
    settings = replace(base, uri="", data_dir=str(data_dir), database="xhs")
    async with export_database(settings) as db:
        info = read_embedded_info(data_dir)
        assert info is not None and info["pid"] != os.getpid() and pid_alive(info["pid"])
        assert await db.notes.count_documents({}) == N
    assert not pid_alive(info["pid"]) and _lock_free(data_dir)


def test_live_server_is_joined_and_left_running(data_dir, tmp_path) -> None:
    serve = subprocess.Popen(
        [sys.executable, "-m", "pipelines.mongo", "serve", "--data", str(data_dir), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while (info := read_embedded_info(data_dir)) is None or info["pid"] != serve.pid:
            assert time.monotonic() < deadline and serve.poll() is None, "serve did not start"
            time.sleep(0.05)
        done = _export(data_dir, tmp_path / "n.jsonl")
        assert done.returncode == 0, done.stderr
        assert len((tmp_path / "n.jsonl").read_text("utf-8").splitlines()) == N
        assert serve.poll() is None and pid_alive(serve.pid)
        assert read_embedded_info(data_dir) == info  # still the one serving it
    finally:
        serve.terminate()
        serve.wait(30)


def test_server_that_cannot_start_is_one_line_exit_1(data_dir, tmp_path) -> None:
    done = _export(data_dir, tmp_path / "n.jsonl", MONGO_EMBEDDED_HOST="192.0.2.1")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "the embedded server for" in done.stderr and "exited with status" in done.stderr
    assert not (tmp_path / "n.jsonl").exists()
