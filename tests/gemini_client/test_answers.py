"""pipelines/gemini/answers.py: the request config per model family (thinking settings differ
by generation) and JSON mode."""

from __future__ import annotations

import pytest
from google.genai import types
from pydantic import BaseModel

from pipelines.gemini import generation_config, thinking_config_for


class Answer(BaseModel):
    summary: str


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gemini-2.5-flash-lite", types.ThinkingConfig(thinking_budget=0)),
        ("gemini-2.5-flash", types.ThinkingConfig(thinking_budget=0)),
        ("gemini-2.5-pro", types.ThinkingConfig(thinking_budget=128)),
        ("gemini-3-flash-preview", types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)),
        ("gemini-3.1-pro-preview", types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)),
        ("gemini-2.0-flash", None),
        ("gemini-1.5-flash", None),
        ("gemini-flash-latest", None),
    ],
)
def test_thinking_off(model: str, expected: types.ThinkingConfig | None) -> None:
    assert thinking_config_for(model, thinking=False) == expected


@pytest.mark.parametrize(
    "model", ["gemini-2.5-flash", "gemini-3-flash-preview", "gemini-2.0-flash"]
)
def test_thinking_on_uses_model_default(model: str) -> None:
    assert thinking_config_for(model, thinking=True) is None


def test_generation_config_is_json_mode() -> None:
    config = generation_config(
        "gemini-2.5-flash-lite", Answer, thinking=False, max_output_tokens=1024
    )
    assert config.response_mime_type == "application/json"
    assert config.response_schema is Answer
    assert config.max_output_tokens == 1024
    assert config.thinking_config == types.ThinkingConfig(thinking_budget=0)
    assert (
        generation_config(
            "gemini-2.0-flash", Answer, thinking=False, max_output_tokens=1
        ).thinking_config
        is None
    )
