"""Client-side limiter per (project, model), Pacific-day arithmetic and token estimates.

The limiter keeps us under the configured or learned RPM, input-TPM and RPD so that a
429 is the exception: sliding windows for requests and input tokens, and a request
counter per Pacific calendar day (Gemini daily quotas reset at 00:00
America/Los_Angeles). Times are POSIX seconds from an injectable clock.

The window is the server's 60 s plus ``WINDOW_MARGIN_SECONDS``. We book a request when
we send it, so that concurrent decisions see it at once; the server counts it when it
has received it, which can be seconds later for a large body sent beside fifteen others
(a slow uplink, or a server that is busy reading). So once the request is answered its
booking moves to the answer's time (``settle``): the server counted it somewhere between
our send and its answer, and a slot reused a window after the answer can never reach the
server before the old request has left *its* window. A request the server refused with a
429 spent no quota and is taken back out (``refund``).

While the RPM is unknown (neither configured nor learned), requests are spaced
``unknown_rpm_spacing`` apart: refusals come back within a round trip, so requests sent
in one instant (the answers of a batch arrive together) would all run into an unknown
limit together; spaced, the first 429 teaches the limit before the next one leaves.
The spacing runs on an absolute timeline (the next allowed send time advances by one
spacing per request from the previous allowed time, not from when the request actually
left): a request that leaves late because the event loop was busy does not push every
later one back, so loop lag does not add up over a burst. Lag beyond half a spacing
(an idle pair, a long stall) restarts the timeline from the late send, so two requests
never leave closer than half a spacing apart.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from google.genai import types

PACIFIC = ZoneInfo("America/Los_Angeles")
WINDOW_SECONDS = 60.0
WINDOW_MARGIN_SECONDS = 1.0
_SPAN = WINDOW_SECONDS + WINDOW_MARGIN_SECONDS
TOKENS_PER_TILE = 258
TILE_PIXELS = 768
SMALL_IMAGE_PIXELS = 384


def pacific_day(ts: float) -> date:
    """The Pacific calendar day a POSIX time falls on (the quota day)."""
    return datetime.fromtimestamp(ts, PACIFIC).date()


def next_pacific_midnight(ts: float) -> float:
    """POSIX time of the next 00:00 America/Los_Angeles after ``ts`` (DST-aware)."""
    tomorrow = pacific_day(ts) + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=PACIFIC).timestamp()


@dataclass(frozen=True)
class ModelLimits:
    """Requests per minute, input tokens per minute, requests per (Pacific) day; None = no limit."""

    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None

    def lowered(self, other: ModelLimits) -> ModelLimits:
        """The stricter of both limits, metric by metric."""

        def low(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else min(a, b)

        return ModelLimits(
            low(self.rpm, other.rpm), low(self.tpm, other.tpm), low(self.rpd, other.rpd)
        )

    def as_dict(self) -> dict[str, int | None]:
        return {"rpm": self.rpm, "tpm": self.tpm, "rpd": self.rpd}


class RateLimiter:
    """Admission control for one (project, model).

    ``next_admission`` answers when a request of a given size could go; ``record``
    books it. Both run without an ``await`` in between in the client, so concurrent
    calls cannot overbook a window.
    """

    def __init__(self, limits: ModelLimits | None = None, unknown_rpm_spacing: float = 0.0) -> None:
        self.limits = limits or ModelLimits()
        self.unknown_rpm_spacing = unknown_rpm_spacing
        self._window: list[tuple[float, int]] = []  # (booked at, tokens), by time
        self._day: date | None = None
        self._day_count = 0
        self.blocked_until = 0.0
        self._next_spaced = 0.0  # the next send time allowed while the RPM is unknown

    @property
    def day_count(self) -> int:
        return self._day_count

    @property
    def day(self) -> date | None:
        return self._day

    def restore_day(self, day: date, count: int) -> None:
        """Load a persisted per-day counter (ignored later if the day has changed)."""
        self._day, self._day_count = day, count

    def lower(self, limits: ModelLimits) -> bool:
        """Apply a learned (stricter) limit; True if anything changed."""
        new = self.limits.lowered(limits)
        changed = new != self.limits
        self.limits = new
        return changed

    def block(self, until: float) -> None:
        """Admit nothing before ``until`` (after a per-minute 429)."""
        self.blocked_until = max(self.blocked_until, until)

    def _roll(self, now: float) -> None:
        gone = bisect.bisect_right(self._window, (now - _SPAN, math.inf))
        del self._window[:gone]
        today = pacific_day(now)
        if self._day != today:
            self._day, self._day_count = today, 0

    def next_admission(self, now: float, tokens: int) -> float:
        """Earliest time >= ``now`` at which a request of ``tokens`` input tokens fits."""
        self._roll(now)
        limits = self.limits
        if limits.rpd is not None and self._day_count >= limits.rpd:
            return next_pacific_midnight(now)
        at = max(now, self.blocked_until)
        entries = list(self._window)
        if limits.rpm is None:
            at = max(at, self._next_spaced)
        if limits.rpm is not None and len(entries) >= max(limits.rpm, 1):
            # The oldest entries must leave until only rpm - 1 remain.
            at = max(at, entries[len(entries) - max(limits.rpm, 1)][0] + _SPAN)
        if limits.tpm is not None and entries:
            used = sum(t for _, t in entries)
            # A request larger than the whole budget still goes once the window is empty.
            budget = max(limits.tpm - min(tokens, limits.tpm), 0)
            for ts, spent in entries:
                if used <= budget:
                    break
                used -= spent
                at = max(at, ts + _SPAN)
        return at

    def record(self, now: float, tokens: int) -> None:
        """Book one request sent at ``now``."""
        self._roll(now)
        bisect.insort(self._window, (now, tokens))
        self._day_count += 1
        spacing = self.unknown_rpm_spacing
        self._next_spaced = max(self._next_spaced, now - spacing / 2) + spacing

    def settle(self, sent_at: float, tokens: int, answered_at: float) -> None:
        """The request booked at ``sent_at`` was answered at ``answered_at``: count it from
        then on (see the module docstring). Nothing if it already left the window."""
        with contextlib.suppress(ValueError):
            self._window.remove((sent_at, tokens))
            bisect.insort(self._window, (max(answered_at, sent_at), tokens))

    def refund(self, sent_at: float, tokens: int) -> None:
        """Take back a request booked at ``sent_at`` that the server did not count."""
        with contextlib.suppress(ValueError):  # already rolled out of the window
            self._window.remove((sent_at, tokens))
        if self._day == pacific_day(sent_at) and self._day_count > 0:
            self._day_count -= 1


def image_tokens(width: int, height: int) -> int:
    """Gemini 2.x image cost: 258 tokens if both sides <= 384 px, else 258 per 768x768 tile."""
    if width <= SMALL_IMAGE_PIXELS and height <= SMALL_IMAGE_PIXELS:
        return TOKENS_PER_TILE
    return TOKENS_PER_TILE * math.ceil(width / TILE_PIXELS) * math.ceil(height / TILE_PIXELS)


@functools.cache
def _register_heif() -> None:
    """Let Pillow read HEIC/HEIF headers (XHS originals are often HEIC) when available."""
    try:
        import pillow_heif
    except ImportError:
        return
    pillow_heif.register_heif_opener()


def _image_size(data: bytes) -> tuple[int, int] | None:
    from PIL import Image  # Pillow is only needed when images are sent

    _register_heif()
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:  # undecodable or unsupported: the server will judge it
        return None


def estimate_tokens(parts: Iterable[types.Part | str]) -> int:
    """Input-token estimate of a request: text chars / 4 plus the image tiles.

    Only headers are read to get image sizes; an image whose size cannot be read
    counts as one tile.
    """
    total = 0
    for part in parts:
        if isinstance(part, str):
            total += math.ceil(len(part) / 4)
            continue
        if part.text:
            total += math.ceil(len(part.text) / 4)
        blob = part.inline_data
        if blob is not None and blob.data:
            size = _image_size(blob.data)
            total += image_tokens(*size) if size else TOKENS_PER_TILE
    return total
