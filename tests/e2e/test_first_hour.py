"""The first hour of a user (issue 13), through real `scrapy crawl` runs on the sandbox:
what people paste (share text, a share link through the sandbox's redirect host, a bare
id, a URL without a token, with and without the note stored), the run summary, and a
60-note crawl's progress lines (the first within 10 s of the start, with an ETA), and the
demo's `--gemini` after local runs upgrading their results."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime

import pytest

from crawler.report import display_width
from sandbox.crawlenv import isolated_environ
from sandbox.faketime import shifted_clock_env
from sandbox.harness import ROOT, sandbox_env

pytestmark = pytest.mark.slow

LOG_TIME = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) "


def _at(log: str, pattern: str) -> list[datetime]:
    return [
        datetime.fromisoformat(m.group(1))
        for m in re.finditer(LOG_TIME + r"\[[^\]]+\] \w+: " + pattern, log, re.M)
    ]


def test_pasted_inputs_crawl_the_notes_they_name(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    site = make_site()
    env = sandbox_env_for(site, mongo_uri, mongo_db_name)
    shared, linked, bare, unknown = (site.dataset.note(i) for i in range(4))
    pasted = [
        site.share_text(shared.note_id),  # the app's share text, short link inside
        site.short_link_url(linked.note_id),  # a share link, followed once
        f"{bare.note_id}:{bare.xsec_token}",  # a bare id in urls=
        f"{site.url}/explore/{unknown.note_id}",  # no token, note never stored
    ]
    assert "," not in pasted[0]  # entries are split on ASCII commas; the app uses ，
    first = scrapy_crawl("xhs", {"urls": ",".join(pasted)}, env)
    assert first.returncode == 0, first.log[-4000:]
    found = {item["note_id"]: item["found_via"] for item in first.items}
    assert found == {
        shared.note_id: "short_link",
        linked.note_id: "short_link",
        bare.note_id: "note_id",
    }
    stored = mongo_sync.notes.find_one({"_id": linked.note_id})
    assert stored["xsec_token"] == linked.xsec_token  # the token the redirect carried
    assert f"note {unknown.note_id} has no xsec_token and is not stored yet" in first.log
    assert "Share > Copy link" in first.log
    assert first.stats["xhs/parse_error/xsec_token_missing"] == 1
    # the run summary, above Scrapy's stats dump
    summary = first.log.index("Run summary")
    assert summary < first.log.index("Dumping Scrapy stats")
    block = first.log[summary:]
    assert re.search(r"notes\s+3 stored: 3 new, 0 changed, 0 unchanged", block), block[:3000]
    assert "refused     1 input(s):" in block and unknown.note_id in block
    assert "python -m crawler.web" in block and "report" in block
    assert shared.title[:8] in block

    # the same note without its token, now that the store knows it; and its URL form too
    again = scrapy_crawl(
        "xhs", {"urls": f"{bare.note_id},{site.url}/explore/{linked.note_id}"}, env
    )
    assert again.returncode == 0, again.log[-4000:]
    assert {item["note_id"] for item in again.items} == {bare.note_id, linked.note_id}
    assert "xsec_token_missing" not in again.log
    assert re.search(r"notes\s+2 stored: 0 new, 0 changed, 2 unchanged", again.log)


def test_summary_titles_line_up_by_display_width(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name
) -> None:
    site = make_site()
    env = sandbox_env_for(site, mongo_uri, mongo_db_name)
    notes = [site.dataset.note(i) for i in range(5)]
    result = scrapy_crawl(
        "xhs", {"note_ids": ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)}, env
    )
    assert result.returncode == 0, result.log[-3000:]
    block = result.log[result.log.index("Run summary") :]
    labels = [
        re.search(r"\b(skipped|done|pending|failed|deferred)/\w+", line)
        for line in block.splitlines()
    ]
    rows = [(line, m) for line, m in zip(block.splitlines(), labels, strict=True) if m]
    assert len(rows) == 5, block[:3000]
    assert any(display_width(line[: m.start()]) != m.start() for line, m in rows)  # CJK titles
    # the enrichment column starts at the same display column on every row
    assert len({display_width(line[: m.start()]) for line, m in rows}) == 1, rows


def test_sixty_note_crawl_shows_progress_within_10_s_with_an_eta(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name
) -> None:
    site = make_site()
    env = sandbox_env_for(site, mongo_uri, mongo_db_name)
    live = [i for i in range(80) if not site.dataset.is_deleted(i)][:60]
    notes = [site.dataset.note(i) for i in live]
    ids = ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)
    result = scrapy_crawl("xhs", {"note_ids": ids}, env, settings={"PROGRESS_INTERVAL": "2"})
    assert result.returncode == 0, result.log[-3000:]
    assert len(result.items) == 60
    opened = _at(result.log, r"Spider opened")[0]
    lines = _at(result.log, r"Progress: ")
    assert lines and (lines[0] - opened).total_seconds() <= 10, result.log[-3000:]
    progress = re.findall(
        r"Progress: (\d+)/(\d+) notes \((\d+)%\), [\d.]+/min, ETA (\S+)", result.log
    )
    assert all(target == "60" for _, target, _, _ in progress), progress
    assert any(re.fullmatch(r"\d+[hms]", eta) for *_, eta in progress), progress  # an ETA in time
    for stage in ("listed", "fetched", "images", "enriched", "stored", "deferred"):
        assert f"{stage} " in result.log


def sandbox_env_for(site, mongo_uri: str, db: str) -> dict[str, str]:
    return sandbox_env(site, MONGO_URI=mongo_uri, MONGO_DATABASE=db, ENRICH_BACKEND="off")


def test_demo_gemini_after_local_runs_upgrades_the_local_results(
    tmp_path, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    env = {
        **isolated_environ(),
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": mongo_db_name,
        "IMAGES_STORE": str(tmp_path / "images"),
        "MONGO_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "RUN_REPORT_DIR": str(tmp_path / "reports"),
    }

    def demo(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sandbox.demo", "--max-notes", "2", "--notes", "80", *extra],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    local = demo()
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    assert "scrapy crawl enrich -a include_local=1" in local.stdout  # the way to upgrade
    backends = {d["enrichment"]["backend"] for d in mongo_sync.notes.find({}, {"enrichment": 1})}
    assert backends == {"local"}
    upgraded = demo("--gemini")
    out = upgraded.stdout + upgraded.stderr
    assert upgraded.returncode == 0, out[-4000:]
    assert "upgrading them with Gemini: .venv/bin/scrapy crawl enrich -a include_local=1" in out
    assert re.search(r"enrich: 2 stored note\(s\) handled", out), out[-4000:]
    docs = list(mongo_sync.notes.find({}, {"enrichment": 1}))
    assert len(docs) == 2
    assert {(d["enrichment"]["status"], d["enrichment"]["backend"]) for d in docs} == {
        ("done", "gemini")
    }


def test_a_crawl_the_next_day_sees_grown_counts_in_note_stats(
    make_site, scrapy_crawl, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    """Sandbox realism for analysts: the same notes crawled the next day (the crawl's clock
    a day ahead under libfaketime, the site showing tomorrow) get a second note_stats row
    each, with tomorrow's counts, and likes that rose."""
    site = make_site()
    ds = site.dataset
    day = ds.today()
    steady = [
        i
        for i in range(1, 200)
        if not ds.reposted(i, day, day + 1) and not ds.is_deleted(i)
        and ds.note(i, day + 1).interact_expected["liked"]
        > ds.note(i, day).interact_expected["liked"]  # shown exactly, or a bucket that moved
    ][:6]  # fmt: skip
    assert len(steady) == 6
    notes = [ds.note(i, day) for i in steady]
    refs = {"note_ids": ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)}
    env = sandbox_env_for(site, mongo_uri, mongo_db_name)
    first = scrapy_crawl("xhs", refs, env)
    assert first.returncode == 0, first.log[-4000:]
    site.control(day_offset=1)
    later = scrapy_crawl("xhs", refs, shifted_clock_env(env, 86400 + 60))
    assert later.returncode == 0, later.log[-4000:]
    for i, note in zip(steady, notes, strict=True):
        rows = list(mongo_sync.note_stats.find({"note_id": note.note_id}).sort("crawled_at", 1))
        assert len(rows) == 2, rows
        assert (rows[1]["crawled_at"] - rows[0]["crawled_at"]).total_seconds() >= 86400
        assert rows[0]["liked"] == note.interact_expected["liked"]
        assert rows[1]["liked"] == ds.note(i, day + 1).interact_expected["liked"] > rows[0]["liked"]
        stored = mongo_sync.notes.find_one({"_id": note.note_id}, {"interact": 1})
        assert stored["interact"]["liked"] == rows[1]["liked"]
