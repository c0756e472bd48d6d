"""The model list at start: what ``models.list`` offers, and which configured models stay.

A configured model the service does not offer (retired or misspelt) or that cannot
``generateContent`` is dropped with a warning; the others keep their preference order.
``inputTokenLimit`` and ``outputTokenLimit`` per model are kept for packing
(``GeminiClient.input_token_limit`` / ``output_token_limit``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .settings import normalize_model

logger = logging.getLogger(__name__)

_MODELS_PAGE_SIZE = 100
# The input a pack may fill when models.list did not say: every current Gemini model
# takes at least this much (2.5 flash-lite: 1,048,576).
UNSTATED_INPUT_TOKEN_LIMIT = 1_000_000


@dataclass(frozen=True)
class TokenLimits:
    """What ``models.list`` says one model takes and gives per request (None: not said)."""

    input: int | None
    output: int | None


async def list_models(sdk: Any) -> tuple[dict[str, list[str]], dict[str, TokenLimits]]:
    """``(supported actions per model, token limits per model)`` from one SDK client."""
    pager = await sdk.aio.models.list(config={"page_size": _MODELS_PAGE_SIZE})
    offered: dict[str, list[str]] = {}
    limits: dict[str, TokenLimits] = {}
    async for model in pager:
        if model.name:
            name = normalize_model(model.name)
            offered[name] = list(model.supported_actions or [])
            limits[name] = TokenLimits(
                int(model.input_token_limit) if model.input_token_limit else None,
                int(model.output_token_limit) if model.output_token_limit else None,
            )
    return offered, limits


def kept_models(configured: Sequence[str], offered: dict[str, list[str]]) -> list[str]:
    """The configured models the service offers for ``generateContent``, in order."""
    kept: list[str] = []
    for model in configured:
        actions = offered.get(model)
        if actions is None:
            logger.warning(
                "Gemini model %s dropped: models.list does not offer it (retired or misspelt)",
                model,
            )
        elif "generateContent" not in actions:
            logger.warning("Gemini model %s dropped: it does not support generateContent", model)
        else:
            kept.append(model)
    return kept
