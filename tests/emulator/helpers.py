"""Small helpers shared by the emulator tests (real SDK clients, body shapes)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from google import genai
from google.genai import types
from PIL import Image

from sandbox.gemini import GeminiEmulator

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "gemini-errors"


def client(target: GeminiEmulator | str, key: str = "test-key") -> genai.Client:
    """A real SDK client pointed at an emulator or its URL (v1beta, SDK retries off)."""
    base_url = target if isinstance(target, str) else target.base_url
    return genai.Client(
        api_key=key,
        http_options=types.HttpOptions(base_url=base_url, api_version="v1beta"),
    )


def fixture_body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def shape(value: Any) -> Any:
    """The key structure of a JSON value: dict keys recursively, list items, leaf types."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def picture(width: int, height: int, fmt: str = "PNG", colour: str = "white") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, fmt)
    return buf.getvalue()


def details_of(body: dict[str, Any], type_suffix: str) -> dict[str, Any]:
    """The ``error.details`` entry whose ``@type`` ends with ``type_suffix``."""
    return next(d for d in body["error"]["details"] if d["@type"].endswith(type_suffix))
