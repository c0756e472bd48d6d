"""Fixtures of the enrichment tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def settings(gemini_emulator, mongo_uri: str, mongo_db_name: str, tmp_path: Path) -> dict[str, Any]:
    """The enrichment pipeline's settings for Gemini on the test's emulator, the
    session's Mongo, and images stored under ``tmp_path``. A module that needs more
    overrides it as ``settings(settings)`` returning ``{**settings, …}``."""
    return {
        "ENRICH_BACKEND": "gemini",
        "GEMINI_API_KEYS": "proj-a:key-a1",
        "GEMINI_BASE_URL": gemini_emulator.base_url,
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": mongo_db_name,
        "IMAGES_STORE": str(tmp_path),
        # the cache journals failed writes beside the spool: never in the checkout's data/
        "MONGO_SPOOL_PATH": str(tmp_path / "spool" / "notes.jsonl"),
    }
