"""The wire protocol over raw HTTP: spellings, keys, headers, scenario knobs, log."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sandbox.gemini import key_fp
from tests.emulator.helpers import fixture_body, picture

GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"


def call(
    base_url: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = "raw-key",
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTP call; returns (status, headers, parsed JSON body)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(base_url + path, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if key is not None:
        request.add_header("x-goog-api-key", key)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


SCHEMA_CAMEL = {
    "type": "OBJECT",
    "properties": {
        "images": {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {"ocr_text": {"type": "STRING"}, "index": {"type": "INTEGER"}},
                "propertyOrdering": ["index", "ocr_text"],
            },
        },
        "summary": {"type": "STRING"},
    },
    "propertyOrdering": ["summary", "images"],
}


def request_body(snake: bool) -> dict[str, Any]:
    image = base64.b64encode(picture(20, 20)).decode()
    schema = json.loads(json.dumps(SCHEMA_CAMEL).replace("propertyOrdering", "property_ordering"))
    if snake:
        return {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "Title: A day out. It was fine."},
                        {"inline_data": {"mime_type": "image/png", "data": image}},
                    ],
                }
            ],
            "system_instruction": {"parts": [{"text": "Be brief."}]},
            "generation_config": {
                "response_mime_type": "application/json",
                "response_schema": schema,
                "max_output_tokens": 2000,
                "thinking_config": {"thinking_budget": 0},
            },
            "safety_settings": [],
            "some_future_field": {"ignored": True},
        }
    return {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Title: A day out. It was fine."},
                    {"inlineData": {"mimeType": "image/png", "data": image}},
                ],
            }
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": SCHEMA_CAMEL,
            "maxOutputTokens": 2000,
            "thinkingConfig": {"thinkingBudget": 0},
        },
    }


def test_snake_case_and_camel_case_requests_are_the_same(gemini_emulator):
    answers = []
    for snake in (True, False):
        status, headers, body = call(gemini_emulator.base_url, GENERATE, request_body(snake))
        assert status == 200
        assert headers["Content-Type"] == "application/json; charset=UTF-8"
        answers.append(body)
    snake_answer, camel_answer = answers
    for answer in answers:
        assert set(answer) == {"candidates", "usageMetadata", "modelVersion", "responseId"}
        candidate = answer["candidates"][0]
        assert candidate["content"]["role"] == "model"
        assert (candidate["finishReason"], candidate["index"]) == ("STOP", 0)
        assert "thoughtsTokenCount" not in answer["usageMetadata"]
    assert snake_answer["usageMetadata"] == camel_answer["usageMetadata"]
    assert snake_answer["usageMetadata"]["promptTokenCount"] == 258 + 8 + 3  # image + texts
    text = snake_answer["candidates"][0]["content"]["parts"][0]["text"]
    assert text == camel_answer["candidates"][0]["content"]["parts"][0]["text"]
    parsed = json.loads(text)
    assert list(parsed) == ["summary", "images"]
    assert list(parsed["images"][0]) == ["index", "ocr_text"]
    assert snake_answer["responseId"] != camel_answer["responseId"]


def test_keys_header_query_and_statuses(make_gemini_emulator):
    emu = make_gemini_emulator(
        {
            "projects": {
                "p": {
                    "keys": [
                        "good",
                        {"key": "leaky", "status": "leaked"},
                        {"key": "abroad", "status": "location"},
                        {"key": "broke", "status": "depleted"},
                        {"key": "revoked", "status": "invalid"},
                    ]
                }
            }
        }
    )
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    url = emu.base_url
    assert call(url, GENERATE, body, key="good")[0] == 200
    assert call(url, GENERATE + "?key=good", body, key=None)[0] == 200
    expected = {
        None: (403, "403_unregistered_caller.json"),
        "unknown": (400, "400_api_key_invalid.json"),
        "revoked": (400, "400_api_key_invalid.json"),
        "leaky": (403, "403_key_leaked.json"),
        "abroad": (400, "400_user_location_not_supported.json"),
        "broke": (402, "402_prepay_credits_depleted.json"),
    }
    for key, (status, name) in expected.items():
        got_status, headers, got = call(url, GENERATE, body, key=key)
        assert (got_status, got) == (status, fixture_body(name)), key
        assert headers["Content-Type"] == "application/json; charset=UTF-8"
    # A key can be disabled at run time.
    emu.control(key_status={"good": "leaked"})
    assert call(url, GENERATE, body, key="good")[0] == 403
    logged = call(url, "/_emulator/log")[2]["requests"]
    assert all("good" not in json.dumps(r) and "leaky" not in json.dumps(r) for r in logged)
    assert logged[0]["key_fp"] == key_fp("good")
    assert [r["error"] for r in logged[2:4]] == ["unregistered_caller", "api_key_invalid"]


def test_v1_routes_and_bad_requests(make_gemini_emulator):
    emu = make_gemini_emulator({"accept_any_key": True, "max_request_bytes": 4096})
    url = emu.base_url
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    assert call(url, "/v1/models/gemini-2.5-flash:generateContent", body)[0] == 200
    status, _, err = call(url, "/v1/models/gemini-1.5-flash:generateContent", body)
    assert status == 404 and "for API version v1," in err["error"]["message"]
    status, _, err = call(url, GENERATE, raw=b"{not json")
    assert (status, err["error"]["status"]) == (400, "INVALID_ARGUMENT")
    status, _, err = call(url, GENERATE, {"contents": []})
    assert status == 400 and "contents is not specified" in err["error"]["message"]
    status, _, err = call(url, GENERATE, {"contents": [{"parts": [{"text": "x" * 5000}]}]})
    assert err["error"]["message"] == "Request payload size exceeds the limit: 4096 bytes."


def test_scripted_sequence_per_key_then_normal(gemini_emulator):
    url = gemini_emulator.base_url
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    gemini_emulator.control(script={"key": "flaky", "times": 3, "outcome": "503"})
    gemini_emulator.control(script={"key": "flaky", "outcome": "429_minute", "retry_delay": "2s"})
    assert call(url, GENERATE, body, key="steady")[0] == 200
    for _ in range(3):
        status, _, err = call(url, GENERATE, body, key="flaky")
        assert (status, err) == (503, fixture_body("503_overloaded.json"))
    status, _, err = call(url, GENERATE, body, key="flaky")
    assert status == 429
    details = {d["@type"].rsplit(".", 1)[1]: d for d in err["error"]["details"]}
    assert details["RetryInfo"]["retryDelay"] == "2s"
    assert (
        details["QuotaFailure"]["violations"][0]["quotaId"]
        == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    )
    assert "Please retry in 2s." in err["error"]["message"]
    assert call(url, GENERATE, body, key="flaky")[0] == 200
    state = call(url, "/_emulator/state")[2]
    assert state["scenario"]["script"] == []
    # Forced errors spend no quota: 2 admitted calls.
    assert state["quota"][0]["requests_today"] == 2


def test_deadline_error_rates_and_latency(gemini_emulator):
    url = gemini_emulator.base_url
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    gemini_emulator.control(deadline_seconds=0.2, script={"outcome": "504"})
    started = time.monotonic()
    status, _, err = call(url, GENERATE, body)
    assert time.monotonic() - started >= 0.2
    assert (status, err["error"]["status"]) == (504, "DEADLINE_EXCEEDED")

    gemini_emulator.control(rates={"500": 0.5}, seed=3)
    statuses = [call(url, GENERATE, body)[0] for _ in range(30)]
    assert set(statuses) == {200, 500}
    gemini_emulator.control(rates={}, latency={"fixed": 0.05})
    gemini_emulator.reset_log()
    assert call(url, GENERATE, body)[0] == 200
    assert gemini_emulator.requests[0].latency_ms >= 50


@pytest.mark.parametrize(
    "knobs",
    [
        {"rates": {"503": 1.5}},
        {"script": {"outcome": "teapot"}},
        {"key_status": {"k": "odd"}},
        {"rate": {"503": 0.1}},
    ],
)
def test_control_rejects_bad_knobs(gemini_emulator, knobs):
    status, _, body = call(gemini_emulator.base_url, "/_emulator/control", knobs)
    assert status == 400 and body["error"]


SCENARIOS = Path(__file__).resolve().parents[2] / "sandbox" / "gemini" / "scenarios"


def test_shipped_scenario_files(make_gemini_emulator):
    emu = make_gemini_emulator(SCENARIOS / "free_tier.toml")
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    pro = "/v1beta/models/gemini-2.5-pro:generateContent"
    status, _, err = call(emu.base_url, pro, body, key="sandbox-key-1a")
    assert status == 429 and "limit: 0, model: gemini-2.5-pro" in err["error"]["message"]
    assert call(emu.base_url, GENERATE, body, key="sandbox-key-2a")[0] == 200
    assert call(emu.base_url, GENERATE, body, key="someone-else")[0] == 400

    flaky = make_gemini_emulator(SCENARIOS / "flaky.toml")
    scenario = flaky.control()["scenario"]
    assert scenario["latency"] == {"min": 0.2, "max": 1.5, "per_output_token": 0.0}
    assert scenario["rates"]["overloaded"] == 0.05
