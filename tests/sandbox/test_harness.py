"""sandbox/harness.py: ports, the restartable MongoDB-wire server, the crawl runner."""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from sandbox.crawlenv import isolated_environ
from sandbox.harness import MongoServer, free_port, run_crawl, start_crawl, wait_for_port

# A spider that needs no network: its start yields items (or sleeps, to test the timeout).
SPIDER = textwrap.dedent(
    """
    import sys
    import time

    import scrapy


    class Local(scrapy.Spider):
        name = "local"

        def __init__(self, count="3", sleep="0", **kwargs):
            super().__init__(**kwargs)
            self.count, self.sleep = int(count), float(sleep)

        async def start(self):
            print("hello from stdout", flush=True)
            time.sleep(self.sleep)
            for i in range(self.count):
                yield {"n": i}
    """
)


@pytest.fixture
def spider_file(tmp_path: Path) -> Path:
    path = tmp_path / "local_spider.py"
    path.write_text(SPIDER)
    return path


def test_free_port_can_be_bound_and_wait_for_port_sees_a_listener() -> None:
    port = free_port()
    with pytest.raises(RuntimeError, match=f"127.0.0.1:{port}"):
        wait_for_port(port, timeout=0.3, what="nothing")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        wait_for_port(port, timeout=5)


def test_wait_for_port_gives_up_as_soon_as_the_process_died() -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the crawler did not start"):
        wait_for_port(free_port(), timeout=30, alive=lambda: False, what="crawler")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_mongo_server_restarts_on_its_port_with_its_data(tmp_path: Path, process: bool) -> None:
    server = MongoServer(tmp_path / "db", process=process)
    with server:
        assert (server.pid is not None) is process
        client: MongoClient = MongoClient(server.uri, serverSelectionTimeoutMS=5000)
        client.t.notes.insert_one({"_id": "n1"})
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        server.restart(down_s=0.1)
        assert server.restarts == 1 and server.running
        assert client.t.notes.find_one({"_id": "n1"}) == {"_id": "n1"}
        client.close()
    assert not server.running
    server.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=0.5).close()


def test_run_crawl_returns_status_output_items_and_stats(tmp_path: Path, spider_file: Path) -> None:
    result = run_crawl(
        "local", {"count": "3"}, isolated_environ(), workdir=tmp_path / "w",
        spider_file=spider_file, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.log[-3000:]
    assert not result.timed_out
    assert result.items == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert "hello from stdout" in result.stdout
    assert "Spider closed (finished)" in result.stderr
    assert result.stats["item_scraped_count"] == 3
    assert result.stats["finish_reason"] == "finished"
    assert 0 < result.elapsed_s <= result.wall_s
    assert result.log_path is not None and result.log_path.read_text() == result.stderr


def test_run_crawl_kills_a_crawl_past_its_timeout(tmp_path: Path, spider_file: Path) -> None:
    started = time.monotonic()
    result = run_crawl(
        "local", {"sleep": "60"}, isolated_environ(), workdir=tmp_path,
        spider_file=spider_file, timeout=3,
    )  # fmt: skip
    assert result.timed_out and result.returncode < 0
    assert result.stats == {} and result.items == []
    assert time.monotonic() - started < 30


def test_start_crawl_runs_alongside_and_measures_memory(tmp_path: Path, spider_file: Path) -> None:
    env = isolated_environ()
    with (
        start_crawl("local", {"count": "1", "sleep": "1"}, env, workdir=tmp_path, label="a",
                    spider_file=spider_file, measure_rss=True) as a,
        start_crawl("local", {"count": "2"}, env, workdir=tmp_path, label="b",
                    spider_file=spider_file) as b,
    ):  # fmt: skip
        assert a.proc.poll() is None  # start_crawl did not wait
        first, second = a.wait(timeout=120), b.wait(timeout=120)
    assert (len(first.items), len(second.items)) == (1, 2)
    assert (
        first.peak_rss_main_bytes > 10 * 2**20 and first.peak_rss_bytes >= first.peak_rss_main_bytes
    )
    assert second.peak_rss_bytes == 0


def test_project_crawl_gets_the_sandbox_settings(tmp_path: Path) -> None:
    """A project spider run: sandbox paths under the workdir, the stats dump on."""
    result = run_crawl(
        "xhs", {"max_notes": "0"}, isolated_environ(), workdir=tmp_path, feed=False, timeout=60
    )
    assert result.returncode == 2, result.log[-3000:]
    command = " ".join(result.command)
    assert f"IMAGES_STORE={tmp_path / 'images'}" in command
    assert "DOWNLOAD_DELAY=0" in command and "sandbox.harness.StatsDump" in command
