"""Pure parts of the emulator: clock, quota windows, formats, config, text heuristics."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sandbox.gemini import Clock, ConfigError, Limits, load_config
from sandbox.gemini.clock import next_pacific_midnight, pacific_day
from sandbox.gemini.content import image_tokens, parse_generate_request, text_tokens
from sandbox.gemini.errors import go_duration
from sandbox.gemini.generate import key_points, language, split_note
from sandbox.gemini.quota import QuotaTracker
from sandbox.gemini.scenario import ScenarioError, parse_outcome

PACIFIC = ZoneInfo("America/Los_Angeles")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (39.953659281, "39.953659281s"),
        (1.029, "1.029s"),
        (0.964972314, "964.972314ms"),
        (2.0, "2s"),
        (0.0, "0ms"),
    ],
)
def test_go_duration_matches_the_service_format(seconds, text):
    assert go_duration(seconds) == text


@pytest.mark.parametrize(
    ("size", "tokens"),
    [((384, 384), 258), ((385, 100), 258), ((768, 769), 516), ((1536, 1537), 6 * 258)],
)
def test_image_tokens(size, tokens):
    assert image_tokens(*size) == tokens


def test_text_tokens_round_up():
    assert [text_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_pacific_day_and_midnight_across_dst():
    # 2026-03-08 has 23 hours in Los Angeles, 2026-11-01 has 25.
    start = datetime(2026, 3, 7, 12, tzinfo=PACIFIC).timestamp()
    assert next_pacific_midnight(start) == datetime(2026, 3, 8, 8, tzinfo=UTC)
    after = next_pacific_midnight(next_pacific_midnight(start).timestamp())
    assert after == datetime(2026, 3, 9, 7, tzinfo=UTC)
    fall = datetime(2026, 11, 1, 12, tzinfo=PACIFIC).timestamp()
    assert next_pacific_midnight(fall) == datetime(2026, 11, 2, 8, tzinfo=UTC)
    assert pacific_day(datetime(2026, 11, 2, 7, 59, 59, tzinfo=UTC).timestamp()) == "2026-11-01"
    assert pacific_day(datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC).timestamp()) == "2026-11-02"


def test_clock_frozen_and_running():
    frozen = Clock(datetime(2026, 1, 1, tzinfo=UTC), frozen=True)
    assert frozen.advance(90).isoformat() == "2026-01-01T00:01:30+00:00"
    assert frozen.set(datetime(2026, 5, 1)) == datetime(2026, 5, 1, tzinfo=UTC)
    running = Clock()
    before = running.time()
    running.advance(3600)
    assert running.time() - before >= 3600
    running.freeze()
    assert running.frozen and running.time() == running.time()


def test_quota_minute_window_frees_the_right_slot():
    quota = QuotaTracker({}, 0.0)
    limits = Limits(rpm=3, tpm=1000, rpd=100)
    for t in (0.0, 10.0, 20.0):
        assert quota.admit("p", "m", limits, 1, t) is None
    refused = quota.admit("p", "m", limits, 1, 30.0)
    assert (refused.kind, refused.limit, refused.retry_after) == ("per_minute", 3, 30.0)
    assert quota.admit("p", "m", limits, 1, 60.0) is None  # the call at 0.0 has left
    assert quota.admit("p", "m", limits, 1, 65.0).retry_after == 5.0
    assert quota.admit("q", "m", limits, 1, 65.0) is None  # another project


def test_quota_tokens_and_day():
    start = datetime(2026, 6, 1, 23, 59, tzinfo=PACIFIC).timestamp()
    quota = QuotaTracker({("p", "m"): 4}, start)
    limits = Limits(rpm=100, tpm=100, rpd=5)
    assert quota.admit("p", "m", limits, 60, start) is None
    assert quota.admit("p", "m", limits, 1, start + 1).kind == "per_day"
    tomorrow = start + 120
    assert quota.admit("p", "m", limits, 50, tomorrow) is None
    refused = quota.admit("p", "m", limits, 60, tomorrow + 1)
    assert (refused.kind, refused.retry_after) == ("input_tokens", 59.0)
    assert quota.admit("p", "m", limits, 101, tomorrow + 200).retry_after == 60.0
    assert quota.admit("p", "m", Limits(rpm=0, tpm=1, rpd=1), 1, tomorrow).kind == "limit_zero"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"projects": {"p": {"keys": [{"key": "k", "status": "stolen"}]}}}, "status"),
        ({"projects": {"p": {"limits": {"m": {"rph": 1}}}}}, "rph"),
        ({"projects": {"p": {"keys": ["k"]}, "q": {"keys": ["k"]}}}, "twice"),
        ({"default_limits": {"rpd": -1}}, "non-negative"),
        ({"models": {"m": {"retired": "yes"}}}, "models.m.retired"),
        ({"rates": {"503": 2}}, "scenario: rates"),
        ({"script": [{"outcome": "boom"}]}, "scenario: unknown outcome"),
    ],
)
def test_config_errors_name_the_entry(raw, message):
    with pytest.raises(ConfigError, match=message):
        load_config(raw)


def test_config_limits_resolution():
    config = load_config(
        {
            "default_limits": {"rpd": 50},
            "projects": {
                "p": {"default_limits": {"rpm": 7}, "limits": {"m": {"rpd": 20, "used_today": 3}}}
            },
        }
    )
    assert config.limits("p", "m") == Limits(rpm=7, tpm=1_000_000_000, rpd=20)
    assert config.limits("p", "other") == Limits(rpm=7, tpm=1_000_000_000, rpd=50)
    assert config.projects["p"].used_today == {"m": 3}
    assert config.accept_any_key is None


def test_outcome_aliases_and_errors():
    assert parse_outcome("503").kind == "overloaded"
    assert parse_outcome({"outcome": "429_minute", "retry_delay": "2s"}).retry_delay == 2.0
    with pytest.raises(ScenarioError):
        parse_outcome("418")


def test_note_heuristics_without_labels():
    note = split_note(["Image 0:", "Great trip to Kyoto. Loved it!\n- Book early\n- Is it busy?"])
    assert note.body.startswith("Great trip") and "Image 0" not in note.body
    assert key_points(note) == ["Book early", "Is it busy?"]
    assert language(note.body) == "en"
    assert language("今天天气很好 ok") == "zh"


def test_request_parsing_accepts_both_spellings_and_rejects_bad_base64():
    parsed = parse_generate_request(
        {
            "contents": {"parts": [{"text": "a"}]},
            "generation_config": {"thinking_config": {"thinkingBudget": 5}, "maxOutputTokens": 9},
        }
    )
    assert (parsed.thinking_budget, parsed.max_output_tokens, parsed.texts) == (5, 9, ("a",))
    with pytest.raises(ValueError, match="Base64"):
        parse_generate_request(
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "@@"}}]}]}
        )


def test_request_parsing_rejects_a_non_object_config():
    with pytest.raises(ValueError, match="generation_config"):
        parse_generate_request({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": []})


def test_note_sections_of_a_labelled_prompt():
    prompt = (
        "下面是一篇笔记。\n\n标题：露营清单\n正文：第一段。\n\n- 带帐篷\n- 带睡袋\n"
        "标签：露营、户外\n\n请完成以下任务：\n1. images：逐张输出\n2. summary：总结"
    )
    note = split_note([prompt, "Image 0:"])
    assert note.title == "露营清单"
    assert note.body == "第一段。\n\n- 带帐篷\n- 带睡袋"
    assert note.tags == ("露营", "户外")
    assert key_points(note) == ["带帐篷", "带睡袋"]


def test_emulator_bodies_are_the_real_ones():
    from sandbox.gemini.errors import BODIES
    from tests.emulator.helpers import FIXTURES

    copies = sorted(p.name for p in BODIES.glob("*.json"))
    assert len(copies) == 14
    for name in copies:
        if name != "504_deadline_exceeded.json":  # not among the captured bodies
            assert (BODIES / name).read_bytes() == (FIXTURES / name).read_bytes(), name
