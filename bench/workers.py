"""Three enrich workers on one store and one 20-RPD project, then one of them killed.

One stored backlog (a ``scrapy crawl xhs`` of sandbox notes, enrichment off), one
MongoDB-wire server, the Gemini emulator in its own process with a project of 20
requests a day, and three ``scrapy crawl enrich -a worker=wN`` processes started
together (``GEMINI_LIMITS`` tells them the daily limit; the day count, the learned
limits and the blocked-until are shared through the store, notes are claimed):

1. all three run to their end; a fourth process, a second copy of ``worker=w0``,
   must be stopped by the overlap lease (exit status 3);
2. the backlog again, a fresh project: ``w0`` is killed with SIGKILL as soon as it holds
   claims; its claims lapse after ``ENRICH_CLAIM_TTL`` and the others finish its notes.

Checked: successful requests in total (emulator log) ≤ 20; no note enriched by two
workers (a note in two workers' feeds with requests spent); every note done, or
deferred/failed with a reason; at least two workers did work.
``python -m bench.workers [--quick]`` (quick: 60 notes).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench.capacity import MODEL, build_backlog, emulator_toml, generate_log, reset_backlog
from bench.common import Check, EmulatorProcess, finish, parse_args, tail
from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from sandbox.harness import Crawl, MongoServer, sandbox_env, start_crawl
from sandbox.site import SiteServer

NAME = "workers"
RPD = 20
CLAIM_TTL_S = 6.0

# What a note may end as in this benchmark (with a reason, unless done).
SETTLED = {EnrichmentStatus.DONE, EnrichmentStatus.DEFERRED, EnrichmentStatus.FAILED}


def worker_settings(project: str) -> dict[str, str]:
    return {
        "GEMINI_API_KEYS": f"{project}:{project}-key",
        "GEMINI_MODELS": MODEL,
        "GEMINI_LIMITS": f"{MODEL}:rpd={RPD}",
        "ENRICH_PACK_WAIT": "2",
        "ENRICH_CLAIM_TTL": str(CLAIM_TTL_S),
    }


def start_workers(
    env: Mapping[str, str], work: Path, run: str, names: Sequence[str]
) -> list[Crawl]:
    return [
        start_crawl("enrich", {"worker": name}, env, workdir=work, label=f"{run}-{name}-{i}")
        for i, name in enumerate(names)
    ]


def wait_for_claims(db: Any, worker: str, timeout: float = 120) -> set[str]:
    """The notes ``worker`` holds claims on, once it holds any (it is past its lease)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = {d["_id"] for d in db.enrich_claims.find({"owner": {"$regex": f"^{worker}@"}})}
        if held:
            return held
        time.sleep(0.05)
    return set()


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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    count = 60 if args.quick else 100
    started = time.monotonic()
    figures: dict[str, Any] = {"backlog": count, "requests_per_day": RPD, "workers": 3}
    with (
        tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp,
        SiteServer(seed=23, notes=count + 30, port=0) as site,
        MongoServer(Path(tmp) / "mongo", process=True) as mongo,
        EmulatorProcess(emulator_toml({"together": RPD, "killed": RPD}, None), Path(tmp)) as emu,
    ):
        work = Path(tmp)
        env = sandbox_env(site, MONGO_URI=mongo.uri, ENRICH_BACKEND="gemini")
        build_backlog(site, env, work, count)
        db = MongoClient(mongo.uri)[env.get("MONGO_DATABASE") or "xhs"]
        reset_backlog(db)

        # 1. Three workers together, and a second copy of w0 the lease must stop.
        env1 = {**env, "GEMINI_BASE_URL": emu.base_url, **worker_settings("together")}
        crawls = start_workers(env1, work, "together", ["w0", "w1", "w2"])
        wait_for_claims(db, "w0")  # w0 runs (holds its lease): now a second copy of it
        copy = start_crawl("enrich", {"worker": "w0"}, env1, workdir=work, label="together-copy")
        copy_result = copy.wait(timeout=600)
        results = {f"w{i}": c.wait(timeout=900) for i, c in enumerate(crawls)}
        for name, r in results.items():
            if r.returncode not in (0, 4):
                print(name, tail(r.log))
        figures["together"] = {
            **summarize(results, db, generate_log(emu, "together")),
            "second_copy_exit_status": copy_result.returncode,
        }

        # 2. The same, w0 killed (SIGKILL) once it holds claims.
        reset_backlog(db)
        env2 = {**env, "GEMINI_BASE_URL": emu.base_url, **worker_settings("killed")}
        crawls = start_workers(env2, work, "killed", ["w0", "w1", "w2"])
        wait_for_claims(db, "w0")
        time.sleep(0.3)  # mid-pack: its first request is out
        victim_claims = wait_for_claims(db, "w0")  # all it holds now
        crawls[0].kill()
        killed_at = time.monotonic()
        results = {f"w{i}": c.wait(timeout=900) for i, c in enumerate(crawls[1:], 1)}
        finished_after_kill = round(time.monotonic() - killed_at, 1)
        survivors = set().union(*(enriched_by(r.items) for r in results.values()))
        done_ids = {d["_id"] for d in db.notes.find({"enrichment.status": "done"}, {"_id": 1})}
        figures["killed"] = {
            **summarize(results, db, generate_log(emu, "killed")),
            "victim_claims_at_kill": len(victim_claims),
            "victim_notes_finished_by_others": len(victim_claims & survivors),
            "victim_notes_done": len(victim_claims & done_ids),
            "survivors_finished_s_after_kill": finished_after_kill,
        }
        db.client.close()

    together, killed = figures["together"], figures["killed"]

    def all_settled(outcome_counts: Mapping[str, int]) -> bool:
        return all(k in SETTLED for k in outcome_counts)

    checks = [
        Check(
            f"successful requests of 3 workers on one {RPD}-RPD project, {count}-note backlog",
            f"≤ {RPD}",
            f"{together['emulator']['ok']} ({together['emulator']['429']} × 429)",
            together["emulator"]["ok"] <= RPD,
        ),
        Check(
            "notes enriched by two workers",
            "0",
            str(together["enriched_twice"]),
            together["enriched_twice"] == 0,
        ),
        Check(
            "every note done, or deferred/failed with a reason",
            "all",
            "; ".join(f"{k}: {v}" for k, v in together["outcome"].items()),
            all_settled(together["outcome"]),
        ),
        Check(
            "workers that did work",
            "≥ 2 of 3",
            ", ".join(f"{k}: {v}" for k, v in together["enriched_by_worker"].items()),
            sum(1 for v in together["enriched_by_worker"].values() if v) >= 2,
        ),
        Check(
            "a second copy of one worker",
            "stopped by the overlap lease (exit 3)",
            f"exit {together['second_copy_exit_status']}",
            together["second_copy_exit_status"] == 3,
        ),
        Check(
            "one worker killed -9 mid-run: requests, notes enriched twice, notes settled",
            f"≤ {RPD}; 0 by the survivors; all, its claimed notes finished by the others",
            f"{killed['emulator']['ok']}; {killed['enriched_twice']}; "
            + "; ".join(f"{k}: {v}" for k, v in killed["outcome"].items())
            + f"; {killed['victim_notes_done']} of its {killed['victim_claims_at_kill']} "
            f"claimed notes done",
            killed["emulator"]["ok"] <= RPD
            and killed["enriched_twice"] == 0
            and all_settled(killed["outcome"])
            and killed["victim_claims_at_kill"] > 0
            and killed["victim_notes_done"] == killed["victim_claims_at_kill"],
        ),
    ]
    return finish(NAME, quick=args.quick, started=started, figures=figures, checks=checks)


if __name__ == "__main__":
    raise SystemExit(main())
