"""Throughput of the Gemini emulator with zero latency (target: ≥ 200 requests/s).

Runs the emulator as a separate process (``bench.common.EmulatorProcess``) so the server
and the load generator do not share one interpreter lock, then sends JSON-mode
``generateContent`` calls (a short note, a response schema) over raw HTTP with aiohttp
and, for reference, through the real google-genai async client.

    .venv/bin/python -m bench.emulator_rps [--requests 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import EmulatorProcess

TARGET_RPS = 200.0
MODEL = "gemini-2.5-flash-lite"
BODY = {
    "contents": [{"role": "user", "parts": [{"text": "标题：测试\n正文：今天很好。1. 第一点\n"}]}],
    "generationConfig": {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "summary": {"type": "STRING"},
                "key_points": {"type": "ARRAY", "items": {"type": "STRING"}},
            },
        },
    },
}


async def raw_http(base_url: str, total: int, concurrency: int) -> float:
    """Requests per second over raw HTTP (keep-alive pool of ``concurrency``)."""
    url = f"{base_url}/v1beta/models/{MODEL}:generateContent"
    headers = {"x-goog-api-key": "bench-key"}
    remaining = iter(range(total))
    failures = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        for _ in remaining:
            async with session.post(url, json=BODY, headers=headers) as response:
                await response.read()
                failures += response.status != 200

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{failures} of {total} calls failed")
    return total / elapsed


async def through_sdk(base_url: str, total: int, concurrency: int) -> float:
    """Requests per second through ``client.aio.models.generate_content``."""
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key="bench-key",
        http_options=types.HttpOptions(base_url=base_url, api_version="v1beta"),
    )
    config = types.GenerateContentConfig(response_mime_type="application/json")
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await client.aio.models.generate_content(model=MODEL, contents="hi", config=config)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        return total / (time.perf_counter() - started)
    finally:
        await client.aio.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--sdk-requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-rps-") as tmp,
        EmulatorProcess(None, Path(tmp)) as emulator,
    ):
        base_url = emulator.base_url
        asyncio.run(raw_http(base_url, 100, args.concurrency))  # warm-up
        rps = asyncio.run(raw_http(base_url, args.requests, args.concurrency))
        sdk_rps = asyncio.run(through_sdk(base_url, args.sdk_requests, args.concurrency))
    print(f"raw HTTP: {rps:.0f} requests/s ({args.requests} calls, concurrency {args.concurrency})")
    print(f"google-genai aio client: {sdk_rps:.0f} requests/s ({args.sdk_requests} calls)")
    verdict = "PASS" if rps >= TARGET_RPS else "FAIL"
    print(f"verdict: {verdict} (raw HTTP {rps:.0f} requests/s, target ≥ {TARGET_RPS:.0f})")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
