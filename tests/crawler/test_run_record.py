"""crawler/extensions/run_record.py: the run's exit status, the ``crawl_runs`` records of
runs that died without closing (against the real Mongo server) and its one-line errors."""

from __future__ import annotations

from pymongo import AsyncMongoClient

from crawler.commands.exit_status import ExitStatus
from crawler.core.timeutil import utcnow
from crawler.extensions.run_record import (
    EXIT_BLOCKED,
    EXIT_COOKIE_EXPIRED,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_OVERLAP,
    EXIT_STORAGE_DOWN,
    close_crashed_runs,
    exit_status,
    first_line,
)
from pipelines.mongo import this_process
from tests.factories import dead_pid


def test_exit_status_by_finish_reason() -> None:
    assert exit_status("finished", {"item_scraped_count": 3}) == EXIT_OK
    assert exit_status("closespider_itemcount", {}) == EXIT_OK
    assert exit_status("overlap", {}) == EXIT_OVERLAP
    assert exit_status("cookie_expired", {}) == EXIT_COOKIE_EXPIRED
    assert exit_status("ip_blocked", {}) == EXIT_BLOCKED
    assert exit_status("account_flagged", {}) == EXIT_BLOCKED
    assert exit_status("shutdown", {}) == EXIT_ERROR
    assert exit_status("finished", {"antibot/captcha_gave_up": 4}) == EXIT_BLOCKED
    assert exit_status("finished", {"storage/spooled": 5}) == EXIT_STORAGE_DOWN
    assert exit_status("finished", {"storage/spooled": 5, "storage/replayed": 5}) == EXIT_OK


def test_run_record_statuses_come_from_the_enum() -> None:
    assert exit_status("usage", {}) == ExitStatus.USAGE == 2
    assert exit_status("overlap", {}) == ExitStatus.OVERLAP
    assert exit_status("cookie_expired", {}) == ExitStatus.COOKIE_EXPIRED
    assert exit_status("finished", {}) == ExitStatus.OK
    assert type(exit_status("finished", {})) is int  # stored in Mongo, dumped as JSON


async def test_running_records_of_dead_processes_are_closed_as_crashed(
    mongo_uri, mongo_db_name
) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    db = client[mongo_db_name]
    me = this_process()
    now = utcnow()
    try:
        await db.crawl_runs.insert_many([
            {"_id": "dead", "status": "running", "host": me["host"], "pid": dead_pid(),
             "started_at": now},
            {"_id": "alive", "status": "running", "host": me["host"], "pid": me["pid"],
             "started_at": now},
            {"_id": "elsewhere", "status": "running", "host": "other", "pid": dead_pid(),
             "started_at": now},
            {"_id": "done", "status": "finished", "host": me["host"], "pid": dead_pid()},
        ])  # fmt: skip
        assert await close_crashed_runs(db, by="now") == ["dead"]
        statuses = {d["_id"]: d["status"] async for d in db.crawl_runs.find()}
        assert statuses == {"dead": "crashed", "alive": "running", "elsewhere": "running",
                            "done": "finished"}  # fmt: skip
        assert (await db.crawl_runs.find_one({"_id": "dead"}))["closed_by"] == "now"
    finally:
        await client.drop_database(mongo_db_name)
        await client.close()


def test_a_driver_error_is_one_short_line() -> None:
    long = ConnectionError("no server\n  at 127.0.0.1:1\n" + "x" * 500)
    line = first_line(long, limit=60)
    assert "\n" not in line and line.startswith("ConnectionError: no server at 127.0.0.1:1 ")
    assert len(line) == len("ConnectionError: ") + 60 and line.endswith("…")
    assert first_line(TimeoutError()) == "TimeoutError"
