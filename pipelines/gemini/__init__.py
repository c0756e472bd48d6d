"""Scrapy-free, quota-aware Gemini client (see docs/architecture.md "Gemini client").

Typical use::

    settings = GeminiSettings.from_env_like(os.environ)
    async with GeminiClient(settings, state_store=MemoryStateStore()) as client:
        generation = await client.generate([prompt, image_part], MySchema)
"""

from .answers import Generation, generation_config, thinking_config_for
from .client import GeminiClient
from .errors import (
    BadInput,
    ContentBlocked,
    EmptyAnswer,
    EnrichmentUnavailable,
    Failure,
    FailureKind,
    GeminiError,
    QuotaDeferred,
    RequestTimedOut,
    SendingStopped,
    TruncatedOutput,
    classify,
    classify_exception,
)
from .keys import ApiKey, key_fingerprint, parse_keys, redact
from .limiter import ModelLimits, RateLimiter, estimate_tokens, next_pacific_midnight, pacific_day
from .settings import (
    GeminiSettings,
    GeminiSettingsError,
    is_known_model,
    parse_limits,
    parse_models,
)
from .state import (
    Grant,
    MemoryStateStore,
    MinuteWindow,
    QuotaLedger,
    QuotaState,
    QuotaStateStore,
)

__all__ = [
    "ApiKey",
    "BadInput",
    "ContentBlocked",
    "EmptyAnswer",
    "EnrichmentUnavailable",
    "Failure",
    "FailureKind",
    "GeminiClient",
    "GeminiError",
    "GeminiSettings",
    "GeminiSettingsError",
    "Generation",
    "Grant",
    "MemoryStateStore",
    "MinuteWindow",
    "ModelLimits",
    "QuotaDeferred",
    "QuotaLedger",
    "QuotaState",
    "QuotaStateStore",
    "RateLimiter",
    "RequestTimedOut",
    "SendingStopped",
    "TruncatedOutput",
    "classify",
    "classify_exception",
    "estimate_tokens",
    "generation_config",
    "is_known_model",
    "key_fingerprint",
    "next_pacific_midnight",
    "pacific_day",
    "parse_keys",
    "parse_limits",
    "parse_models",
    "redact",
    "thinking_config_for",
]
