"""The short chaos run (bench/chaos.py, 80 notes) as a CI test: every fault at once,
processes killed among them.

``python -m bench.chaos --full`` runs the same with 300 notes and keyword discovery in
Chromium (not in CI).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import SHORT, run_chaos

pytestmark = pytest.mark.slow


def test_short_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    """Day one: ``scrapy crawl xhs`` of 80 sandbox notes (three of them hostile: 300
    pictures, a lone surrogate, a megabyte of desc) over a spool holding an earlier
    run's valid, invalid and torn records; killed with SIGKILL twice (at seeded counts
    of stored notes) and force-stopped once (SIGINT or SIGTERM twice), each time
    followed at once by the same command; the fourth run meets 10 % 5xx, slow and
    truncated responses, a captcha burst, Gemini 429s (per minute and per day), 503s,
    truncated and unparsable answers, a retired model, an invalid key, a MongoDB
    restart, and an image store (a tmpfs) that runs out of space. Day two (the
    emulator's day and the processes' clocks moved on): the same crawl and ``scrapy
    crawl enrich`` at once, overlapping on the deferred notes.

    Invariant (bench/chaos.py's docstring has the list): every live note and every
    valid spooled note stored exactly once, each ``done`` or deferred/failed with a
    reason, and none deferred after day two; the invalid spool records set aside once,
    no cache write left in its journal; image paths inside the store and ``ok`` files
    whole; no file outside the stores; no secret in any log, Mongo or file; each
    command after a dead run takes its lease over at once, the forced stop exits
    non-zero, no ``running`` run record or lease is left; Gemini requests billed ≤
    contents answered + unusable answers + requests in flight at the kills, no note
    content answered twice unless the first answer died with its process, no note
    over 3 requests in a run; the 300-picture note fetches 18, the megabyte desc
    reaches Gemini cut. Each fault must show in a counter, else the run proves nothing.
    """
    report = run_chaos(SHORT, tmp_path)
    assert not report.failures, report.describe()
