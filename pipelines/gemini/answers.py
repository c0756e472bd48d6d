"""What one ``generateContent`` request asks for and what its answer means.

:func:`generation_config` builds the JSON-mode request config (thinking switched off
where the model allows it, the SDK's automatic function calling off, a per-request
timeout when given); :func:`read_answer` turns a response into a :class:`Generation`
or raises what it means: ``ContentBlocked`` (prompt feedback or a blocking finish
reason), ``EmptyAnswer`` (no candidates, no block reason), ``TruncatedOutput``
(``MAX_TOKENS`` or no parsable JSON). Pure apart from the stats counters it bumps.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from google.genai import types

from .errors import ContentBlocked, EmptyAnswer, TruncatedOutput, blocking_finish_reason

Schema = type | dict[str, Any]

_MODEL_VERSION = re.compile(r"^gemini-(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Generation:
    """One successful structured answer.

    ``usage``: ``prompt_tokens``, ``output_tokens`` (answer + thinking, both billed as
    output), ``total_tokens`` and ``requests`` (requests this call sent, retries, 429s
    and timed-out ones included).
    """

    parsed: Any
    text: str
    model: str
    project: str
    key_fp: str
    usage: dict[str, int]
    finish_reason: str


def thinking_config_for(model: str, thinking: bool) -> types.ThinkingConfig | None:
    """Thinking settings a model accepts.

    2.5 models take a budget (0 = off; 2.5 Pro cannot switch thinking off, 128 is its
    minimum), Gemini 3 takes a level, 1.x/2.0 and unversioned aliases reject the field.
    With ``thinking=True`` the model's own default is used.
    """
    match = _MODEL_VERSION.match(model)
    if thinking or match is None:
        return None
    version = (int(match.group(1)), int(match.group(2) or 0))
    if version >= (3, 0):
        return types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW)
    if version == (2, 5):
        return types.ThinkingConfig(thinking_budget=128 if "-pro" in model else 0)
    return None


def generation_config(
    model: str,
    schema: Schema,
    *,
    thinking: bool,
    max_output_tokens: int,
    timeout: float | None = None,
) -> types.GenerateContentConfig:
    """JSON-mode request config for ``model``; ``timeout`` (seconds) overrides the client's."""
    return types.GenerateContentConfig(
        response_mime_type="application/json",
        response_schema=schema,
        max_output_tokens=max_output_tokens,
        thinking_config=thinking_config_for(model, thinking),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        http_options=None if timeout is None else types.HttpOptions(timeout=int(timeout * 1000)),
    )


def read_answer(
    response: types.GenerateContentResponse,
    *,
    model: str,
    project: str,
    key_fp: str,
    requests: int,
    stats: Counter[str],
) -> Generation:
    """The answer as a :class:`Generation` (``requests``: what the call has sent so far),
    or the exception that says why there is none."""
    meta = response.usage_metadata
    prompt = (meta.prompt_token_count or 0) if meta else 0
    output = ((meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)) if meta else 0
    total = (meta.total_token_count or prompt + output) if meta else 0
    stats["tokens_in"] += prompt
    stats["tokens_out"] += output
    where = f"model {model}, project {project}, key {key_fp}"
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        stats["blocked/prompt_blocked"] += 1
        raise ContentBlocked(
            "prompt_blocked", f"prompt blocked ({wire_name(feedback.block_reason)}; {where})"
        )
    if not response.candidates:
        stats["empty_answers"] += 1
        raise EmptyAnswer(
            "no_candidates", f"the answer has no candidates and no block reason ({where})"
        )
    finish = wire_name(response.candidates[0].finish_reason)
    if blocking_finish_reason(finish):
        stats[f"blocked/{finish.lower()}"] += 1
        raise ContentBlocked(finish.lower(), f"answer withheld: finish reason {finish} ({where})")
    if finish == "MAX_TOKENS":
        stats["truncated/max_tokens"] += 1
        raise TruncatedOutput("max_tokens", f"output cut at max_output_tokens ({where})")
    if response.parsed is None:
        stats["truncated/unparsable"] += 1
        raise TruncatedOutput("unparsable", f"no valid JSON for the schema in the answer ({where})")
    return Generation(
        parsed=response.parsed,
        text=response.text or "",
        model=model,
        project=project,
        key_fp=key_fp,
        usage={
            "prompt_tokens": prompt,
            "output_tokens": output,
            "total_tokens": total,
            "requests": requests,
        },
        finish_reason=finish,
    )


def wire_name(value: object) -> str:
    """Enum or string to its wire name (``FinishReason.STOP`` → ``STOP``)."""
    if value is None:
        return ""
    return str(getattr(value, "value", value))
