"""The chaos run's verdicts: each ``check_*`` reads what one phase left behind (the
crawls' results, the database, the stores, the tap's records) and adds figures and
violations to the :class:`ChaosReport`. The pure checkers they use are in
:mod:`bench.chaos_checks`; the phases themselves in :mod:`bench.chaos`.
"""

from __future__ import annotations

import itertools
import json
import signal
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.chaos_checks import check_image_paths, gave_up_note_ids
from bench.chaos_faults import GeminiTap, SeededSpool, StoreVolume
from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from pipelines.enrichment.cache import journal_beside
from sandbox.gemini import GeminiEmulator
from sandbox.harness import CrawlResult
from sandbox.site import SiteServer

if TYPE_CHECKING:
    from bench.chaos import ChaosConfig, FaultSchedule, Run

RETIRED_MODEL = "gemini-1.5-flash"
# The limits of issue 18 (crawler/settings.py defaults).
MAX_IMAGES_PER_NOTE = 18
MAX_TEXT_CHARS = 20_000


@dataclass
class ChaosReport:
    """Figures of the run and every violated invariant (empty: all held)."""

    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            self.failures.append(message)

    def describe(self) -> str:
        lines = [json.dumps(self.figures, indent=1, ensure_ascii=False, default=str)]
        lines += [f"VIOLATED: {f}" for f in self.failures]
        return "\n".join(lines)


def _state(doc: Mapping[str, Any]) -> EnrichmentState | None:
    return EnrichmentState.from_document(doc.get("enrichment"))


def _status(state: EnrichmentState | None) -> str:
    return "none" if state is None else state.status.value


def check_restarts(report: ChaosReport, runs: list[Run], db: Any) -> None:
    """No dead run blocks the next one; kills and forced stops end as they should."""
    for before, after in itertools.pairwise(runs[:4]):
        if before.fault is None:
            continue
        code = after.result.returncode
        report.require(
            code == 0 or (after.fault is not None and code != 3),
            f"{after.label} after {before.label}'s {before.fault.kind}: exit status {code}",
        )
        report.require(
            "was held by a run that is gone" in after.result.log,
            f"{after.label} did not take {before.label}'s dead lease over at once",
        )
    for run in runs:
        if run.fault is None:
            continue
        code = run.result.returncode
        if run.fault.kind == "kill":
            report.require(code == -signal.SIGKILL, f"{run.label} killed, exit status {code}")
        else:
            report.require(
                "forcing unclean shutdown" in run.result.log,
                f"{run.label}: the forced stop was not a forced one",
            )
            report.require(
                code not in (0, None), f"{run.label} forced stop exited {code}, not non-zero"
            )
    statuses = Counter(d.get("status") for d in db.crawl_runs.find({}, {"status": 1}))
    leases = db.leases.count_documents({})
    report.figures["crawl_runs"] = dict(statuses)
    report.figures["leases_left"] = leases
    crashed = sum(1 for run in runs if run.fault is not None)
    report.require(statuses.get("running", 0) == 0, f"crawl_runs still running: {dict(statuses)}")
    report.require(
        statuses.get("crashed", 0) == crashed,
        f"{statuses.get('crashed', 0)} crawl_runs closed as crashed, not {crashed}",
    )
    report.require(leases == 0, f"{leases} leases left after every run ended")


def check_spool(report: ChaosReport, spool: Path, seeded: SeededSpool, db: Any) -> None:
    bad = spool.with_name(spool.name + ".bad")
    bad_lines = len(bad.read_text().splitlines()) if bad.exists() else 0
    pending = [
        p.name for p in spool.parent.glob(spool.name + "*") if p != bad and p.stat().st_size > 0
    ]
    stored = {d["_id"]: _state(d) for d in db.notes.find({"_id": {"$in": list(seeded.good_ids)}})}
    # Cache writes an outage kept from MongoDB are journaled beside the spool: written
    # by the end (by the run itself or the next one's open), none left waiting.
    journal_left = journal_beside(spool).pending()
    report.require(not journal_left, "enrichment cache writes left in the journal at the end")
    report.figures["spool"] = {
        "cache_journal_left": journal_left,
        "seeded_valid": len(seeded.good_ids),
        "seeded_invalid_or_torn": seeded.bad_lines,
        "set_aside": bad_lines,
        "valid_stored": len(stored),
        "left_pending": pending,
    }
    report.require(
        bad_lines == seeded.bad_lines, f"{bad_lines} lines in {bad.name}, not {seeded.bad_lines}"
    )
    report.require(not pending, f"spool records never replayed: {pending}")
    report.require(
        set(stored) == set(seeded.good_ids),
        f"spooled notes not stored: {sorted(set(seeded.good_ids) - set(stored))}",
    )


def check_store(report: ChaosReport, volume: StoreVolume, db: Any, logs: str) -> None:
    """The store ran out of space while the crawls were writing to it."""
    failed = Counter()
    for doc in db.notes.find({}, {"images": 1}):
        for image in doc.get("images") or []:
            if image.get("status") == "failed":
                failed[str(image.get("error") or "").split(":", 1)[0]] += 1
    report.figures["image_store"] = {
        "mode": volume.mode,
        "tmpfs": volume.mounted or volume.why_not,
        "shrunk_to_bytes": volume.filled_at_bytes,
        "failed_images_by_reason": dict(failed),
        "writes_refused_for_space_in_logs": logs.count("No space left on device"),
    }
    report.require(volume.filled_at_bytes is not None, "the image store never ran out of space")
    report.require(
        "No space left on device" in logs, "no write met the full image store (no ENOSPC)"
    )


def check_hostile(
    report: ChaosReport, db: Any, tap: GeminiTap, hostile: Mapping[int, str], site: SiteServer
) -> None:
    ids = {kind: site.dataset.note(i).note_id for i, kind in hostile.items()}
    docs = {d["_id"]: d for d in db.notes.find({"_id": {"$in": list(ids.values())}})}
    figures: dict[str, Any] = {}
    many = docs.get(ids["many_images"])
    if many is not None:
        images = many.get("images") or []
        fetched = [i for i in images if i.get("status") != "skipped"]
        capped = [i for i in images if "image_cap" in str(i.get("error") or "")]
        figures["many_images"] = {"listed": len(images), "fetched": len(fetched),
                                  "skipped_for_the_cap": len(capped)}  # fmt: skip
        report.require(
            len(fetched) <= MAX_IMAGES_PER_NOTE, f"{len(fetched)} pictures of one note fetched"
        )
        report.require(
            len(capped) >= len(images) - MAX_IMAGES_PER_NOTE,
            "pictures over the cap without a reason",
        )
    huge_sent = [r.text_chars for r in tap.snapshot()
                 if any(c.note_id == ids["huge_desc"] for c in r.carried)]  # fmt: skip
    figures["huge_desc_chars_sent"] = huge_sent
    report.require(
        all(n <= MAX_TEXT_CHARS + 5_000 for n in huge_sent),
        f"the megabyte desc went to Gemini at {max(huge_sent, default=0)} characters",
    )
    surrogate = docs.get(ids["lone_surrogate"])
    figures["lone_surrogate_title"] = surrogate.get("title") if surrogate else None
    report.require(
        surrogate is not None and "\ufffd" in (surrogate.get("title") or ""),
        "the lone-surrogate note is not stored with U+FFFD",
    )
    report.require(
        set(docs) == set(ids.values()), f"hostile notes not stored: {set(ids.values()) - set(docs)}"
    )
    report.figures["hostile"] = figures


def check_crawl(
    report: ChaosReport,
    config: ChaosConfig,
    site: SiteServer,
    crawl: CrawlResult,
    db: Any,
    store: Path,
    schedule: FaultSchedule,
    site_stats: Mapping[str, int],
    seeded: SeededSpool,
) -> None:
    live = {
        site.dataset.note(i).note_id for i in range(config.notes) if not site.dataset.is_deleted(i)
    }
    live |= set(seeded.good_ids)
    found = set()
    if config.discovery_keyword:
        found = {
            item["note_id"]
            for item in crawl.items
            if item.get("found_via") == f"keyword:{config.discovery_keyword}"
        }
        matching = set(site.dataset.search(config.discovery_keyword))
        report.require(bool(found), "discovery found no note")
        report.require(
            found <= matching, f"discovered notes not matching: {sorted(found - matching)[:5]}"
        )
        report.require("signature_rejected" in crawl.log, "the signature rotation was not seen")
        report.figures["discovered_notes"] = len(found)
        live |= found
    gave_up = gave_up_note_ids(crawl.log)
    expected = live - gave_up
    docs = list(db.notes.find({}, {"images": 1, "enrichment": 1, "note_id": 1}))
    stored = [d["_id"] for d in docs]
    statuses = Counter(_status(_state(d)) for d in docs)
    stats = crawl.stats
    report.figures.update(
        notes_requested=config.notes,
        live_notes=len(live),
        gave_up_notes=sorted(gave_up),
        stored_notes=len(stored),
        crawl_exit_status=crawl.returncode,
        crawl_elapsed_s=round(crawl.elapsed_s, 1),
        statuses_after_crawl=dict(statuses),
        faults_fired_at_s={k: round(v, 1) for k, v in schedule.fired.items()},
        mongo_restarts=schedule.mongo.restarts,
        site={
            k: v
            for k, v in sorted(site_stats.items())
            if k.endswith(("_error", "_captcha", "_truncated", "_total", "_ok"))
        },
        retries={k: v for k, v in stats.items() if k.startswith("retry/")},
        antibot={k: v for k, v in stats.items() if k.startswith("antibot/")},
        storage={k: v for k, v in stats.items() if k.startswith("storage/")},
        mongo_outage_seen_by={
            k: v
            for k, v in stats.items()
            if k.startswith(
                (
                    "incremental/errors/",
                    "enrich/cache_errors",
                    "enrich/cache_journal",
                    "enrich/cache_replayed",
                    "enrich/deferred_cache_unavailable",
                    "storage/errors/",
                )
            )
        },
        media_failed={k: v for k, v in stats.items() if k.startswith("media/images_failed/")},
        note_stats_duplicates=sum(
            1
            for row in db.note_stats.aggregate(
                [
                    {"$group": {"_id": {"n": "$note_id", "r": "$crawl_run_id"}, "c": {"$sum": 1}}},
                    {"$match": {"c": {"$gt": 1}}},
                ]
            )
        ),
    )
    report.require(crawl.returncode == 0, f"crawl exit status {crawl.returncode}, not 0")
    report.require(len(stored) == len(set(stored)), "a note is stored more than once")
    report.require(
        all(d.get("note_id", d["_id"]) == d["_id"] for d in docs),
        "a note's note_id differs from its _id",
    )
    missing, extra = expected - set(stored), set(stored) - live
    report.require(
        not missing, f"{len(missing)} notes served but not stored: {sorted(missing)[:10]}"
    )
    report.require(not extra, f"stored notes that are not live notes: {sorted(extra)[:10]}")
    report.require(
        len(gave_up) <= max(2, config.notes // 20),
        f"the crawl gave up on {len(gave_up)} notes: retries too low to prove much",
    )
    settled = (EnrichmentStatus.DONE, EnrichmentStatus.DEFERRED, EnrichmentStatus.FAILED)
    for doc in docs:
        state = _state(doc)
        if state is None or state.status not in settled:
            report.failures.append(f"{doc['_id']}: enrichment status {_status(state)!r}")
        elif state.status is not EnrichmentStatus.DONE and not state.reason:
            report.failures.append(f"{doc['_id']}: {state.status} without a reason")
    report.require(statuses.get("deferred", 0) > 0, "no note was deferred: per-day quota not hit")
    report.require(statuses.get("done", 0) > 0, "no note was enriched")
    problems = check_image_paths(db.notes.find({}, {"images": 1}), store)
    report.require(not problems, f"image paths: {problems[:10]}")
    # The faults happened (else the run proves nothing).
    report.require(
        site_stats.get("note_error", 0) + site_stats.get("cdn_error", 0) > 0, "no 5xx was served"
    )
    report.require(
        any("TimeoutError" in k for k in stats if k.startswith("retry/reason_count/")),
        "no download timed out",
    )
    report.require(site_stats.get("cdn_truncated", 0) > 0, "no image was truncated")
    report.require(stats.get("antibot/captcha", 0) > 0, "no captcha was answered")
    wanted = {"captcha_burst", "gemini_burst", "mongo_restart", "store_full"}
    if config.discovery_keyword:
        wanted.add("signature_rotation")
    report.require(
        set(schedule.fired) == wanted,
        f"faults fired: {sorted(schedule.fired)}",
    )
    outage = sum(
        v
        for k, v in stats.items()
        if k.startswith(
            (
                "storage/spooled",
                "storage/retries",
                "storage/errors/",
                "incremental/errors/",
                "enrich/cache_errors",
            )
        )
    )
    report.require(outage > 0, "the MongoDB restart went unnoticed by the crawl")
    report.require(
        stats.get("storage/spooled", 0) <= stats.get("storage/replayed", 0),
        "spooled notes were not replayed by the end of the crawl",
    )


def check_follow_up(
    report: ChaosReport,
    follow: CrawlResult,
    next_day: CrawlResult,
    db: Any,
    deferred_ids: set[str],
    *,
    clock_ahead_s: float,
) -> None:
    after = {d["_id"]: _state(d) for d in db.notes.find({}, {"enrichment": 1})}
    statuses = Counter(_status(state) for state in after.values())

    def resolved(state: EnrichmentState | None) -> bool:
        if state is None:
            return False
        failed_with_reason = state.status is EnrichmentStatus.FAILED and bool(state.reason)
        return state.status is EnrichmentStatus.DONE or failed_with_reason

    unresolved = [i for i in deferred_ids if not resolved(after.get(i))]
    report.figures.update(
        deferred_after_crawl=len(deferred_ids),
        enrich_clock_ahead_s=round(clock_ahead_s),
        enrich_exit_status=follow.returncode,
        enrich_items=follow.stats.get("item_scraped_count", 0),
        statuses_after_enrich=dict(statuses),
    )
    report.require(follow.returncode == 0, f"scrapy crawl enrich exited {follow.returncode}")
    report.require(
        next_day.returncode == 0, f"the next day's scrapy crawl xhs exited {next_day.returncode}"
    )
    report.require(
        statuses.get("deferred", 0) == 0,
        f"{statuses.get('deferred', 0)} notes still deferred after the follow-up",
    )
    report.require(not unresolved, f"deferred notes not completed: {sorted(unresolved)[:10]}")


def check_emulator(report: ChaosReport, emulator: GeminiEmulator, *, processes: int) -> None:
    records = [r for r in emulator.requests if r.method == "generateContent"]
    kinds = Counter(r.error or str(r.status) for r in records)
    report.figures["gemini"] = {
        "generate_calls": len(records),
        "outcomes": dict(kinds),
        "models_used": dict(Counter(r.model for r in records if r.status == 200)),
    }
    report.require(kinds.get("quota_per_day", 0) > 0, "no per-day 429")
    report.require(kinds.get("quota_per_minute", 0) > 0, "no per-minute 429")
    report.require(kinds.get("overloaded", 0) > 0, "no 503")
    report.require(kinds.get("max_tokens", 0) > 0, "no truncated JSON answer")
    report.require(
        all(r.model != RETIRED_MODEL for r in records if r.status == 200),
        "the retired model answered",
    )
    invalid = [r for r in emulator.requests if r.error == "api_key_invalid"]
    report.require(len(invalid) >= 1, "the invalid key was never tried")
    report.require(
        len(invalid) <= 2 * processes,
        f"the invalid key was tried {len(invalid)} times by {processes} processes",
    )
