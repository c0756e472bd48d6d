"""Run a process "later": its wall clock shifted with libfaketime (Debian `faketime`).

Tests and the chaos run use it to run `scrapy crawl enrich` after the Gemini quota day
has rolled over (the emulator's clock moved to the next Pacific midnight) without any
clock hook in the product. Monotonic time is left alone, so timeouts and the event
loop behave.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping

LIBRARY_GLOB = "/usr/lib/*/faketime/libfaketime.so.1"


class FaketimeMissing(RuntimeError):
    """libfaketime is not installed (`bash .ci/setup` installs Debian's `faketime`)."""


def shifted_clock_env(env: Mapping[str, str], seconds: float) -> dict[str, str]:
    """`env` for a subprocess whose wall clock runs `seconds` ahead (or behind)."""
    libraries = glob.glob(LIBRARY_GLOB)
    if not libraries:
        raise FaketimeMissing("libfaketime is not installed: run `bash .ci/setup`")
    sign = "+" if seconds >= 0 else "-"
    return {
        **env,
        "LD_PRELOAD": libraries[0],
        "FAKETIME": f"{sign}{abs(int(seconds))}s",
        "DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_DONT_RESET": "1",
    }
