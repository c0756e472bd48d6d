"""Issue 18, the chaos run's last double spend: a stop asked starts no Gemini request.

Before the fix, after the first SIGINT/SIGTERM (Scrapy's graceful shutdown) the
enrichment pipeline kept sending requests for the notes it still held. In the chaos
run a second signal came 0.3 s later (a forced stop) and killed the process before
those answers reached the cache or the notes; the next run paid for the same notes
again (e.g. run3's note ``6a4246f2…`` sent 0.19 s after the first SIGINT, answered
after the second). Now the notes that reach their request after a stop was asked are
stored ``deferred`` (``run_stopping``, no attempt spent); the requests already sent
finish as usual.
"""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest

from pipelines.enrichment.pipeline import STOPPING_REASON
from sandbox.harness import sandbox_env, start_crawl
from tests.reliability.test_crashes import _ids, _wait_for

NOTES = 40
LATENCY_S = 1.0  # per answer: the notes queue in the pipeline behind ENRICH_CONCURRENCY
# A request the crawler sent just before the signal may reach the emulator just after.
SEND_LAG = timedelta(seconds=0.5)


def _generate_calls(emulator) -> list:
    return [r for r in emulator.requests if r.method == "generateContent"]


@pytest.mark.slow
def test_a_stop_asked_starts_no_new_gemini_request(
    make_site, make_gemini_emulator, mongo_uri, mongo_db_name, mongo_sync, tmp_path
) -> None:
    site = make_site()
    ids, live = _ids(site, NOTES)
    emulator = make_gemini_emulator(None)
    emulator.control(latency=LATENCY_S)
    env = sandbox_env(
        site, MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, GEMINI_API_KEYS="p1:test-key-1",
        GEMINI_BASE_URL=emulator.base_url, ENRICH_BACKEND="gemini",
    )  # fmt: skip
    with start_crawl("xhs", {"note_ids": ids}, env, workdir=tmp_path, label="a") as run:
        _wait_for(lambda: len(_generate_calls(emulator)) >= 1)  # the pipeline is busy now
        asked = emulator.clock.now()
        run.proc.send_signal(signal.SIGINT)  # once: a graceful stop
        stopped = run.wait(timeout=120)
    assert "shutting down gracefully" in stopped.stderr, stopped.stderr[-2000:]
    calls = _generate_calls(emulator)
    late = [r for r in calls if r.time - timedelta(milliseconds=r.latency_ms) > asked + SEND_LAG]
    assert late == [], f"{len(late)} of {len(calls)} requests sent after the stop was asked"
    deferred = mongo_sync.notes.count_documents({"enrichment.reason": STOPPING_REASON})
    assert deferred >= 1 and stopped.stats.get("enrich/deferred_stopping") == deferred
    stored = mongo_sync.notes.count_documents({})
    assert 0 < stored <= live
    unspent = mongo_sync.notes.find_one({"enrichment.reason": STOPPING_REASON})
    assert unspent["enrichment"]["status"] == "deferred"
    assert unspent["enrichment"]["attempts"] == 0 and not unspent["enrichment"]["usage"]["requests"]
