"""crawler/extensions/jobdir.py: the open marker of a job directory, and the state of a
killed run set aside (the crawl after a hard kill: tests/reliability/test_crashes.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from crawler.extensions.jobdir import MARKER, mark_closed, mark_open, set_aside_if_killed
from tests.factories import dead_pid


def test_jobdir_of_a_killed_run_is_set_aside(tmp_path: Path) -> None:
    job = tmp_path / "job"
    mark_open(job, "run-1")
    (job / "requests.seen").write_bytes(b"x")
    assert set_aside_if_killed(job) is None  # this process is alive: its run goes on
    marker = json.loads((job / MARKER).read_text())
    (job / MARKER).write_text(json.dumps({**marker, "pid": dead_pid()}))
    aside = set_aside_if_killed(job)
    assert aside is not None and (aside / "requests.seen").read_bytes() == b"x"
    assert not (job / "requests.seen").exists() and not (job / MARKER).exists()
    assert set_aside_if_killed(job) is None  # nothing left to set aside


def test_the_marker_says_who_holds_the_directory_and_goes_at_a_clean_close(
    tmp_path: Path,
) -> None:
    job = tmp_path / "new" / "job"
    mark_open(job, "run-7")  # the directory is made
    marker = json.loads((job / MARKER).read_text())
    assert marker["pid"] == os.getpid() and marker["run_id"] == "run-7"
    mark_closed(job)
    assert not (job / MARKER).exists()
    mark_closed(job)  # closing twice is harmless
    (job / "requests.queue").mkdir()
    assert set_aside_if_killed(job) is None  # closed cleanly: Scrapy resumes the queue
    assert (job / "requests.queue").is_dir()


def test_an_unreadable_marker_counts_as_a_killed_run(tmp_path: Path) -> None:
    (tmp_path / MARKER).write_text('{"pid": 12', encoding="utf-8")  # killed mid-write
    (tmp_path / "spider.state").write_bytes(b"s")
    aside = set_aside_if_killed(tmp_path)
    assert aside is not None and aside.name.startswith("killed-")
    assert (aside / "spider.state").read_bytes() == b"s" and (aside / MARKER).exists()


def test_a_marker_from_another_host_is_left_alone(tmp_path: Path) -> None:
    mark_open(tmp_path, "run-1")
    marker = json.loads((tmp_path / MARKER).read_text())
    (tmp_path / MARKER).write_text(json.dumps({**marker, "host": "elsewhere", "pid": dead_pid()}))
    assert set_aside_if_killed(tmp_path) is None  # not judged from here
    assert (tmp_path / MARKER).exists()
