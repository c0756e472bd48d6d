"""Key parsing, fingerprints (no raw key anywhere) and settings."""

from __future__ import annotations

import hashlib
import logging

import pytest

from pipelines.gemini import (
    ApiKey,
    GeminiSettings,
    ModelLimits,
    key_fingerprint,
    parse_keys,
    parse_limits,
    parse_models,
    redact,
)
from pipelines.gemini.keys import solo_project_name

SECRET_A1 = "AIzaSyA1-fake-key-aaaaaaaaaaaaaaaaaaaaaa"
SECRET_A2 = "AIzaSyA2-fake-key-bbbbbbbbbbbbbbbbbbbbbb"
SECRET_B = "AIzaSyB0-fake-key-cccccccccccccccccccccc"


def test_fingerprint_shape() -> None:
    fp = key_fingerprint(SECRET_A1)
    assert fp == "k:" + hashlib.sha256(SECRET_A1.encode()).hexdigest()[:8]
    assert key_fingerprint(SECRET_A2) != fp


def test_parse_keys_groups_by_project() -> None:
    keys = parse_keys(
        f"projA:{SECRET_A1}, projA:{SECRET_A2},projB:{SECRET_B},{SECRET_A1}", "solo-key"
    )
    assert [(k.project, k.secret) for k in keys] == [
        ("projA", SECRET_A1),
        ("projA", SECRET_A2),
        ("projB", SECRET_B),
        (solo_project_name("solo-key"), "solo-key"),
    ]


def test_key_without_project_is_its_own_project() -> None:
    keys = parse_keys(f"{SECRET_A1},{SECRET_B},:{SECRET_A2}")
    assert len({k.project for k in keys}) == 3
    assert all(k.project.startswith("solo-k:") for k in keys)


def test_empty_specs() -> None:
    assert parse_keys("", "") == ()
    assert parse_keys(" , ,projA:", "  ") == ()


def test_no_raw_key_in_repr_str_settings_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    settings = GeminiSettings.from_env_like(
        {"GEMINI_API_KEYS": f"projA:{SECRET_A1},projB:{SECRET_B}", "GEMINI_API_KEY": SECRET_A2}
    )
    key = settings.keys[0]
    log = logging.getLogger("test.gemini.keys")
    with caplog.at_level(logging.DEBUG):
        log.warning("key %s / %r / settings %r / %s", key, key, settings, settings.keys)
    rendered = " ".join([repr(key), str(key), repr(settings), str(settings), caplog.text])
    for secret in (SECRET_A1, SECRET_A2, SECRET_B):
        assert secret not in rendered
    assert key.fingerprint in caplog.text


def test_api_key_fingerprint_is_derived() -> None:
    key = ApiKey(project="p", secret=SECRET_B)
    assert key.fingerprint == key_fingerprint(SECRET_B)
    assert str(key) == f"{key.fingerprint}@p"


def test_redact() -> None:
    text = (
        f"GET https://x/v1beta/models?key=whatever&a=1 failed for {SECRET_A1}; also AIza{'Z' * 35}"
    )
    out = redact(text, [SECRET_A1])
    assert SECRET_A1 not in out and "whatever" not in out and "AIza" + "Z" * 35 not in out
    assert key_fingerprint(SECRET_A1) in out


def test_parse_models_keeps_order() -> None:
    assert parse_models(" gemini-1.5-flash, models/gemini-2.5-flash-lite,,gemini-1.5-flash ") == (
        "gemini-1.5-flash",
        "gemini-2.5-flash-lite",
    )


def test_parse_limits() -> None:
    limits = parse_limits(
        "gemini-2.5-flash-lite:rpm=15,tpm=250000,rpd=20; gemini-2.5-flash: rpd=250 ;"
    )
    assert limits == {
        "gemini-2.5-flash-lite": ModelLimits(rpm=15, tpm=250000, rpd=20),
        "gemini-2.5-flash": ModelLimits(rpd=250),
    }


@pytest.mark.parametrize(
    "spec", ["gemini-x:rpx=1", "gemini-x:rpm=a", "rpm=1", "gemini-x:rpm=-1", "gemini-x:rpm"]
)
def test_parse_limits_rejects_typos(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_limits(spec)


def test_settings_from_env_like() -> None:
    settings = GeminiSettings.from_env_like(
        {
            "GEMINI_API_KEYS": f"projA:{SECRET_A1}",
            "GEMINI_MODELS": "gemini-2.5-flash-lite,gemini-2.5-flash",
            "GEMINI_BASE_URL": "http://127.0.0.1:9999",
            "GEMINI_MAX_IN_FLIGHT": 2,
            "GEMINI_TIMEOUT": "7.5",
            "GEMINI_LIMITS": "gemini-2.5-flash:rpd=20",
            "GEMINI_MAX_WAIT": "0",
        }
    )
    assert settings.models == ("gemini-2.5-flash-lite", "gemini-2.5-flash")
    assert settings.base_url == "http://127.0.0.1:9999"
    assert settings.api_version == "v1beta"
    assert (settings.max_in_flight, settings.request_timeout, settings.max_wait) == (2, 7.5, 0.0)
    assert settings.limits == {"gemini-2.5-flash": ModelLimits(rpd=20)}
    assert [(k.project, k.fingerprint) for k in settings.keys] == [
        ("projA", key_fingerprint(SECRET_A1))
    ]


def test_settings_defaults_and_validation() -> None:
    settings = GeminiSettings.from_env_like({})
    assert settings.keys == () and settings.base_url is None and settings.models
    assert (settings.max_retry_delay, settings.max_wait) == (60.0, 90.0)
    with pytest.raises(ValueError):
        GeminiSettings.from_env_like({"GEMINI_MAX_IN_FLIGHT": "0"})
    with pytest.raises(ValueError):
        GeminiSettings.from_env_like({"GEMINI_TIMEOUT": "-1"})
