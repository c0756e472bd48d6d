"""Shared test setup: every module in tests/fixtures/ is a pytest plugin of fixtures
(the embedded MongoDB-wire server, the sandbox site, the Gemini emulator …)."""

from __future__ import annotations

import os
from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)

# Tests never reach a real Gemini or a real XHS host.
for _name in ("GEMINI_API_KEY", "GEMINI_API_KEYS", "GEMINI_BASE_URL", "MONGO_URI", "REDIS_URL"):
    os.environ.pop(_name, None)
