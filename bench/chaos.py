"""Fault injection (chaos) run: crawls of sandbox notes with every fault at once,
processes killed among them.

``python -m bench.chaos`` (short: 80 notes by id, what CI runs through tests/chaos/) or
``python -m bench.chaos --full`` (300 notes by id plus up to 40 found by keyword search
in Chromium). Faults:

- site: 10 % 5xx, 5 % responses slower than ``DOWNLOAD_TIMEOUT``, 2 % truncated (short: 5 %)
  images, a captcha burst (HTTP 461 on nearly every request for a few seconds); in
  full mode a signature rotation while the search page is being read; three hostile
  notes among those asked for: 300 pictures, a lone UTF-16 surrogate in the title and
  desc, a megabyte of desc (the site's ``hostile`` knob);
- Gemini emulator: per-minute 429s (scripted, with a retryDelay), per-day 429s (real
  daily quotas, sized so that about a third of the notes cannot be enriched on day
  one), 503 bursts and 3 % random 503s, 5 % truncated JSON answers (cut short,
  ``MAX_TOKENS``) and 2 % unparsable ones, a retired model
  first in ``GEMINI_MODELS``, an invalid key first in ``GEMINI_API_KEYS``;
- MongoDB: the server (a MongoDB-wire secantus server on a fixed port and data
  directory, ``MONGO_URI`` pointing at it) is stopped and restarted mid-run;
- processes: the crawl command is killed with SIGKILL at two moments drawn from the
  seed (a number of notes newly stored by that run), each time followed at once by the same
  command; the third run gets a forced stop (SIGINT or SIGTERM twice, drawn from the
  seed); the fourth runs to its end;
- the image store is a tmpfs of its own, shrunk to what it holds (plus 256 KiB) at
  70 % of the last crawl: every later write fails with ENOSPC (without the right to
  mount, or with ``--no-tmpfs``, the crawls' local files store refuses every write with
  ENOSPC from then on: :class:`bench.chaos_faults.FullDisk`);
- the spool holds an earlier run's records: three notes nobody asks for (deferred for
  quota), three structurally invalid records and a torn last line.

Then time passes: the emulator's clock moves to the next Pacific day, and the follow-up
processes run with their wall clock shifted by the same amount (``sandbox.faketime``):
the same ``scrapy crawl xhs`` and a ``scrapy crawl enrich`` start together and overlap
on the notes deferred the day before. Every process reaches Gemini through a recording
proxy (:class:`bench.chaos_faults.GeminiTap`), which tells which note each billed
request carried and which requests were in flight at each kill. Invariants checked (each
violation is reported, nothing is retried):

1. Every live note the last crawl did not give up on, and every valid spooled note, is
   stored exactly once in ``notes``; nothing else is stored; the last crawl exits 0.
2. Every stored note is ``done``, or ``deferred``/``failed`` with a reason; every
   failed or skipped image has a reason.
3. No stored image path leaves the image store; every ``ok`` image's files exist and
   hold the bytes their content path names; no file under the run's directory lies
   outside the stores, the spool, the reports and the runs' own logs; nothing new in
   the checkout's ``data/``.
4. No API key and no cookie value appears in any log, in a dump of every Mongo
   collection, or in any file under the run's directories.
5. After the follow-up, no note is deferred and every note deferred after the crawl
   is ``done`` (or ``failed`` with a reason).
6. The next run is never blocked by a dead one: each command after a kill or forced
   stop takes the dead run's lease over at once and exits 0 or is the next one killed;
   the killed runs exit by SIGKILL, the forced stop exits non-zero; at the end no
   ``crawl_runs`` record is ``running`` (the dead ones are ``crashed``), no lease is left.
7. Gemini: requests billed ≤ contents answered + unusable answers + requests in flight
   at the kills; no usable answer for the same note content twice unless the first was
   in flight when its process died (crawl and enrich overlapping never enrich a note
   twice); no note over ``ENRICH_MAX_REQUESTS_PER_NOTE`` requests in one run.
8. Hostile notes: the 300-picture note fetches at most ``MEDIA_MAX_IMAGES_PER_NOTE`` and
   records the rest as skipped with a reason; the megabyte desc reaches Gemini cut to
   ``ENRICH_MAX_TEXT_CHARS``; the surrogate note is stored with U+FFFD.
9. The spool: the invalid and torn records go aside to ``.bad`` once (exactly those four
   lines), the valid ones are replayed, nothing is left pending; no enrichment cache
   write is left in its journal beside the spool (``enrich_cache.jsonl``).

Each fault must also have happened (visible in the site's, the emulator's, the tap's or
the crawl's counters), otherwise the run proves nothing and that is reported too.

Layout: the fault drivers are in :mod:`bench.chaos_faults`, the pure checkers in
:mod:`bench.chaos_checks`, the verdicts of each phase in :mod:`bench.chaos_verdicts`;
this module (about 600 lines, a third of it this description) holds the configuration
and the phases, which share the servers and one database and must run in order.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import secrets
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench.chaos_checks import (
    files_outside,
    gemini_spend,
    mongo_dump,
    scan_for_secrets,
)
from bench.chaos_faults import (
    GeminiTap,
    NoteIndex,
    ProcessFault,
    SeededSpool,
    StoreVolume,
    seed_spool,
)
from bench.chaos_verdicts import (
    RETIRED_MODEL,
    ChaosReport,
    check_crawl,
    check_emulator,
    check_follow_up,
    check_hostile,
    check_restarts,
    check_spool,
    check_store,
)
from bench.common import ROOT, Check, finish, note_refs, run_crawl
from crawler.core.enrichment_state import EnrichmentStatus
from sandbox.faketime import shifted_clock_env
from sandbox.gemini import GeminiEmulator
from sandbox.gemini.clock import next_pacific_midnight
from sandbox.harness import (
    CrawlResult,
    MongoServer,
    extensions_with_stats_dump,
    sandbox_env,
    start_crawl,
)
from sandbox.site import DEFAULT_COOKIE, SiteServer

DATABASE = "chaos"
MODELS = f"{RETIRED_MODEL},gemini-2.5-flash-lite,gemini-2.5-flash"
CRASHING_LABELS = ("run1", "run2", "run3")  # killed, killed, forced stop
LAST_LABEL = "run4"
OVERLAP_LABELS = ("next_day_xhs", "next_day_enrich")
# A request answered this long before a kill may not have reached the crawler's cache.
KILL_GRACE_S = 0.5
# Where a run may write under its directory: the stores, the spool, the reports, the
# embedded Mongo of the harness's defaults, and each process's own files.
STORE_DIRS = ("images", "mongo", "mongo-embedded", "spool", "reports")
RUN_FILES = (".log", ".stdout", ".stats.json", ".items.jsonl", ".spec.json", ".tap.jsonl")
MAX_REQUESTS_PER_NOTE = 3  # ENRICH_MAX_REQUESTS_PER_NOTE's default (issue 18)


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
    # Kill moments: new notes stored by that run, a share of the notes drawn in this window.
    kill_window: tuple[float, float] = (0.08, 0.25)
    store_full_at: float = 0.7  # share of the last crawl's pages
    store_margin_bytes: int = 256 * 1024
    spooled_notes: int = 3
    # The image store on a tmpfs of its own (needs root); else the FullDisk extension.
    tmpfs: bool = True

    @property
    def daily_requests(self) -> int:
        """Requests per day per (project, model): 2 projects × 2 models × this ≈ 70 % of
        the notes, so day one defers some notes and day two has room for all of them."""
        return max(5, round(self.notes * 0.18))

    @property
    def site_notes(self) -> int:
        """Room past the requested ids: spooled notes, notes a keyword finds."""
        return self.notes + 20 + 10 * self.discovery_notes


# 80 notes fetch ~260 pictures: at 2 % about one short run in 200 truncates none and the
# "an image was truncated" check fails for want of the fault; at 5 %, one in ~700,000.
SHORT = ChaosConfig(notes=80, truncated_image_rate=0.05)
FULL = ChaosConfig(notes=300, discovery_keyword="大模型", discovery_notes=40)


def hostile_notes(config: ChaosConfig, site: SiteServer) -> dict[int, str]:
    """The last three live notes asked for, one of each hostile kind."""
    live = [
        i
        for i in range(config.notes - 1, 0, -1)
        if not site.dataset.is_deleted(i) and i != site.dataset.reference_index
    ]
    return dict(zip(live[:3], ("many_images", "lone_surrogate", "huge_desc"), strict=True))


def spooled_notes(config: ChaosConfig, site: SiteServer) -> list[Any]:
    """Live notes past those asked for (and past any keyword's reach), only in the spool."""
    chosen = [i for i in range(config.notes, config.notes + 20) if not site.dataset.is_deleted(i)]
    return [site.dataset.note(i) for i in chosen[: config.spooled_notes]]


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
    """Mid-run faults of the last crawl, fired from the waiting thread as it makes progress.

    Progress is the number of note pages the site answered since that crawl started;
    each fault fires once its share of the notes is reached: captcha burst at 20 %, a
    Gemini 503 + per-minute 429 burst at 35 %, the MongoDB restart at 50 %, the image
    store full at ``store_full_at``; with discovery, the signature rotation as soon as
    the site answered one signed search call.
    """

    def __init__(
        self,
        config: ChaosConfig,
        site: SiteServer,
        emulator: GeminiEmulator,
        mongo: MongoServer,
        volume: StoreVolume,
        pages: Callable[[], int],
    ) -> None:
        self.config = config
        self.site = site
        self.emulator = emulator
        self.mongo = mongo
        self.volume = volume
        self.pages = pages
        self.fired: dict[str, float] = {}

    def _progress(self) -> float:
        return self.pages() / self.config.notes

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
            if (
                progress >= self.config.store_full_at
                and "store_full" not in self.fired
                and self.volume.fill_up(self.config.store_margin_bytes)
            ):
                self.fired["store_full"] = time.monotonic() - started
            time.sleep(0.05)


@dataclass
class Run:
    """One crawl process of the run and what it left."""

    label: str
    result: CrawlResult
    fault: ProcessFault | None
    pages: int  # note pages the site answered while it ran
    notes_stored_after: int

    def describe(self) -> dict[str, Any]:
        stats = self.result.stats
        return {
            "run": self.label,
            **(self.fault.describe() if self.fault else {"fault": None}),
            "exit_status": self.result.returncode,
            "wall_s": round(self.result.wall_s, 1),
            "note_pages": self.pages,
            "items": stats.get("item_scraped_count"),
            "lease_taken_over": stats.get("run_lease/taken_over", 0),
            "notes_stored_after": self.notes_stored_after,
        }


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


def durable_summaries(db: Any) -> frozenset[str]:
    """Every enrichment summary the database holds: in the cache and in stored notes."""
    found = {
        (d.get("result") or {}).get("summary")
        for d in db.enrich_cache.find({}, {"result.summary": 1})
    }
    found |= {
        ((d.get("enrichment") or {}).get("result") or {}).get("summary")
        for d in db.notes.find({}, {"enrichment.result.summary": 1})
    }
    return frozenset(s for s in found if s)


def overlap_figures(tap: GeminiTap, next_day: CrawlResult, deferred: set[str]) -> dict[str, Any]:
    """Who enriched the notes deferred on day one: requests per next-day process, and
    the notes the crawl left to the enrich run because it held their claims."""
    by: dict[str, set[str]] = {label: set() for label in OVERLAP_LABELS}
    for record in tap.snapshot():
        if record.label in by and record.billed:
            by[record.label] |= {c.note_id for c in record.carried} & deferred
    left = Counter(
        (item.get("enrichment") or {}).get("reason")
        for item in next_day.items
        if (item.get("enrichment") or {}).get("status") == "pending"
    )
    return {
        "deferred_notes_sent_by": {label: len(ids) for label, ids in by.items()},
        "deferred_notes_sent_by_both": len(set.intersection(*by.values())),
        "crawl_left_pending_by_reason": dict(left),
    }


def process_faults(config: ChaosConfig) -> list[ProcessFault]:
    """Two kills and a forced stop, at counts of new notes (and a signal) drawn from the seed."""
    rng = random.Random(config.seed)
    low, high = (round(config.notes * share) for share in config.kill_window)
    faults = [ProcessFault("kill", rng.randint(low, high)) for _ in range(2)]
    stop = rng.choice((signal.SIGINT, signal.SIGTERM))
    faults.append(ProcessFault("forced_stop", rng.randint(low, high), signal=stop))
    return faults


def run_chaos(config: ChaosConfig, work: Path) -> ChaosReport:
    """The whole run in ``work`` (created if needed); see the module docstring."""
    report = ChaosReport()
    secret = Secrets.generate(sandbox_login=config.discovery_keyword is not None)
    work.mkdir(parents=True, exist_ok=True)
    started_wall = time.time()
    labels = (*CRASHING_LABELS, LAST_LABEL, *OVERLAP_LABELS)
    with (
        SiteServer(seed=config.seed, notes=config.site_notes, port=0) as site,
        GeminiEmulator(config=emulator_config(config, secret.keys), port=0) as emulator,
        # Its own process: on threads here it would share the GIL with the site and the
        # tap, and stall past the crawls' 1 s server-selection timeout.
        MongoServer(work / "mongo", process=True) as mongo,
        StoreVolume(work / "images", tmpfs=config.tmpfs) as volume,
    ):
        hostile = hostile_notes(config, site)
        site.control(hostile={str(i): kind for i, kind in hostile.items()})
        every_note = [site.dataset.note(i) for i in range(config.site_notes)]
        with GeminiTap(emulator.base_url, labels, NoteIndex(every_note)) as tap:
            seeded = seed_spool(
                work / "spool" / "notes.jsonl", site.url, spooled_notes(config, site)
            )
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
                GEMINI_API_KEYS=secret.api_keys_setting,
                GEMINI_MODELS=MODELS,
                ENRICH_BACKEND="gemini",
            )

            def env_for(label: str) -> dict[str, str]:
                return {**env, "GEMINI_BASE_URL": tap.url(label)}

            client: MongoClient = MongoClient(mongo.uri, serverSelectionTimeoutMS=5000)
            db = client[DATABASE]
            try:
                _chaos_phases(
                    report, config, work, site, emulator, mongo, volume, tap, db,
                    env_for, secret, seeded, hostile, started_wall,
                )  # fmt: skip
            finally:
                client.close()
    return report


def _chaos_phases(
    report: ChaosReport,
    config: ChaosConfig,
    work: Path,
    site: SiteServer,
    emulator: GeminiEmulator,
    mongo: MongoServer,
    volume: StoreVolume,
    tap: GeminiTap,
    db: Any,
    env_for: Callable[[str], dict[str, str]],
    secret: Secrets,
    seeded: SeededSpool,
    hostile: Mapping[int, str],
    started_wall: float,
) -> None:
    notes = [site.dataset.note(i) for i in range(config.notes)]
    crawl_args = {"note_ids": note_refs(notes)}
    if config.discovery_keyword:
        crawl_args["keywords"] = config.discovery_keyword
        crawl_args["max_notes"] = str(config.notes + config.discovery_notes)
    settings = {
        **_crawl_settings(config, work),
        **volume.crawl_settings(extensions_with_stats_dump()),
    }

    def pages_since(base: int) -> Callable[[], int]:
        return lambda: site.stats().get("note_ok", 0) - base

    # Day one: the same command four times, the first three killed or force-stopped.
    runs: list[Run] = []
    for label, fault in zip(CRASHING_LABELS, process_faults(config), strict=True):
        pages = pages_since(site.stats().get("note_ok", 0))
        stored_before = db.notes.count_documents({})

        def stored(base: int = stored_before) -> int:
            return db.notes.count_documents({}) - base

        with start_crawl(
            "xhs", crawl_args, env_for(label), workdir=work, label=f"crawl-{label}",
            settings=settings,
        ) as crawl:  # fmt: skip
            fired = fault.fire(crawl.proc, stored)
            result = crawl.wait(timeout=600)
        fault.durable = durable_summaries(db)
        report.require(fired, f"{label}: the {fault.kind} never fired (the crawl ended first)")
        runs.append(Run(label, result, fault, pages(), db.notes.count_documents({})))
    pages = pages_since(site.stats().get("note_ok", 0))
    schedule = FaultSchedule(config, site, emulator, mongo, volume, pages)
    crawl = run_crawl(
        "xhs", crawl_args, env_for(LAST_LABEL), workdir=work, label=f"crawl-{LAST_LABEL}",
        settings=settings, while_running=schedule.run, timeout=1200,
    )  # fmt: skip
    runs.append(Run(LAST_LABEL, crawl, None, pages(), db.notes.count_documents({})))
    site_stats = site.stats()
    site.control(error_rate=0, slow_rate=0, truncated_image_rate=0)
    check_crawl(report, config, site, crawl, db, work / "images", schedule, site_stats, seeded)
    deferred_ids = {
        d["_id"]
        for d in db.notes.find({"enrichment.status": EnrichmentStatus.DEFERRED.value}, {"_id": 1})
    }

    # Day two: the same crawl and `scrapy crawl enrich` at once, on the deferred notes.
    now = emulator.clock.now()
    shift = next_pacific_midnight(now.timestamp()) - now + timedelta(minutes=1)
    emulator.clock.advance(shift.total_seconds())
    ahead = (emulator.clock.now() - datetime.now(UTC)).total_seconds()
    xhs_label, enrich_label = OVERLAP_LABELS
    with (
        start_crawl(
            "enrich", {}, shifted_clock_env(env_for(enrich_label), ahead), workdir=work,
            label=f"crawl-{enrich_label}", settings=settings,
        ) as enrich,
        start_crawl(
            "xhs", crawl_args, shifted_clock_env(env_for(xhs_label), ahead), workdir=work,
            label=f"crawl-{xhs_label}", settings=settings,
        ) as again,
    ):  # fmt: skip
        follow = enrich.wait(timeout=900)
        next_day = again.wait(timeout=900)
    runs.append(Run(enrich_label, follow, None, 0, db.notes.count_documents({})))
    runs.append(Run(xhs_label, next_day, None, 0, db.notes.count_documents({})))
    report.figures["runs"] = [run.describe() for run in runs]
    report.figures["next_day_overlap"] = overlap_figures(tap, next_day, deferred_ids)
    check_follow_up(report, follow, next_day, db, deferred_ids, clock_ahead_s=ahead)
    check_restarts(report, runs, db)
    check_spool(report, work / "spool" / "notes.jsonl", seeded, db)
    check_store(report, volume, db, "".join(run.result.log for run in runs))
    check_hostile(report, db, tap, hostile, site)
    kills = {run.label: run.fault for run in runs if run.fault is not None}
    tap.dump(work / "gemini.tap.jsonl")
    spend = gemini_spend(
        tap.snapshot(), kills, grace_s=KILL_GRACE_S, budget_per_run=MAX_REQUESTS_PER_NOTE,
        final_durable=durable_summaries(db),
    )  # fmt: skip
    report.require(
        spend.summaries_found_at_end >= 0.9,
        f"only {spend.summaries_found_at_end:.0%} of the usable answers are recognisable in "
        "the database: the in-flight test cannot be trusted",
    )
    stored = db.notes.count_documents({})
    report.figures["gemini_spend"] = spend.figures(stored)
    report.require(
        spend.billed <= spend.bound,
        f"{spend.billed} requests billed, more than {spend.bound} (requests with new "
        "content + unusable answers + their retries + in flight at the kills)",
    )
    report.require(
        not spend.unexplained,
        f"notes enriched twice (not explained by a kill): {sorted(set(spend.unexplained))[:10]}",
    )
    report.require(
        not spend.over_budget, f"notes over the request budget: {spend.over_budget[:10]}"
    )
    report.require(
        spend.unidentified <= max(2, spend.billed // 50),
        f"{spend.unidentified} requests named no known note: the spend check is blind",
    )
    check_emulator(report, emulator, processes=len(runs))
    logs = {f"{run.label} log": run.result.log.encode() for run in runs}
    leaks = scan_for_secrets(secret.needles(), {**logs, "mongo dump": mongo_dump(db)}, [work])
    report.figures["secret_leaks"] = len(leaks)
    report.require(not leaks, f"secrets written out: {leaks[:10]}")
    outside = files_outside(work, STORE_DIRS, RUN_FILES)
    data = ROOT / "data"
    if data.is_dir():
        outside += [
            str(p) for p in data.rglob("*") if p.is_file() and p.stat().st_mtime >= started_wall
        ]
    report.require(not outside, f"files outside the stores: {outside[:10]}")


def checks_of(report: ChaosReport) -> list[Check]:
    return [
        Check(
            "chaos run: every invariant holds (notes stored once, statuses with reasons, "
            "paths inside the store, no secret written, deferred notes completed, no run "
            "blocked by a dead one, Gemini spend within notes + in flight at the kills)",
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
    parser.add_argument(
        "--no-tmpfs", action="store_true", help="full disk by the FullDisk extension, no mount"
    )
    args = parser.parse_args(argv)
    config = FULL if args.full else SHORT
    if args.no_tmpfs:
        config = dataclasses.replace(config, tmpfs=False)
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
