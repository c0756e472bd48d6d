"""Client-side limiter with a fake clock: RPM/TPM sliding windows, RPD per Pacific day."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from google.genai import types
from PIL import Image

from pipelines.gemini import (
    ModelLimits,
    RateLimiter,
    estimate_tokens,
    next_pacific_midnight,
    pacific_day,
)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


T0 = ts("2026-11-29T15:00:00+00:00")  # 07:00 Pacific (PST)


def test_rpm_sliding_window() -> None:
    limiter = RateLimiter(ModelLimits(rpm=3))
    for offset in (0.0, 10.0, 20.0):
        assert limiter.next_admission(T0 + offset, 1) == T0 + offset
        limiter.record(T0 + offset, 1)
    # The 4th request must wait until the first leaves the 60 s window (+ 1 s margin).
    assert limiter.next_admission(T0 + 30, 1) == T0 + 61
    assert limiter.next_admission(T0 + 61, 1) == T0 + 61
    limiter.record(T0 + 61, 1)
    # Now the window holds 10, 20, 61: the next slot opens when 10 leaves.
    assert limiter.next_admission(T0 + 62, 1) == T0 + 71


def test_an_answered_request_counts_from_its_answer() -> None:
    """The server counted a request somewhere between our send and its answer: a slow
    upload admitted late must not see its slot reused a window after the send."""
    limiter = RateLimiter(ModelLimits(rpm=2))
    limiter.record(T0, 1)  # a large body: answered 8 s later
    limiter.record(T0 + 1, 1)  # answered at once
    limiter.settle(T0, 1, T0 + 8)
    limiter.settle(T0 + 1, 1, T0 + 1.5)
    # The window is ordered by the settled times: the 1.5 s one leaves first.
    assert limiter.next_admission(T0 + 10, 1) == T0 + 62.5
    limiter.record(T0 + 62.5, 1)
    assert limiter.next_admission(T0 + 63, 1) == T0 + 69
    # An answer that left the window already (or was refunded) changes nothing.
    limiter.settle(T0 + 1, 1, T0 + 99)
    assert limiter.next_admission(T0 + 63, 1) == T0 + 69


def test_refund_gives_a_refused_request_back() -> None:
    """A 429'd request spent no quota: neither its window slot nor its day count stays."""
    limiter = RateLimiter(ModelLimits(rpm=2, rpd=5))
    limiter.record(T0, 1)
    limiter.record(T0 + 1, 1)
    assert limiter.next_admission(T0 + 2, 1) == T0 + 61
    limiter.refund(T0 + 1, 1)
    assert limiter.next_admission(T0 + 2, 1) == T0 + 2
    assert limiter.day_count == 1
    limiter.refund(T0 - 3600, 1)  # long gone from the window: only the day count
    assert limiter.day_count == 0


def test_tpm_window() -> None:
    limiter = RateLimiter(ModelLimits(tpm=1000))
    limiter.record(T0, 600)
    limiter.record(T0 + 5, 300)
    assert limiter.next_admission(T0 + 6, 100) == T0 + 6
    # 600 + 300 + 200 > 1000: wait until the 600 leaves.
    assert limiter.next_admission(T0 + 6, 200) == T0 + 61
    # Bigger than the whole budget: goes once the window is empty.
    assert limiter.next_admission(T0 + 6, 5000) == T0 + 66


def test_rpd_resets_at_pacific_midnight() -> None:
    limiter = RateLimiter(ModelLimits(rpd=2))
    limiter.record(T0, 1)
    limiter.record(T0 + 100, 1)
    midnight = ts("2026-11-30T00:00:00-08:00")
    assert limiter.next_admission(T0 + 200, 1) == midnight
    assert limiter.next_admission(midnight - 1, 1) == midnight
    assert limiter.next_admission(midnight, 1) == midnight
    limiter.record(midnight, 1)
    assert limiter.day_count == 1


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-07T12:00:00-08:00", "2026-03-08T00:00:00-08:00"),
        # Spring forward (2026-03-08, 02:00 PST -> 03:00 PDT).
        ("2026-03-08T12:00:00-07:00", "2026-03-09T00:00:00-07:00"),
        # Fall back (2026-11-01, 02:00 PDT -> 01:00 PST): 01:30 happens twice.
        ("2026-11-01T01:30:00-07:00", "2026-11-02T00:00:00-08:00"),
        ("2026-11-01T01:30:00-08:00", "2026-11-02T00:00:00-08:00"),
        ("2026-11-29T23:59:59-08:00", "2026-11-30T00:00:00-08:00"),
        ("2026-11-30T00:00:00-08:00", "2026-12-01T00:00:00-08:00"),
    ],
)
def test_next_pacific_midnight_across_dst(now: str, expected: str) -> None:
    assert next_pacific_midnight(ts(now)) == ts(expected)


@pytest.mark.parametrize(
    ("day_start", "hours"),
    [
        ("2026-03-08T00:00:00-08:00", 23),
        ("2026-11-01T00:00:00-07:00", 25),
        ("2026-11-29T00:00:00-08:00", 24),
    ],
)
def test_quota_day_length(day_start: str, hours: int) -> None:
    assert (next_pacific_midnight(ts(day_start)) - ts(day_start)) / 3600 == hours


def test_rpd_across_fall_back_day() -> None:
    """On the 25-hour day, 23:30 local is still the same quota day as 00:30."""
    limiter = RateLimiter(ModelLimits(rpd=1))
    start = ts("2026-11-01T00:30:00-07:00")
    limiter.record(start, 1)
    late = ts("2026-11-01T23:30:00-08:00")
    assert late - start == 24 * 3600
    assert pacific_day(late) == pacific_day(start)
    assert limiter.next_admission(late, 1) == ts("2026-11-02T00:00:00-08:00")


def test_block_and_lower() -> None:
    limiter = RateLimiter(ModelLimits(rpm=10, rpd=100))
    limiter.block(T0 + 2.5)
    assert limiter.next_admission(T0, 1) == T0 + 2.5
    assert limiter.lower(ModelLimits(rpm=2))
    assert limiter.limits == ModelLimits(rpm=2, rpd=100)
    assert not limiter.lower(ModelLimits(rpm=5))  # only ever lowered
    limiter.record(T0 + 3, 1)
    limiter.record(T0 + 4, 1)
    assert limiter.next_admission(T0 + 5, 1) == T0 + 64


def test_restored_day_count_only_counts_today() -> None:
    limiter = RateLimiter(ModelLimits(rpd=20))
    limiter.restore_day(pacific_day(T0), 20)
    assert limiter.next_admission(T0, 1) == next_pacific_midnight(T0)
    stale = RateLimiter(ModelLimits(rpd=20))
    stale.restore_day(pacific_day(T0 - 86400), 20)
    assert stale.next_admission(T0, 1) == T0


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, "PNG")
    return buf.getvalue()


def test_estimate_tokens() -> None:
    text = "x" * 400
    parts = [
        text,
        types.Part.from_text(text="y" * 8),
        types.Part.from_bytes(data=_png(300, 200), mime_type="image/png"),  # small: 258
        types.Part.from_bytes(data=_png(1000, 1600), mime_type="image/png"),  # 2 x 3 tiles
        types.Part.from_bytes(data=b"not an image", mime_type="image/jpeg"),  # unknown: 1 tile
    ]
    assert estimate_tokens(parts) == 100 + 2 + 258 + 6 * 258 + 258


def test_pacific_day_is_a_date() -> None:
    assert pacific_day(ts("2026-11-30T07:59:59+00:00")).isoformat() == "2026-11-29"
    assert pacific_day(ts("2026-11-30T08:00:00+00:00")).isoformat() == "2026-11-30"
    assert datetime.fromtimestamp(next_pacific_midnight(T0), UTC).hour == 8


def test_unknown_rpm_spacing_runs_on_an_absolute_timeline() -> None:
    """Requests spaced 0.05 s while the RPM is unknown: each one leaving 0.01 s late
    (event-loop lag) does not push the next back; after a stall the timeline restarts
    from the late send, never closer than half a spacing."""
    limiter = RateLimiter(ModelLimits(), unknown_rpm_spacing=0.05)
    assert limiter.next_admission(T0, 1) == T0
    sent = T0
    for i in range(1, 11):
        limiter.record(sent, 1)
        allowed = limiter.next_admission(sent, 1)
        assert allowed == pytest.approx(T0 + 0.05 * i)  # not sent + 0.05: no drift
        sent = allowed + 0.01  # the loop wakes the sender late
    limiter.record(sent, 1)
    stall = sent + 5.0  # idle: the next goes at once, the one after half a spacing later
    assert limiter.next_admission(stall, 1) == stall
    limiter.record(stall, 1)
    assert limiter.next_admission(stall, 1) == pytest.approx(stall + 0.025)
    known = RateLimiter(ModelLimits(rpm=1000), unknown_rpm_spacing=0.05)
    known.record(T0, 1)
    assert known.next_admission(T0, 1) == T0  # a known RPM: no spacing
