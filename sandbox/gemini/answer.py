"""Building the 200 body of ``generateContent`` (shape of the real answer, camelCase).

Token accounting follows the real service: thinking tokens count against the output
cap, the smaller of the request's ``maxOutputTokens`` and the model's
``outputTokenLimit`` (what ``models.get`` reports); an answer that would exceed it is
cut there (JSON text left truncated) with ``finishReason: MAX_TOKENS``, and
``usageMetadata`` counts the cut output. Blocked answers carry only the prompt's
tokens, and zero counts are left out as proto3 JSON does. A packed request (see
``pack``) is answered note by note.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.gemini.config import ModelSpec
from sandbox.gemini.content import GenerateRequest, ImageInfo, text_tokens
from sandbox.gemini.generate import json_answer, text_answer
from sandbox.gemini.pack import packed_answer, packed_item_schema, split_pack

DYNAMIC_THINKING_CAP = 24_576
_HARM_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)


@dataclass(frozen=True)
class Answer:
    body: dict[str, Any]
    output_tokens: int
    thoughts_tokens: int
    finish_reason: str | None
    fault: str | None = None  # a pack_* outcome that changed the answer


def thoughts_tokens(model: ModelSpec, request: GenerateRequest, prompt_tokens: int) -> int:
    """Deterministic thinking spend: none when off, else grows with the prompt, capped."""
    if not model.thinking or request.thinking_budget == 0:
        return 0
    if (
        request.thinking_budget is None
        and request.thinking_level is None
        and not model.thinks_by_default
    ):
        return 0
    natural = 48 + prompt_tokens // 16
    budget = request.thinking_budget
    cap = budget if budget is not None and budget > 0 else DYNAMIC_THINKING_CAP
    return min(natural, cap)


def safety_ratings(blocked: bool) -> list[dict[str, Any]]:
    ratings = [{"category": c, "probability": "NEGLIGIBLE"} for c in _HARM_CATEGORIES]
    if blocked:
        ratings[0] = {"category": _HARM_CATEGORIES[0], "probability": "HIGH", "blocked": True}
    return ratings


def _usage(prompt_text: int, prompt_image: int, output: int, thoughts: int) -> dict[str, Any]:
    prompt = prompt_text + prompt_image
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if output:
        usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = prompt + output + thoughts
    details = [{"modality": "TEXT", "tokenCount": prompt_text}]
    if prompt_image:
        details.append({"modality": "IMAGE", "tokenCount": prompt_image})
    usage["promptTokensDetails"] = details
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def build_answer(
    *,
    kind: str,
    model: ModelSpec,
    request: GenerateRequest,
    images: Sequence[ImageInfo],
    response_id: str,
) -> Answer:
    """The 200 body for outcome ``kind`` (``ok`` or one of the content outcomes)."""
    text_in = request.text_token_count
    image_in = sum(img.tokens for img in images)
    envelope = {"modelVersion": model.name, "responseId": response_id}
    if kind == "prompt_blocked":
        body = {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": safety_ratings(True)},
            "usageMetadata": _usage(text_in, image_in, 0, 0),
            **envelope,
        }
        return Answer(body, 0, 0, None)
    if kind == "empty_candidates":
        return Answer({"usageMetadata": _usage(text_in, image_in, 0, 0), **envelope}, 0, 0, None)
    thoughts = thoughts_tokens(model, request, text_in + image_in)
    if kind in ("safety", "recitation"):
        reason = kind.upper()
        candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
        if kind == "safety":
            candidate["safetyRatings"] = safety_ratings(True)
        body = {
            "candidates": [candidate],
            "usageMetadata": _usage(text_in, image_in, 0, thoughts),
            **envelope,
        }
        return Answer(body, 0, thoughts, reason)
    fault: str | None = None
    if request.json_mode:
        item = packed_item_schema(request.schema)
        if item is not None and request.schema is not None:
            notes = split_pack(request.layout, images)
            value, changed = packed_answer(
                request.schema, item, notes, kind, random.Random(response_id)
            )
            fault = kind if changed else None
        else:
            value = json_answer(request.schema, request.texts, images)
        text = json.dumps(value, ensure_ascii=False, indent=2)
    else:
        text = text_answer(request.texts, images)
    finish = "STOP"
    if kind == "invalid_json":
        # A trailing comma: valid-looking, rejected by every JSON parser.
        text = text.rstrip().removesuffix("}").rstrip() + ",\n}"
    elif kind == "max_tokens":
        text, finish = text[: max(len(text) // 2, 1)], "MAX_TOKENS"
    elif kind == "empty_content":
        text = ""
    limit = model.output_token_limit
    max_out = min(request.max_output_tokens or limit, limit)
    if thoughts >= max_out:
        thoughts, text, finish = max_out, "", "MAX_TOKENS"
    elif text_tokens(text) + thoughts > max_out:
        text, finish = text[: (max_out - thoughts) * 4], "MAX_TOKENS"
    content: dict[str, Any] = {"role": "model"}
    if text:
        content = {"parts": [{"text": text}], "role": "model"}
    output = text_tokens(text)
    body = {
        "candidates": [{"content": content, "finishReason": finish, "index": 0}],
        "usageMetadata": _usage(text_in, image_in, output, thoughts),
        **envelope,
    }
    return Answer(body, output, thoughts, finish, fault)
