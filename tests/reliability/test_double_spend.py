"""Issue 18, defect 6: ``crawl xhs`` and ``crawl enrich`` at once never enrich a note twice.

Before the fix their leases had different names and notes were not claimed: both runs
paid for the same deferred notes (41 requests for 30 notes in the adversarial run).
Now a run claims a note (pipelines/mongo/claims.py) before it spends a request on it,
and re-checks the enrichment cache once it holds the claim.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.harness import free_port, sandbox_env, start_crawl
from tests.factories import T0, build_storage, enrichment, make_note
from tests.storage.test_pipeline import run_pipeline

NOTES = 24


def _generate_calls(emulator) -> int:
    return sum(1 for r in emulator.requests if r.method == "generateContent")


@pytest.mark.slow
def test_crawl_and_enrich_at_once_spend_one_request_per_note(
    make_site, make_gemini_emulator, mongo_uri, mongo_db_name, mongo_sync, tmp_path
) -> None:
    site = make_site()
    notes = [site.dataset.note(i) for i in range(NOTES)]
    live = NOTES - len(set(site.dataset.deleted_ids(range(NOTES))))
    args = {"note_ids": ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)}
    common = dict(MONGO_URI=mongo_uri, MONGO_DATABASE=mongo_db_name, GEMINI_API_KEYS="p1:test-key-1",
                  ENRICH_BACKEND="gemini")  # fmt: skip
    # 1. Gemini unreachable: every note is stored deferred (due again at once).
    down = sandbox_env(site, GEMINI_BASE_URL=f"http://127.0.0.1:{free_port()}", **common)
    with start_crawl("xhs", args, down, workdir=tmp_path, label="deferring") as first:
        assert first.wait(timeout=300).returncode == 0
    assert mongo_sync.notes.count_documents({"enrichment.status": "deferred"}) == live
    # ... until a moment ago (the deferral of a server error is ten minutes).
    past = datetime.now(UTC) - timedelta(minutes=1)
    mongo_sync.notes.update_many({}, {"$set": {"enrichment.next_attempt_at": past}})
    # 2. Gemini back, slow: a re-crawl and the backlog run meet on the same notes.
    emulator = make_gemini_emulator(None)
    emulator.control(latency=1.5)
    env = sandbox_env(site, GEMINI_BASE_URL=emulator.base_url, **common)
    with (
        start_crawl("enrich", {}, env, workdir=tmp_path, label="enrich") as enrich,
        start_crawl("xhs", args, env, workdir=tmp_path, label="xhs") as crawl,
    ):
        enriched, crawled = enrich.wait(timeout=300), crawl.wait(timeout=300)
    assert enriched.returncode == 0, enriched.stderr[-3000:]
    assert crawled.returncode == 0, crawled.stderr[-3000:]
    assert mongo_sync.notes.count_documents({"enrichment.status": "done"}) == live
    assert _generate_calls(emulator) == live, "a note was paid for twice"
    held = enriched.stats.get("enrich/claims/held_elsewhere", 0) + crawled.stats.get(
        "enrich/claims/held_elsewhere", 0
    )
    hits = enriched.stats.get("enrich/cache_hits", 0) + crawled.stats.get("enrich/cache_hits", 0)
    assert held + hits >= live, "the runs did not meet: the test proves nothing"
    run = mongo_sync.crawl_runs.find_one({"spider": "enrich"})
    assert run["args"] == {"limit": "", "include_local": ""}


async def test_an_enrich_result_for_a_note_recrawled_meanwhile_is_kept(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path
) -> None:
    """The enrich run's unit is older than the re-crawl's (its note was fetched before):
    its fields lose, its fresh Gemini result must not (before: lost, the note stayed in
    the backlog and the next run paid for it again)."""
    fetched = T0
    await run_pipeline(
        build_storage(mongo_uri, mongo_db_name, tmp_path / "a.jsonl"),
        [make_note(1, fetched_at=fetched + timedelta(hours=1), change="unchanged",
                   enrichment=enrichment("deferred", reason="quota"))],
    )  # fmt: skip
    await run_pipeline(
        build_storage(mongo_uri, mongo_db_name, tmp_path / "b.jsonl"),
        [make_note(1, fetched_at=fetched, change="unchanged", from_backlog=True,
                   enrichment=enrichment("done"))],
    )  # fmt: skip
    doc = mongo_sync.notes.find_one({"_id": make_note(1).note_id})
    assert doc["enrichment"]["status"] == "done"
    assert doc["last_crawled_at"].replace(tzinfo=UTC) == fetched + timedelta(hours=1)
