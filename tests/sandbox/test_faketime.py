"""sandbox/faketime.py: a subprocess whose wall clock runs ahead, monotonic time untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from sandbox import faketime
from sandbox.faketime import FaketimeMissing, shifted_clock_env

PROBE = "import json, time; print(json.dumps([time.time(), time.monotonic()]))"


def _clocks(env: dict[str, str]) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    wall, mono = json.loads(out.stdout)
    return wall, mono


@pytest.mark.parametrize("shift", [86_400, -3_600])
def test_the_wall_clock_moves_and_monotonic_does_not(shift: int) -> None:
    before_wall, before_mono = time.time(), time.monotonic()
    wall, mono = _clocks(shifted_clock_env(dict(os.environ), shift))
    assert abs(wall - before_wall - shift) < 30
    assert before_mono <= mono < before_mono + 30


def test_a_missing_library_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(faketime, "LIBRARY_GLOB", "/nonexistent/libfaketime.so.1")
    with pytest.raises(FaketimeMissing, match=r"bash \.ci/setup"):
        shifted_clock_env({}, 60)
