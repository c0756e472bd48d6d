"""Retry timing after a per-minute 429, and the 429s a fresh client pays at an unknown limit.

1. The Gemini emulator is scripted to answer the next ``generateContent`` with a
   per-minute 429 whose ``RetryInfo.retryDelay`` is D (1, 2, 5 s); :class:`GeminiClient`
   then retries. The gap is measured on the emulator's request log: from the moment the
   429 was answered to the moment the retry arrived (its log time minus its handling
   time). Target: never below D, at most D + 1 s.
2. Slow start at 60 RPM (the client is not told): a fresh client keeps 16 calls in
   flight against answers of 1 s for whole minutes. Target: at most 2 429s, and the
   requests admitted within those minutes at least 95 % of 60 per minute.

``python -m bench.retry_timing [--quick]``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from bench.common import Check, finish, parse_args
from pipelines.gemini import GeminiClient, GeminiSettings
from sandbox.gemini import GeminiEmulator, RequestRecord

NAME = "retry_timing"
DELAYS = (1.0, 2.0, 5.0)
SLACK_S = 1.0
MODEL = "gemini-2.5-flash-lite"
RPM = 60
IN_FLIGHT = 16
MAX_429 = 2


class Answer(BaseModel):
    answer: str


def arrival(record: RequestRecord) -> float:
    """When a request arrived: its log time is when it was answered."""
    return (record.time - timedelta(milliseconds=record.latency_ms)).timestamp()


def retry_gap(records: Sequence[RequestRecord]) -> float:
    """Seconds from the (last) 429 answer to the arrival of the request after it."""
    calls = [r for r in records if r.method == "generateContent"]
    for earlier, later in zip(calls[-2::-1], calls[::-1], strict=False):
        if earlier.status == 429:
            return arrival(later) - earlier.time.timestamp()
    raise RuntimeError("no 429 followed by a retry in the log")


def client_settings(emulator: GeminiEmulator, **extra: Any) -> GeminiSettings:
    return GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": "bench:bench-retry-key",
            "GEMINI_BASE_URL": emulator.base_url,
            "GEMINI_MODELS": MODEL,
            **extra,
        }
    )


async def slow_start(emulator: GeminiEmulator, minutes: int) -> dict[str, Any]:
    """16 calls kept in flight for ``minutes`` whole minutes after the first admitted one."""
    settings = client_settings(emulator, GEMINI_MAX_IN_FLIGHT=str(IN_FLIGHT))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + minutes * 60 + 3

    async with GeminiClient(settings) as client:

        async def worker(n: int) -> None:
            while loop.time() < deadline:
                await client.generate([f"请用一句话回答：{n} 加一等于几？"], Answer)

        await asyncio.gather(*(worker(n) for n in range(IN_FLIGHT)))
    calls = [r for r in emulator.requests if r.method == "generateContent"]
    admitted = sorted(arrival(r) for r in calls if r.status == 200)
    in_window = sum(1 for t in admitted if t - admitted[0] < minutes * 60)
    return {
        "rpm_limit": RPM,
        "in_flight": IN_FLIGHT,
        "minutes": minutes,
        "http_429": sum(1 for r in calls if r.status == 429),
        "admitted_in_window": in_window,
        "ideal_in_window": RPM * minutes,
        "fraction_of_rpm": round(in_window / (RPM * minutes), 3),
    }


async def measure(emulator: GeminiEmulator, repeats: int) -> list[dict[str, Any]]:
    settings = client_settings(emulator)
    rows = []
    async with GeminiClient(settings) as client:
        await client.generate(["你好"], Answer)  # proves the pair: no probe in the way
        for delay in DELAYS:
            for _ in range(repeats):
                emulator.reset_log()
                emulator.control(script={"outcome": "429_minute", "retry_delay": delay})
                await client.generate(["请回答：一加一等于几？"], Answer)
                gap = retry_gap(emulator.requests)
                rows.append({"retry_delay_s": delay, "gap_s": round(gap, 3)})
                print(f"retryDelay {delay:g} s → next request after {gap:.3f} s", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    started = time.monotonic()
    repeats = 2 if args.quick else 5
    with GeminiEmulator(port=0) as emulator:
        rows = asyncio.run(measure(emulator, repeats))
    limited = {"accept_any_key": "bench", "default_limits": {"rpm": RPM}, "latency": 1.0}
    with GeminiEmulator(config=limited, port=0) as emulator:
        start = asyncio.run(slow_start(emulator, 1 if args.quick else 2))
    print(f"slow start at {RPM} RPM: {start}", flush=True)
    summary = {}
    checks = []
    for delay in DELAYS:
        gaps = [r["gap_s"] for r in rows if r["retry_delay_s"] == delay]
        summary[f"{delay:g}s"] = {"min_s": min(gaps), "max_s": max(gaps), "gaps_s": gaps}
        checks.append(
            Check(
                f"wait after a 429 with retryDelay {delay:g} s",
                f"{delay:g} s ≤ wait ≤ {delay + SLACK_S:g} s",
                f"{min(gaps):.2f}-{max(gaps):.2f} s over {len(gaps)} retries",
                min(gaps) >= delay and max(gaps) <= delay + SLACK_S,
            )
        )
    checks.append(
        Check(
            f"429s of a fresh client at an unknown {RPM} RPM ({IN_FLIGHT} in flight, 1 s answers)",
            f"≤ {MAX_429} × 429, ≥ 95 % of {RPM}/min admitted",
            f"{start['http_429']} × 429, {start['admitted_in_window']} of "
            f"{start['ideal_in_window']} admitted in {start['minutes']} min",
            start["http_429"] <= MAX_429 and start["fraction_of_rpm"] >= 0.95,
        )
    )
    figures = {"repeats_per_delay": repeats, "by_retry_delay": summary, "slow_start": start}
    return finish(NAME, quick=args.quick, started=started, figures=figures, checks=checks)


if __name__ == "__main__":
    raise SystemExit(main())
