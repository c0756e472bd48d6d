"""The short chaos run (bench/chaos.py, 80 notes) as a CI test: every fault at once.

``python -m bench.chaos --full`` runs the same with 300 notes (not in CI).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import SHORT, run_chaos

pytestmark = pytest.mark.slow


def test_short_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    """One ``scrapy crawl xhs`` of 80 sandbox notes with 10 % 5xx, 5 % responses slower
    than DOWNLOAD_TIMEOUT, 2 % truncated images and a captcha burst on the site; per-minute
    and per-day 429s, 503 bursts, 5 % truncated JSON, a retired model and an invalid key
    on the Gemini emulator; the MongoDB server restarted mid-run. Then the emulator's day
    rolls over (and the crawler's stored dates age by the same amount) and
    ``scrapy crawl enrich`` runs.

    Invariant: let LIVE be the requested notes the site does not treat as deleted, and
    GAVE_UP the notes whose page the crawl named in a "Gave up retrying" or "giving up on"
    log line (a 5xx/timeout outlasting RETRY_TIMES=6, or a captcha outlasting
    ANTIBOT_MAX_RETRIES). Then ``notes`` holds exactly the ids LIVE − GAVE_UP, each once
    (GAVE_UP is at most 4 notes); the crawl exits 0; every stored note's enrichment is
    ``done`` or ``deferred``/``failed`` with a non-empty reason, and some are deferred;
    every stored image path resolves inside IMAGES_STORE and names an existing file when
    the image is ``ok``; no raw API key or cookie value occurs in the crawl and enrich
    logs, in a JSON dump of every Mongo collection, or in any file under the run
    directory; after the follow-up no note is deferred and every note deferred after
    the crawl is ``done`` (or ``failed`` with a reason). Each injected fault must show
    in the site's, the emulator's or the crawl's counters, else the run proves nothing.
    """
    report = run_chaos(SHORT, tmp_path)
    assert not report.failures, report.describe()
