"""The spool: the record format's exact round trip, claims, leftovers, torn lines."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from pipelines.storage import (
    Spool,
    dumps_record,
    loads_record,
)


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
