"""Storage write benchmark: batched pipeline writes vs one ``update_one`` per note.

Starts the embedded server (``python -m pipelines.mongo serve``) on a temporary data
directory, then in one run:

1. stores N new notes through :class:`MongoStoragePipeline` (unordered ``bulk_write``
   of ``MONGO_BATCH_SIZE`` notes, inserts for notes the incremental check found new,
   + ``insert_many`` of their ``note_stats`` rows);
2. stores the same N notes with one ``update_one`` per write of :func:`note_writes` and
   one journaled ``insert_one`` per note (durable per note, as storage's batches are
   per batch), into another database of the same server;
3. re-crawl (informational): the same N notes again, all stored already, both ways
   (batched merges are updates too, so this speed-up is smaller);
   steps 1-3 run ``--rounds`` times (default 3), interleaved, each round into fresh
   databases; each way's best round is compared (the machine's load moves single runs);
4. runs a 10,000-note pipeline run in a child process and reads its peak RSS.

Prints notes/s for both with the server's and the client's CPU time per note, the
speed-up (target: batched ≥ 5× faster in wall time; the CPU ratio is printed too, as it
depends less on the machine's load), the peak RSS, writes
``bench/results/storage_writes.json`` and ends with a one-line verdict.

On secantus (a Python server) most of a note's cost is the server's per-document work
(five secondary indexes, the time-series row), which batching cannot remove; batching
removes the per-command overhead on both sides and the round trips.

    .venv/bin/python bench/storage_writes.py [--notes 2000] [--rss-notes 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from pymongo import AsyncMongoClient, WriteConcern  # noqa: E402
from scrapy.utils.test import get_crawler  # noqa: E402

from crawler.core.items import NoteInteract, NoteItem  # noqa: E402
from crawler.settings import knob_defaults  # noqa: E402
from pipelines.mongo import close_mongo, utcnow  # noqa: E402
from pipelines.storage import (  # noqa: E402
    NOTE_STATS,
    NOTES,
    MongoStoragePipeline,
    ensure_schema,
    note_writes,
    prepare_unit,
)
from sandbox.harness import MongoServer  # noqa: E402
from tests.factories import T0, enrichment, make_image, make_note, make_user  # noqa: E402

TARGET_SPEEDUP = 5.0
MODES = ("first_batched", "first_update_one", "recrawl_batched", "recrawl_update_one")


def bench_note(i: int, change: str = "new") -> NoteItem:
    """A note of realistic size: ~600 characters of text, 4 images, tags, counts."""
    return make_note(
        i,
        title=f"周末露营装备清单 第{i}篇",
        desc=("帐篷、睡袋、防潮垫、炉头和气罐都要提前检查。#露营[话题]# " * 12)[:600],
        user=make_user(i % 97, avatar="https://x/a.jpg"),
        tags=["露营", "户外", f"tag{i % 13}"],
        published_at=T0 - timedelta(hours=i),
        updated_at=T0 - timedelta(hours=i) + timedelta(minutes=5),
        ip_location="浙江",
        interact=NoteInteract(liked=i % 5000, collected=i % 700, comments=i % 90, shares=i % 30),
        images=[
            make_image(
                i, k, original_urls=[f"https://sns-img-bd.xhscdn.com/spectrum/1040g{i:08x}{k}"]
            )
            for k in range(4)
        ],
        change=change,
        enrichment=enrichment("done"),
    )


class Meter:
    """Wall time, this process's CPU time and the server process's CPU time of a block."""

    def __init__(self, server_pid: int | None) -> None:
        self._server = psutil.Process(server_pid) if server_pid else None
        self.result: dict[str, float] = {}

    def _server_cpu(self) -> float:
        if self._server is None:
            return 0.0
        times = self._server.cpu_times()
        return times.user + times.system

    def __enter__(self) -> Meter:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self._srv = self._server_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = {
            "seconds": time.perf_counter() - self._wall,
            "client_cpu_s": time.process_time() - self._cpu,
            "server_cpu_s": self._server_cpu() - self._srv,
        }


def summary(n: int, measured: dict[str, float]) -> dict[str, float]:
    return {
        "notes_per_s": round(n / measured["seconds"], 1),
        "client_cpu_ms_per_note": round(1000 * measured["client_cpu_s"] / n, 2),
        "server_cpu_ms_per_note": round(1000 * measured["server_cpu_s"] / n, 2),
    }


async def batched_run(
    uri: str, database: str, n: int, spool: Path, meter: Meter, change: str = "new"
) -> None:
    crawler = get_crawler(
        settings_dict={
            **knob_defaults,  # storage reads every knob without a default of its own
            "MONGO_URI": uri,
            "MONGO_DATABASE": database,
            "MONGO_SPOOL_PATH": str(spool),
        }
    )
    pipeline = MongoStoragePipeline.from_crawler(crawler)
    await pipeline.open_spider()
    with meter:  # notes made one at a time, as a crawl yields them (RSS stays honest)
        for i in range(n):
            await pipeline.process_item(bench_note(i, change))
            await asyncio.sleep(0)  # a crawl hands items over from its event loop
        await pipeline.close_spider()
    await close_mongo(crawler)
    stored = crawler.stats.get_value("storage/upserted", 0) + crawler.stats.get_value(
        "storage/modified", 0
    )
    if stored != n:
        raise RuntimeError(f"batched run stored {stored} of {n} notes")


async def single_run(uri: str, database: str, n: int, meter: Meter, change: str = "new") -> None:
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True)
    db = client[database]
    await ensure_schema(db)
    stats = db.get_collection(NOTE_STATS, write_concern=WriteConcern(j=True))
    with meter:
        for i in range(n):  # the same per-note preparation as the pipeline, one write each
            unit = prepare_unit(
                bench_note(i, change), now=utcnow(), run_id="bench", max_chars=100_000
            )
            for filter_, update, upsert in note_writes(unit):
                await db[NOTES].update_one(filter_, update, upsert=upsert)
            # Journaled like storage's batches: each note is durable when it returns.
            await stats.insert_one(dict(unit["stats"]))
    count = await db[NOTES].count_documents({})
    await client.close()
    if count != n:
        raise RuntimeError(f"single run stored {count} of {n} notes")


def child_rss(uri: str, n: int, spool: Path) -> dict[str, Any]:
    """Run an n-note pipeline run in a child process; its peak RSS in MiB."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", uri, "--rss-notes", str(n), "--spool", str(spool)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_main(uri: str, n: int, spool: Path) -> None:
    meter = Meter(None)
    asyncio.run(batched_run(uri, "bench_rss", n, spool, meter))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"notes": n, "seconds": round(meter.result["seconds"], 2)}
    print(json.dumps({**result, "peak_rss_mib": round(peak_kib / 1024, 1)}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notes", type=int, default=2000)
    parser.add_argument("--rss-notes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", metavar="URI")
    parser.add_argument("--spool", type=Path)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.rss_notes, args.spool)
        return 0

    load_at_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        server = MongoServer(Path(tmp) / "mongo", process=True).start()
        try:
            uri = server.uri
            spool = Path(tmp) / "spool.jsonl"
            rounds: dict[str, list[dict[str, float]]] = {k: [] for k in MODES}
            for r in range(args.rounds):  # interleaved, fresh databases each round
                for mode, change in (("first", "new"), ("recrawl", "unchanged")):
                    batched, single = Meter(server.pid), Meter(server.pid)
                    db_b, db_s = f"bench_batched_{r}", f"bench_single_{r}"
                    asyncio.run(batched_run(uri, db_b, args.notes, spool, batched, change))
                    asyncio.run(single_run(uri, db_s, args.notes, single, change))
                    rounds[f"{mode}_batched"].append(summary(args.notes, batched.result))
                    rounds[f"{mode}_update_one"].append(summary(args.notes, single.result))
            rss = child_rss(uri, args.rss_notes, spool)
        finally:
            server.stop()

    best = {k: max(v, key=lambda r: r["notes_per_s"]) for k, v in rounds.items()}
    b, s1 = best["first_batched"], best["first_update_one"]
    rb, rs = best["recrawl_batched"], best["recrawl_update_one"]
    speedup = b["notes_per_s"] / s1["notes_per_s"]
    re_speedup = rb["notes_per_s"] / rs["notes_per_s"]
    ok = speedup >= TARGET_SPEEDUP

    def cpu(r: dict[str, float]) -> float:
        return r["server_cpu_ms_per_note"] + r["client_cpu_ms_per_note"]

    cpu_speedup = cpu(s1) / cpu(b)  # less sensitive to the machine's load than wall time
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": load_at_start,
        },
        "server": "secantus via python -m pipelines.mongo serve (separate process)",
        "notes": args.notes,
        "rounds": rounds,
        "batched": b,
        "update_one": s1,
        "speedup": round(speedup, 2),
        "cpu_speedup": round(cpu_speedup, 2),
        "recrawl": {"batched": rb, "update_one": rs, "speedup": round(re_speedup, 2)},
        "target_speedup": TARGET_SPEEDUP,
        "rss_run": {**rss, "notes_per_s": round(rss["notes"] / rss["seconds"], 1)},
        "verdict": "pass" if ok else "fail",
    }
    out = ROOT / "bench" / "results" / "storage_writes.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    rows = (
        ("batched (bulk_write of 100)", b),
        ("one update_one per note", s1),
        ("re-crawl: batched", rb),
        ("re-crawl: one update_one", rs),
    )
    for name, r in rows:
        print(
            f"{name:28s} {r['notes_per_s']:8.1f} notes/s  server CPU "
            f"{r['server_cpu_ms_per_note']:.2f} ms/note  client CPU "
            f"{r['client_cpu_ms_per_note']:.2f} ms/note"
        )
    print(
        f"{'PASS' if ok else 'FAIL'}: batched writes are {speedup:.1f}x faster than one "
        f"update_one per note (target >= {TARGET_SPEEDUP:.0f}x; {cpu_speedup:.1f}x less CPU "
        f"per note; re-crawl of stored notes {re_speedup:.1f}x); peak RSS "
        f"{rss['peak_rss_mib']} MiB for a {rss['notes']}-note run "
        f"({result['rss_run']['notes_per_s']} notes/s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
