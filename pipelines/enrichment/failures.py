"""Why one note's enrichment attempt failed, as data: a ``kind`` (the stats key
``enrich/failed/<kind>``) and a short ``reason`` stored on the note."""

from __future__ import annotations

_MAX_REASON_CHARS = 300
#: Failure kinds worth another attempt later (the others would fail the same way again):
#: a truncated or miscounted answer, an unexpected error, a spent request budget
#: (usually a big note whose answer was truncated once), and answers without candidates
#: (twice in one call: a service glitch, not the note's fault).
RETRYABLE_FAILURES = frozenset(
    {"truncated", "image_count_mismatch", "error", "request_budget", "no_candidates"}
)


def clip_reason(text: str) -> str:
    """One line of at most 300 characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 1] + "…"


class EnrichFailure(Exception):
    """A note's enrichment failed for this attempt: ``kind`` is the stats key."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = clip_reason(f"{kind}: {reason}")

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_FAILURES
