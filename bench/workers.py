"""Three enrich workers on one store and one 20-RPD project, then one of them killed.

One stored backlog (a ``scrapy crawl xhs`` of sandbox notes, enrichment off), one
MongoDB-wire server, the Gemini emulator in its own process, and three ``scrapy crawl
enrich -a worker=wN`` processes started together. ``GEMINI_LIMITS`` tells them the
project's 20 requests a day; the emulator's projects have **no** daily limit, so the
only thing that keeps the workers at 20 is the day count they share through the store
(the learned limits and the blocked-until are shared too, notes are claimed):

1. **packed**: all three run to their end (``ENRICH_PACK=auto``); a fourth process, a
   second copy of ``worker=w0``, must be stopped by the overlap lease (exit status 3);
2. **one per request**: the backlog again, a fresh project, ``ENRICH_PACK=never``: 20
   requests enrich 20 notes, every other note is deferred (the day is spent) until the
   next Pacific midnight, with its reason;
3. **killed, other host**: the backlog again (packed), a fresh project; ``w0`` runs under
   ``unshare --uts`` with another host name and its own key of the project, and is
   killed with SIGKILL once it has read an answer (the emulator logged it, its results
   are in the enrichment cache under its key) and it still holds claims on notes not
   stored done. Its claims cannot be judged dead from here (another host): they
   lapse after ``ENRICH_CLAIM_TTL`` and the others finish its notes;
4. **killed, same host**: as 3 with ``w0`` on this host: its pid is gone, so the
   others take its claims over at once (:func:`pipelines.mongo.leases.holder_dead`).

Which path freed the victim's claims is read from the records: the survivors' log line
``took over N note claim(s) of dead run(s)`` (dead-pid take-over), and the moment the
first of its claims changed hands against the moment they expired (``expires_at``).

Checked: successful requests in total (emulator log) ≤ 20; no note enriched by two
workers (a note in two workers' feeds with requests spent); every note done, or
deferred/failed with a reason; at least two workers did work.
``python -m bench.workers [--quick]`` (quick: 60 notes).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench.capacity import MODEL, build_backlog, emulator_toml, generate_log, reset_backlog
from bench.common import Check, EmulatorProcess, finish, parse_args, tail
from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from pipelines.gemini.limiter import next_pacific_midnight
from sandbox.gemini.scenario import key_fp
from sandbox.harness import Crawl, MongoServer, sandbox_env, start_crawl
from sandbox.site import SiteServer

NAME = "workers"
RPD = 20
CLAIM_TTL_S = 6.0
VICTIM_HOST = "bench-victim-host"
PROJECTS = ("together", "never", "away", "here")
TAKE_OVER = re.compile(r"took over (\d+) note claim")

# What a note may end as in this benchmark (with a reason, unless done).
SETTLED = {EnrichmentStatus.DONE, EnrichmentStatus.DEFERRED, EnrichmentStatus.FAILED}


def worker_settings(project: str, pack: str, key: str | None = None) -> dict[str, str]:
    return {
        "GEMINI_API_KEYS": f"{project}:{key or f'{project}-key'}",
        "GEMINI_MODELS": MODEL,
        "GEMINI_LIMITS": f"{MODEL}:rpd={RPD}",
        "ENRICH_PACK": pack,
        "ENRICH_PACK_WAIT": "2",
        "ENRICH_CLAIM_TTL": str(CLAIM_TTL_S),
    }


def victim_key(project: str) -> str:
    return f"{project}-victim-key"


def other_host_prefix() -> list[str] | None:
    """``unshare --uts`` (a UTS namespace: its own host name) if it works here, else None."""
    if shutil.which("unshare") is None:
        return None
    prefix = ["unshare", "--uts"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    script = 'hostname "$0" && exec "$@"'
    try:
        probe = subprocess.run(
            [*prefix, "sh", "-c", script, VICTIM_HOST, "hostname"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0 or probe.stdout.strip() != VICTIM_HOST:
        return None
    return [*prefix, "sh", "-c", script, VICTIM_HOST]


def start_workers(
    env: Mapping[str, str], work: Path, run: str, names: Sequence[str]
) -> list[Crawl]:
    return [
        start_crawl("enrich", {"worker": name}, env, workdir=work, label=f"{run}-{name}-{i}")
        for i, name in enumerate(names)
    ]


def victim_claims(db: Any, worker: str) -> list[dict[str, Any]]:
    return list(db.enrich_claims.find({"owner": {"$regex": f"^{worker}@"}}))


def wait_for_claims(db: Any, worker: str, timeout: float = 120) -> set[str]:
    """The notes ``worker`` holds claims on, once it holds any (it is past its lease)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = {d["_id"] for d in victim_claims(db, worker)}
        if held:
            return held
        time.sleep(0.05)
    return set()


def wait_for_answer(emulator: EmulatorProcess, fp: str, timeout: float = 120) -> int:
    """How many answers (200) the emulator gave key ``fp``, once it gave one (0: none)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered = sum(
            1
            for r in emulator.requests()
            if r["method"] == "generateContent" and r.get("key_fp") == fp and r["status"] == 200
        )
        if answered:
            return answered
        time.sleep(0.05)
    return 0


def wait_for_cached(db: Any, fp: str, timeout: float = 60) -> int:
    """How many results of key ``fp`` the enrichment cache holds, once it holds one: the
    worker has read an answer and kept it (0: none in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cached = db.enrich_cache.count_documents({"key_fp": fp})
        if cached:
            return cached
        time.sleep(0.05)
    return 0


def done_ids(db: Any) -> set[str]:
    return {d["_id"] for d in db.notes.find({"enrichment.status": "done"}, {"_id": 1})}


def enriched_by(items: list[dict[str, Any]]) -> set[str]:
    """Notes this worker enriched itself (done, requests spent by it)."""
    states = {
        item["note_id"]: EnrichmentState.from_document(item.get("enrichment")) for item in items
    }
    return {
        note_id
        for note_id, state in states.items()
        if state is not None and state.status is EnrichmentStatus.DONE and state.usage.requests > 0
    }


def outcome(db: Any) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for doc in db.notes.find({}, {"enrichment": 1}):
        state = doc.get("enrichment") or {}
        status = state.get("status") or "none"
        settled = status == EnrichmentStatus.DONE or state.get("reason")
        counts[status if settled else f"{status} (no reason)"] += 1
    return dict(counts)


def deferrals(db: Any, started_ts: float) -> dict[str, Any]:
    """The deferred notes: their reasons, and how many wait for the next Pacific midnight."""
    midnights = {next_pacific_midnight(started_ts), next_pacific_midnight(time.time())}
    reasons: Counter[str] = Counter()
    until_midnight = 0
    for doc in db.notes.find({"enrichment.status": "deferred"}, {"enrichment": 1}):
        state = doc["enrichment"]
        reasons[state.get("reason") or "(none)"] += 1
        when = state.get("next_attempt_at")
        if isinstance(when, datetime):
            ts = when.replace(tzinfo=when.tzinfo or UTC).timestamp()
            until_midnight += any(abs(ts - m) < 1.0 for m in midnights)
    return {"reasons": dict(reasons), "until_next_pacific_midnight": until_midnight}


def summarize(results: Mapping[str, Any], db: Any, log: Mapping[str, int]) -> dict[str, Any]:
    by_worker = {name: enriched_by(r.items) for name, r in results.items()}
    seen = Counter(n for notes in by_worker.values() for n in notes)
    return {
        "exit_status": {name: r.returncode for name, r in results.items()},
        "enriched_by_worker": {name: len(notes) for name, notes in by_worker.items()},
        "enriched_twice": sum(1 for c in seen.values() if c > 1),
        "outcome": outcome(db),
        "emulator": dict(log),
    }


def run_together(
    db: Any,
    emu: EmulatorProcess,
    env: Mapping[str, str],
    work: Path,
    project: str,
    pack: str,
    *,
    second_copy: bool,
) -> dict[str, Any]:
    """Three workers to their end (and, if asked, a second copy of w0 the lease stops)."""
    reset_backlog(db)
    started_ts = time.time()
    env1 = {**env, "GEMINI_BASE_URL": emu.base_url, **worker_settings(project, pack)}
    crawls = start_workers(env1, work, project, ["w0", "w1", "w2"])
    copy_status = None
    if second_copy:
        wait_for_claims(db, "w0")  # w0 runs (holds its lease): now a second copy of it
        copy = start_crawl("enrich", {"worker": "w0"}, env1, workdir=work, label=f"{project}-copy")
        copy_status = copy.wait(timeout=600).returncode
    results = {f"w{i}": c.wait(timeout=900) for i, c in enumerate(crawls)}
    for name, r in results.items():
        if r.returncode not in (0, 4):
            print(name, tail(r.log))
    figures = {
        **summarize(results, db, generate_log(emu, project)),
        "done": len(done_ids(db)),
        "deferred": deferrals(db, started_ts),
    }
    if second_copy:
        figures["second_copy_exit_status"] = copy_status
    return figures


def run_killed(
    db: Any,
    emu: EmulatorProcess,
    env: Mapping[str, str],
    work: Path,
    project: str,
    prefix: Sequence[str],
) -> dict[str, Any]:
    """Three workers, w0 (under ``prefix``, with its own key) killed -9 mid-run."""
    reset_backlog(db)
    base = {**env, "GEMINI_BASE_URL": emu.base_url}
    victim_env = {**base, **worker_settings(project, "auto", victim_key(project))}
    victim = start_crawl(
        "enrich", {"worker": "w0"}, victim_env, workdir=work, label=f"{project}-w0", prefix=prefix
    )
    others = start_workers(
        {**base, **worker_settings(project, "auto")}, work, project, ["w1", "w2"]
    )
    wait_for_claims(db, "w0")
    fp = key_fp(victim_key(project))
    answered = wait_for_answer(emu, fp)  # the emulator has answered it …
    cached = wait_for_cached(db, fp)  # … and it has read the answer (its results cached)
    answered = wait_for_answer(emu, fp)
    held = victim_claims(db, "w0")  # all it holds now (claims last until it closes)
    open_ids = {d["_id"] for d in held} - done_ids(db)
    victim.kill()
    killed_at = datetime.now(UTC)
    victim.wait(timeout=30)
    held = victim_claims(db, "w0") or held
    owner = held[0]["owner"] if held else ""
    expiry = max((d["expires_at"].replace(tzinfo=UTC) for d in held), default=killed_at)
    first_freed: datetime | None = None
    while any(c.proc.poll() is None for c in others):
        if first_freed is None and open_ids:
            still = db.enrich_claims.count_documents(
                {"_id": {"$in": sorted(open_ids)}, "owner": owner}
            )
            if still < len(open_ids):
                first_freed = datetime.now(UTC)
        time.sleep(0.1)
    results = {f"w{i}": c.wait(timeout=900) for i, c in enumerate(others, 1)}
    finished = (datetime.now(UTC) - killed_at).total_seconds()
    for name, r in results.items():
        if r.returncode not in (0, 4):
            print(name, tail(r.log))
    survivors = set().union(*(enriched_by(r.items) for r in results.values()))
    from_cache = db.notes.count_documents(
        {"_id": {"$in": sorted(open_ids)}, "enrichment.status": "done", "enrichment.key_fp": fp}
    )
    taken_over = sum(int(m) for r in results.values() for m in TAKE_OVER.findall(r.log))
    done = done_ids(db)
    freed_s = round((first_freed - killed_at).total_seconds(), 2) if first_freed else None
    expires_s = round((expiry - killed_at).total_seconds(), 2)
    if taken_over:
        path = "dead-pid take-over"
    elif first_freed is not None and first_freed >= expiry:
        path = "expiry"
    else:
        path = "unknown"
    return {
        **summarize(results, db, generate_log(emu, project)),
        "victim_exit_status": victim.proc.returncode,
        "victim_claim_owner": owner,
        "victim_answers_before_kill": answered,
        "victim_results_cached_before_kill": cached,
        "victim_claims_at_kill": len(held),
        "victim_claims_open_at_kill": len(open_ids),
        "open_notes_done_after": len(open_ids & done),
        "open_notes_enriched_by_survivors": len(open_ids & survivors),
        "open_notes_done_from_its_cached_answer": from_cache,
        "claims_taken_over_as_dead": taken_over,
        "claims_expire_s_after_kill": expires_s,
        "first_claim_freed_s_after_kill": freed_s,
        "freed_by": path,
        "survivors_finished_s_after_kill": round(finished, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    count = 60 if args.quick else 100
    started = time.monotonic()
    figures: dict[str, Any] = {"backlog": count, "requests_per_day": RPD, "workers": 3}
    prefix = other_host_prefix()
    notes: list[str] = []
    extra = {p: [victim_key(p)] for p in ("away", "here")}
    with (
        tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp,
        SiteServer(seed=23, notes=count + 30, port=0) as site,
        MongoServer(Path(tmp) / "mongo", process=True) as mongo,
        EmulatorProcess(
            emulator_toml(dict.fromkeys(PROJECTS), None, extra_keys=extra), Path(tmp)
        ) as emu,
    ):
        work = Path(tmp)
        env = sandbox_env(site, MONGO_URI=mongo.uri, ENRICH_BACKEND="gemini")
        build_backlog(site, env, work, count)
        db = MongoClient(mongo.uri)[env.get("MONGO_DATABASE") or "xhs"]
        figures["packed"] = run_together(db, emu, env, work, "together", "auto", second_copy=True)
        figures["one_per_request"] = run_together(
            db, emu, env, work, "never", "never", second_copy=False
        )
        if prefix is not None:
            figures["killed_other_host"] = run_killed(db, emu, env, work, "away", prefix)
        else:
            notes.append("unshare --uts is not available here: no other-host kill variant")
        figures["killed_same_host"] = run_killed(db, emu, env, work, "here", [])
        db.client.close()

    def all_settled(outcome_counts: Mapping[str, int]) -> bool:
        return all(k in SETTLED for k in outcome_counts)

    def did_work(run: Mapping[str, Any]) -> int:
        return sum(1 for v in run["enriched_by_worker"].values() if v)

    checks: list[Check] = []
    for key, label in (("packed", "packed"), ("one_per_request", "ENRICH_PACK=never")):
        run = figures[key]
        checks += [
            Check(
                f"{label}: successful requests of 3 workers, one {RPD}-RPD project "
                f"(emulator unlimited: the shared day count holds it), {count}-note backlog",
                f"≤ {RPD}",
                f"{run['emulator']['ok']} ({run['emulator']['429']} × 429)",
                run["emulator"]["ok"] <= RPD,
            ),
            Check(
                f"{label}: notes enriched by two workers",
                "0",
                str(run["enriched_twice"]),
                run["enriched_twice"] == 0,
            ),
            Check(
                f"{label}: every note done, or deferred/failed with a reason",
                "all",
                "; ".join(f"{k}: {v}" for k, v in run["outcome"].items()),
                all_settled(run["outcome"]),
            ),
            Check(
                f"{label}: workers that did work",
                "≥ 2 of 3",
                ", ".join(f"{k}: {v}" for k, v in run["enriched_by_worker"].items()),
                did_work(run) >= 2,
            ),
        ]
    packed, never = figures["packed"], figures["one_per_request"]
    deferred = never["outcome"].get("deferred", 0)
    checks += [
        Check(
            "packed: a second copy of one worker",
            "stopped by the overlap lease (exit 3)",
            f"exit {packed['second_copy_exit_status']}",
            packed["second_copy_exit_status"] == 3,
        ),
        Check(
            "ENRICH_PACK=never: notes enriched, and deferred until the next Pacific midnight",
            f"≤ {RPD} done, the other {count - RPD} deferred with a reason",
            f"{never['done']} done, {deferred} deferred "
            f"({never['deferred']['until_next_pacific_midnight']} until Pacific midnight; "
            + "; ".join(f"{k}: {v}" for k, v in never["deferred"]["reasons"].items())
            + ")",
            never["done"] <= RPD
            and never["done"] + deferred == count
            and deferred >= count - RPD
            and never["deferred"]["until_next_pacific_midnight"] == deferred,
        ),
    ]
    for key, label, path in (
        ("killed_other_host", "w0 on another host (unshare --uts)", "expiry"),
        ("killed_same_host", "w0 on this host", "dead-pid take-over"),
    ):
        if key not in figures:
            continue
        run = figures[key]
        checks.append(
            Check(
                f"{label} killed -9 after {run['victim_answers_before_kill']} answer(s) "
                f"({run['victim_results_cached_before_kill']} results cached): "
                "requests, notes enriched twice, notes settled, its open notes, path",
                f"≤ {RPD}; 0 by the survivors; all; all done by the others; freed by {path}",
                f"{run['emulator']['ok']}; {run['enriched_twice']}; "
                + "; ".join(f"{k}: {v}" for k, v in run["outcome"].items())
                + f"; {run['open_notes_done_after']} of its {run['victim_claims_open_at_kill']} "
                f"open claimed notes done ({run['open_notes_done_from_its_cached_answer']} "
                "from its cached answer); "
                f"freed by {run['freed_by']} "
                f"({run['claims_taken_over_as_dead']} taken over as dead, first freed "
                f"{run['first_claim_freed_s_after_kill']} s after the kill, claims expired at "
                f"{run['claims_expire_s_after_kill']} s)",
                run["emulator"]["ok"] <= RPD
                and run["enriched_twice"] == 0
                and all_settled(run["outcome"])
                and run["victim_answers_before_kill"] > 0
                and run["victim_results_cached_before_kill"] > 0
                and run["victim_claims_open_at_kill"] > 0
                and run["open_notes_done_after"] == run["victim_claims_open_at_kill"]
                and run["freed_by"] == path,
            )
        )
    return finish(
        NAME, quick=args.quick, started=started, figures=figures, checks=checks, notes=notes
    )


if __name__ == "__main__":
    raise SystemExit(main())
