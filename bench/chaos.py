"""Fault injection (chaos) run: one crawl of sandbox notes with every fault at once.

``python -m bench.chaos`` (short: 80 notes by id, what CI runs through tests/chaos/) or
``python -m bench.chaos --full`` (300 notes by id plus up to 40 found by keyword search
in Chromium). Faults:

- site: 10 % 5xx, 5 % responses slower than ``DOWNLOAD_TIMEOUT``, 2 % truncated (short: 5 %)
  images, a captcha burst (HTTP 461 on nearly every request for a few seconds); in
  full mode a signature rotation while the search page is being read;
- Gemini emulator: per-minute 429s (scripted, with a retryDelay), per-day 429s (real
  daily quotas, sized so that about a third of the notes cannot be enriched on day
  one), 503 bursts and 3 % random 503s, 5 % truncated JSON answers (cut short,
  ``MAX_TOKENS``) and 2 % unparsable ones, a retired model
  first in ``GEMINI_MODELS``, an invalid key first in ``GEMINI_API_KEYS``;
- MongoDB: the server (a MongoDB-wire secantus server on a fixed port and data
  directory, ``MONGO_URI`` pointing at it) is stopped and restarted mid-run.

Then time passes: the emulator's clock moves to the next Pacific day, and the dates
the crawler stored (deferred notes' ``next_attempt_at``, the Gemini client's persisted
quota state) are moved back by the same amount, which is what the crawler would see
after the same wait (its processes have no injectable clock). A ``scrapy crawl enrich``
follows. Invariants checked (each violation is reported, nothing is retried):

1. Every live note the crawl did not give up on is stored exactly once in ``notes``
   (a note page that still failed after ``RETRY_TIMES`` retries, or a captcha that
   outlasted ``ANTIBOT_MAX_RETRIES``, is named in the crawl log and legitimately
   absent; deleted notes are absent); nothing else is stored; the crawl exits 0.
2. Every stored note is ``done``, or ``deferred``/``failed`` with a reason.
3. No stored image path leaves the image store; every ``ok`` image's files exist.
4. No API key and no cookie value appears in the crawl logs, in a dump of every
   Mongo collection, or in any file under the run's directories.
5. After the follow-up ``scrapy crawl enrich``, no note is deferred and every note
   deferred after the crawl is ``done`` (or ``failed`` with a reason).

Each fault must also have happened (visible in the site's, the emulator's or the
crawl's counters), otherwise the run proves nothing and that is reported too.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench.common import Check, finish, note_refs, run_crawl
from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from crawler.urls import note_id_from_url
from sandbox.faketime import shifted_clock_env
from sandbox.gemini import GeminiEmulator
from sandbox.gemini.clock import next_pacific_midnight
from sandbox.harness import CrawlResult, MongoServer, sandbox_env
from sandbox.site import DEFAULT_COOKIE, SiteServer

DATABASE = "chaos"
RETIRED_MODEL = "gemini-1.5-flash"
MODELS = f"{RETIRED_MODEL},gemini-2.5-flash-lite,gemini-2.5-flash"
_GAVE_UP = re.compile(r"(?:Gave up retrying <GET |giving up on )(\S+?)>?(?:\s|$)")


@dataclass(frozen=True)
class ChaosConfig:
    """Sizes and fault rates of one run (see the module docstring)."""

    notes: int
    seed: int = 41
    error_rate: float = 0.10
    slow_rate: float = 0.05
    truncated_image_rate: float = 0.02
    download_timeout: float = 2.0
    retry_times: int = 6
    gemini_503_rate: float = 0.03
    gemini_truncated_json_rate: float = 0.05  # JSON cut short, finishReason MAX_TOKENS
    gemini_invalid_json_rate: float = 0.02  # complete but unparsable (a trailing comma)
    mongo_down_s: float = 5.0
    captcha_burst_s: float = 2.5
    # Keyword discovery in Chromium alongside the note ids, with a signature rotation
    # once the first signed search call was answered (None: note ids only).
    discovery_keyword: str | None = None
    discovery_notes: int = 0

    @property
    def daily_requests(self) -> int:
        """Requests per day per (project, model): 2 projects × 2 models × this ≈ 70 % of
        the notes, so day one defers some notes and day two has room for all of them."""
        return max(5, round(self.notes * 0.18))


# 80 notes fetch ~260 pictures: at 2 % about one short run in 200 truncates none and the
# "an image was truncated" check fails for want of the fault; at 5 %, one in ~700,000.
SHORT = ChaosConfig(notes=80, truncated_image_rate=0.05)
FULL = ChaosConfig(notes=300, discovery_keyword="大模型", discovery_notes=40)


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


@dataclass(frozen=True)
class Secrets:
    """Raw strings that must never be written anywhere."""

    keys: Mapping[str, str]  # role → raw API key
    cookies: Mapping[str, str]  # cookie name → value

    @classmethod
    def generate(cls, *, sandbox_login: bool) -> Secrets:
        """Random keys; random cookie values, or the sandbox's login cookie (the only one
        its search pages accept) when discovery is used."""

        def key() -> str:
            return "AIzaSy" + secrets.token_urlsafe(25)[:33]

        cookies = (
            dict(DEFAULT_COOKIE)
            if sandbox_login
            else {
                "a1": "chaosA1" + secrets.token_hex(12),
                "web_session": "chaosWS" + secrets.token_hex(12),
            }
        )
        return cls(
            keys={"alpha-1": key(), "alpha-2": key(), "beta-1": key(), "invalid": key()},
            cookies=cookies,
        )

    @property
    def api_keys_setting(self) -> str:
        k = self.keys
        return f"gamma:{k['invalid']},alpha:{k['alpha-1']},alpha:{k['alpha-2']},beta:{k['beta-1']}"

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def needles(self) -> dict[str, bytes]:
        """What to look for: each raw key, and each cookie value — as ``name=value`` when
        the value is the sandbox's plain word "sandbox", which names modules and paths."""
        found = {f"key:{role}": raw.encode() for role, raw in self.keys.items()}
        for name, value in self.cookies.items():
            needle = f"{name}={value}" if value == DEFAULT_COOKIE.get(name) else value
            found[f"cookie:{name}"] = needle.encode()
        return found


def emulator_config(config: ChaosConfig, keys: Mapping[str, str]) -> dict[str, Any]:
    daily = {"rpd": config.daily_requests}
    return {
        "seed": config.seed,
        "projects": {
            "alpha": {"keys": [keys["alpha-1"], keys["alpha-2"]], "default_limits": daily},
            "beta": {"keys": [keys["beta-1"]], "default_limits": daily},
            "gamma": {"keys": [{"key": keys["invalid"], "status": "invalid"}]},
        },
        "latency": {"min": 0.0, "max": 0.05},
        "rates": {
            "503": config.gemini_503_rate,
            "max_tokens": config.gemini_truncated_json_rate,
            "invalid_json": config.gemini_invalid_json_rate,
        },
        # The first calls: a 503 burst, then per-minute 429s with a short retryDelay.
        "script": [
            {"outcome": "503", "times": 3},
            {"outcome": "429_minute", "retry_delay": 2, "times": 2},
        ],
    }


class FaultSchedule:
    """Mid-run faults, fired from the waiting thread as the crawl makes progress.

    Progress is the number of note pages the site answered; each fault fires once its
    share of the notes is reached: captcha burst at 20 %, a Gemini 503 + per-minute 429
    burst at 35 %, the MongoDB restart at 50 %; with discovery, the signature rotation as
    soon as the site answered one signed search call.
    """

    def __init__(
        self,
        config: ChaosConfig,
        site: SiteServer,
        emulator: GeminiEmulator,
        mongo: MongoServer,
    ) -> None:
        self.config = config
        self.site = site
        self.emulator = emulator
        self.mongo = mongo
        self.fired: dict[str, float] = {}

    def _progress(self) -> float:
        return self.site.stats().get("note_ok", 0) / self.config.notes

    def run(self, proc: Any) -> None:
        started = time.monotonic()
        while proc.poll() is None:
            progress = self._progress()
            if progress >= 0.2 and "captcha_burst" not in self.fired:
                self.fired["captcha_burst"] = time.monotonic() - started
                self.site.control(captcha_threshold=1, captcha_window=60)
                time.sleep(self.config.captcha_burst_s)
                self.site.control(captcha_threshold=0)
            if progress >= 0.35 and "gemini_burst" not in self.fired:
                self.fired["gemini_burst"] = time.monotonic() - started
                self.emulator.control(
                    script=[
                        {"outcome": "503", "times": 3},
                        {"outcome": "429_minute", "retry_delay": 1, "times": 2},
                    ]
                )
            if self.config.discovery_keyword and "signature_rotation" not in self.fired:
                # The site rotates right after the page's first answered search call, so
                # the page's next call is signed by a script that is no longer valid.
                self.fired["signature_rotation"] = time.monotonic() - started
                self.site.control(rotate_after_calls=1)
            if progress >= 0.5 and "mongo_restart" not in self.fired:
                self.fired["mongo_restart"] = time.monotonic() - started
                self.mongo.restart(self.config.mongo_down_s)
            time.sleep(0.05)


def gave_up_note_ids(log: str) -> set[str]:
    """Note ids whose page the crawl gave up on (retries or captchas exhausted)."""
    ids = set()
    for match in _GAVE_UP.finditer(log):
        note_id = note_id_from_url(match.group(1))
        if note_id:
            ids.add(note_id)
    return ids


def check_image_paths(notes: Iterable[Mapping[str, Any]], store: Path) -> list[str]:
    """Stored paths that leave the store, are absolute or name a missing file, and any
    symlink inside the store (a way out of it)."""
    root = store.resolve()
    problems = []
    for note in notes:
        for index, image in enumerate(note.get("images") or []):
            for name in ("path", "model_path"):
                value = image.get(name)
                if not value:
                    continue
                target = (root / value).resolve()
                if Path(value).is_absolute() or not target.is_relative_to(root):
                    problems.append(
                        f"{note['_id']} image {index} {name} outside the store: {value!r}"
                    )
                elif image.get("status") == "ok" and not target.is_file():
                    problems.append(f"{note['_id']} image {index} {name} missing: {value!r}")
    problems += [f"symlink in the store: {p}" for p in store.rglob("*") if p.is_symlink()]
    return problems


def scan_for_secrets(
    needles: Mapping[str, bytes], texts: Mapping[str, bytes], roots: Iterable[Path]
) -> list[str]:
    """Where any needle occurs: in the given texts and in every file under ``roots``."""
    found = []
    for label, blob in texts.items():
        found += [f"{name} in {label}" for name, needle in needles.items() if needle in blob]
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            blob = path.read_bytes()
            found += [f"{name} in {path}" for name, needle in needles.items() if needle in blob]
    return found


def mongo_dump(db: Any) -> bytes:
    """Every document of every collection as JSON lines."""
    lines = []
    for name in sorted(db.list_collection_names()):
        for doc in db[name].find():
            lines.append(json.dumps({"collection": name, **doc}, default=str, ensure_ascii=False))
    return "\n".join(lines).encode()


def _state(doc: Mapping[str, Any]) -> EnrichmentState | None:
    return EnrichmentState.from_document(doc.get("enrichment"))


def _status(state: EnrichmentState | None) -> str:
    return "none" if state is None else state.status.value


def _crawl_settings(config: ChaosConfig, work: Path) -> dict[str, str]:
    return {
        "CONCURRENT_REQUESTS": "16",
        "CONCURRENT_REQUESTS_PER_DOMAIN": "8",
        "DOWNLOAD_TIMEOUT": str(config.download_timeout),
        # Image downloads carry their own timeout (no longer derived from DOWNLOAD_TIMEOUT).
        "MEDIA_DOWNLOAD_TIMEOUT": str(round(config.download_timeout)),  # a whole number
        "RETRY_TIMES": str(config.retry_times),
        "ANTIBOT_COOLDOWN": "2",
        "MONGO_PROBE_INTERVAL": "2",
        "MONGO_SERVER_SELECTION_TIMEOUT_MS": "1000",
        "MONGO_RETRY_TIMES": "1",
        "MONGO_FLUSH_INTERVAL": "1",
        "RUN_REPORT_DIR": str(work / "reports"),
    }


def run_chaos(config: ChaosConfig, work: Path) -> ChaosReport:
    """The whole run in ``work`` (created if needed); see the module docstring."""
    report = ChaosReport()
    secret = Secrets.generate(sandbox_login=config.discovery_keyword is not None)
    store = work / "images"
    with (
        # Room past the requested ids, so that a keyword also finds notes not asked for.
        SiteServer(
            seed=config.seed, notes=config.notes + 20 + 10 * config.discovery_notes, port=0
        ) as site,
        GeminiEmulator(config=emulator_config(config, secret.keys), port=0) as emulator,
        MongoServer(work / "mongo") as mongo,
    ):
        site.control(
            error_rate=config.error_rate,
            slow_rate=config.slow_rate,
            slow_seconds=config.download_timeout * 1.75,
            truncated_image_rate=config.truncated_image_rate,
        )
        env = sandbox_env(
            site,
            XHS_COOKIES=secret.cookie_header,
            MONGO_URI=mongo.uri,
            MONGO_DATABASE=DATABASE,
            GEMINI_BASE_URL=emulator.base_url,
            GEMINI_API_KEYS=secret.api_keys_setting,
            GEMINI_MODELS=MODELS,
            ENRICH_BACKEND="gemini",
        )
        notes = [site.dataset.note(i) for i in range(config.notes)]
        crawl_args = {"note_ids": note_refs(notes)}
        if config.discovery_keyword:
            crawl_args["keywords"] = config.discovery_keyword
            crawl_args["max_notes"] = str(config.notes + config.discovery_notes)
        schedule = FaultSchedule(config, site, emulator, mongo)
        crawl = run_crawl(
            "xhs",
            crawl_args,
            env,
            workdir=work,
            label="crawl",
            settings=_crawl_settings(config, work),
            while_running=schedule.run,
            timeout=1200,
        )
        site_stats = site.stats()
        site.control(error_rate=0, slow_rate=0, truncated_image_rate=0)
        client: MongoClient = MongoClient(mongo.uri, serverSelectionTimeoutMS=5000)
        db = client[DATABASE]
        try:
            _check_crawl(report, config, site, crawl, db, store, schedule, site_stats)
            deferred_ids = {
                d["_id"]
                for d in db.notes.find(
                    {"enrichment.status": EnrichmentStatus.DEFERRED.value}, {"_id": 1}
                )
            }
            now = emulator.clock.now()
            shift = next_pacific_midnight(now.timestamp()) - now + timedelta(minutes=1)
            emulator.clock.advance(shift.total_seconds())
            # The follow-up runs "the next day": its wall clock agrees with the emulator's.
            ahead = (emulator.clock.now() - datetime.now(UTC)).total_seconds()
            follow = run_crawl(
                "enrich",
                {},
                shifted_clock_env(env, ahead),
                workdir=work,
                label="enrich",
                settings=_crawl_settings(config, work),
                timeout=900,
            )
            _check_follow_up(report, follow, db, deferred_ids, clock_ahead_s=ahead)
            _check_emulator(report, emulator)
            leaks = scan_for_secrets(
                secret.needles(),
                {
                    "crawl log": crawl.log.encode(),
                    "enrich log": follow.log.encode(),
                    "mongo dump": mongo_dump(db),
                },
                [work],
            )
            report.figures["secret_leaks"] = len(leaks)
            report.require(not leaks, f"secrets written out: {leaks[:10]}")
        finally:
            client.close()
    return report


def _check_crawl(
    report: ChaosReport,
    config: ChaosConfig,
    site: SiteServer,
    crawl: CrawlResult,
    db: Any,
    store: Path,
    schedule: FaultSchedule,
    site_stats: Mapping[str, int],
) -> None:
    live = {
        site.dataset.note(i).note_id for i in range(config.notes) if not site.dataset.is_deleted(i)
    }
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
            if k.startswith(("incremental/errors/", "enrich/cache_errors", "storage/errors/"))
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
    wanted = {"captcha_burst", "gemini_burst", "mongo_restart"}
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


def _check_follow_up(
    report: ChaosReport,
    follow: CrawlResult,
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
        statuses.get("deferred", 0) == 0,
        f"{statuses.get('deferred', 0)} notes still deferred after the follow-up",
    )
    report.require(not unresolved, f"deferred notes not completed: {sorted(unresolved)[:10]}")


def _check_emulator(report: ChaosReport, emulator: GeminiEmulator) -> None:
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
    report.require(len(invalid) <= 4, f"the invalid key was tried {len(invalid)} times")


def checks_of(report: ChaosReport) -> list[Check]:
    return [
        Check(
            "chaos run: every invariant holds (notes stored once, statuses with reasons, "
            "paths inside the store, no secret written, deferred notes completed)",
            "0 violated",
            f"{len(report.failures)} violated; {report.figures.get('stored_notes')} notes "
            f"stored, {report.figures.get('deferred_after_crawl')} deferred then completed",
            not report.failures,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="300 notes")
    size.add_argument("--quick", action="store_true", help="80 notes (the default, as in CI)")
    parser.add_argument("--workdir", type=Path, help="keep the run's files here")
    args = parser.parse_args(argv)
    config = FULL if args.full else SHORT
    started = time.monotonic()
    if args.workdir:
        report = run_chaos(config, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
            report = run_chaos(config, Path(tmp))
    for failure in report.failures:
        print(f"VIOLATED: {failure}")
    return finish(
        "chaos",
        quick=not args.full,
        started=started,
        figures=report.figures,
        checks=checks_of(report),
        notes=[f"violated: {f}" for f in report.failures],
    )


if __name__ == "__main__":
    raise SystemExit(main())
