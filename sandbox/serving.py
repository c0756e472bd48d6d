"""Serve from a background thread: one asyncio event loop per server, started and stopped
from a synchronous caller (a test, a benchmark, the demo).

The sandbox site and the Gemini emulator both run their aiohttp apps this way; the
start-up handshake (wait until listening, re-raise a failed start in the caller) and
the shutdown order (stop serving, clean up, end the executor threads, close the loop)
live here once. Imports nothing of the crawler.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

Step = Callable[[], Awaitable[None]]


class LoopThread:
    """An event loop on a daemon thread that runs ``startup`` then serves until ``stop()``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, startup: Step, cleanup: Step) -> None:
        """Run ``startup()`` on a new loop in a new thread and return once it is done.

        If it fails, ``cleanup()`` runs, the thread ends and its exception is raised here.
        Otherwise the loop serves until :meth:`stop`, which runs ``cleanup()`` on it.
        """
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(startup())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                loop.run_until_complete(cleanup())
            ready.set()
            if not failure:
                loop.run_forever()
                loop.run_until_complete(cleanup())
            # Work sent to the default executor (image rendering): do not leave its threads.
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

        thread = threading.Thread(target=run, name=self.name, daemon=True)
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            raise failure[0]
        self._loop, self._thread = loop, thread

    def stop(self, timeout: float = 30) -> None:
        """Stop serving, run the cleanup and end the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=timeout)
        self._loop = self._thread = None
