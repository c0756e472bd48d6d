"""The model list at start: what ``models.list`` offers, and which configured models stay.

A configured model the service does not offer (retired or misspelt) or that cannot
``generateContent`` is dropped with a warning; the others keep their preference order.
``outputTokenLimit`` per model is kept for packing (``GeminiClient.output_token_limit``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .settings import normalize_model

logger = logging.getLogger(__name__)

_MODELS_PAGE_SIZE = 100


async def list_models(sdk: Any) -> tuple[dict[str, list[str]], dict[str, int]]:
    """``(supported actions per model, outputTokenLimit per model)`` from one SDK client."""
    pager = await sdk.aio.models.list(config={"page_size": _MODELS_PAGE_SIZE})
    offered: dict[str, list[str]] = {}
    output_limits: dict[str, int] = {}
    async for model in pager:
        if model.name:
            name = normalize_model(model.name)
            offered[name] = list(model.supported_actions or [])
            if model.output_token_limit:
                output_limits[name] = int(model.output_token_limit)
    return offered, output_limits


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
