"""Constants and config builders shared by the client tests against the emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pipelines.gemini import Failure, GeminiClient, classify

KEY_A1 = "test-key-project-a-1"
KEY_A2 = "test-key-project-a-2"
KEY_B1 = "test-key-project-b-1"
SECRETS = (KEY_A1, KEY_A2, KEY_B1)
LITE, FLASH, RETIRED = "gemini-2.5-flash-lite", "gemini-2.5-flash", "gemini-1.5-flash"
# 15:00 Pacific on a Sunday: the next quota day starts at 2026-11-30T08:00Z.
START = "2026-11-29T15:00:00-08:00"
BODIES = Path(__file__).resolve().parents[1] / "data" / "gemini-errors"  # real error bodies
NEXT_MIDNIGHT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
PROMPT = "笔记标题：算法面经\n1. 什么是注意力机制？\n2. 解释 KV cache。"


class NoteSummary(BaseModel):
    summary: str
    topics: list[str]


def project(name: str, keys: list[Any], **limits: dict[str, int]) -> dict[str, Any]:
    return {"keys": keys, "limits": limits}


def frozen_config(projects: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"clock": {"start": START, "frozen": True}, "projects": projects, **extra}


def generate_calls(emu: Any) -> list[Any]:
    return [r for r in emu.requests if r.method == "generateContent"]


def assert_no_secrets(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text)


async def close_all(*clients: GeminiClient) -> None:
    for client in clients:
        await client.close()


def failure_of(name: str) -> Failure:
    """The classified failure of one real error body (its status is the file's prefix)."""
    return classify(int(name[:3]), json.loads((BODIES / name).read_text()))
