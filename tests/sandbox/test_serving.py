"""sandbox/serving.py: an event loop on a thread, started and stopped synchronously."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sandbox.serving import LoopThread


def test_start_serves_until_stop_then_cleans_up() -> None:
    events: list[str] = []
    loop_thread = LoopThread("t-serve")

    async def startup() -> None:
        events.append(f"startup on {threading.current_thread().name}")

    async def cleanup() -> None:
        await asyncio.sleep(0)
        events.append("cleanup")

    loop_thread.start(startup, cleanup)
    assert loop_thread.running and events == ["startup on t-serve"]
    with pytest.raises(RuntimeError, match="already started"):
        loop_thread.start(startup, cleanup)
    loop_thread.stop()
    assert not loop_thread.running and events[-1] == "cleanup"
    loop_thread.stop()  # idempotent
    assert events.count("cleanup") == 1
    assert not any(t.name == "t-serve" for t in threading.enumerate())


def test_a_failed_start_is_raised_in_the_caller_after_cleanup() -> None:
    cleaned: list[bool] = []
    loop_thread = LoopThread("t-fail")

    async def startup() -> None:
        raise OSError("port busy")

    async def cleanup() -> None:
        cleaned.append(True)

    with pytest.raises(OSError, match="port busy"):
        loop_thread.start(startup, cleanup)
    assert cleaned == [True] and not loop_thread.running
    assert not any(t.name == "t-fail" for t in threading.enumerate())
