"""pipelines/gemini/catalog.py: the model list at start, through the real SDK against the
emulator's ``models.list`` (paged like the service), and which configured models stay."""

from __future__ import annotations

import logging

from google import genai
from google.genai import types

from pipelines.gemini.catalog import TokenLimits, kept_models, list_models
from tests.gemini_client.helpers import FLASH, KEY_A1, LITE, RETIRED


async def test_list_models_reads_actions_and_token_limits(make_gemini_emulator) -> None:
    emu = make_gemini_emulator(
        {
            "projects": {"proj-a": {"keys": [KEY_A1]}},
            "models": {LITE: {"input_token_limit": 8000, "output_token_limit": 4000}},
        }
    )
    sdk = genai.Client(api_key=KEY_A1, http_options=types.HttpOptions(base_url=emu.base_url))
    try:
        offered, limits = await list_models(sdk)
    finally:
        await sdk.aio.aclose()
    assert "generateContent" in offered[LITE] and FLASH in offered
    assert RETIRED not in offered  # retired: the service no longer lists it
    assert limits[LITE] == TokenLimits(input=8000, output=4000)
    assert limits[FLASH].input and limits[FLASH].output  # the emulator's defaults


def test_kept_models_keeps_the_order_and_says_why_one_goes(caplog) -> None:
    offered = {LITE: ["generateContent"], FLASH: ["generateContent"], "embed": ["embedContent"]}
    with caplog.at_level(logging.WARNING, logger="pipelines.gemini"):
        kept = kept_models([FLASH, RETIRED, "embed", LITE], offered)
    assert kept == [FLASH, LITE]
    messages = [r.getMessage() for r in caplog.records]
    assert any(RETIRED in m and "retired or misspelt" in m for m in messages)
    assert any("embed" in m and "does not support generateContent" in m for m in messages)
