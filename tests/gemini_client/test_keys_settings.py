"""Key parsing, fingerprints (no raw key anywhere) and settings."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict

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
from pipelines.gemini.settings import NUMERIC_SETTINGS, GeminiSettingsError, is_known_model

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
    assert parse_keys(" , ,", "  ") == ()


@pytest.mark.parametrize(
    ("keys", "single", "setting", "says"),
    [
        ("::", "", "GEMINI_API_KEYS", "entry 1 has 2 ':'"),
        (f"projA:{SECRET_A1},a:b:c", "", "GEMINI_API_KEYS", "entry 2 has 2 ':'"),
        ("projA:", "", "GEMINI_API_KEYS", "entry 1 has no key"),
        (f"projA:{SECRET_A1[:10]} {SECRET_A1[10:]}", "", "GEMINI_API_KEYS", "contains whitespace"),
        (f"proj A:{SECRET_A1}", "", "GEMINI_API_KEYS", "project name contains whitespace"),
        ("", f"{SECRET_B} x", "GEMINI_API_KEY", "contains whitespace"),
    ],
)
def test_malformed_keys_name_the_setting_never_the_key(keys, single, setting, says) -> None:
    with pytest.raises(GeminiSettingsError) as info:
        GeminiSettings.from_env_like({"GEMINI_API_KEYS": keys, "GEMINI_API_KEY": single})
    message = str(info.value)
    assert isinstance(info.value, ValueError) and info.value.setting == setting
    assert message.startswith(f"{setting}: ") and says in message, message
    for part in (SECRET_A1, SECRET_A1[:10], SECRET_A1[10:], SECRET_B, "a:b:c"):
        assert part not in message
    if "key (" in message:  # the fingerprint names the key
        assert "(k:" in message


def test_models_naming_only_unknown_ones_is_an_error() -> None:
    with pytest.raises(GeminiSettingsError) as info:
        GeminiSettings.from_env_like({"GEMINI_MODELS": "gpt-4o, gemini-embedding-001,flash"})
    assert info.value.setting == "GEMINI_MODELS"
    assert str(info.value).startswith("GEMINI_MODELS: none of gpt-4o, gemini-embedding-001, flash")
    # One known name is enough: the others are left to models.list at start.
    kept = GeminiSettings.from_env_like({"GEMINI_MODELS": "gpt-4o,models/gemini-3.5-flash"})
    assert kept.models == ("gpt-4o", "gemini-3.5-flash")
    for name in ("gemini-2.5-flash-lite", "gemini-flash-latest", "gemma-3-27b-it",
                 "gemini-2.5-flash-preview-09-2025", "gemini-9-experimental"):  # fmt: skip
        assert is_known_model(name), name
    for name in ("gemini", "gemini-embedding-001", "text-bison", "GPT-4"):
        assert not is_known_model(name), name


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GEMINI_TIMEOUT", "abc"),
        ("GEMINI_MAX_IN_FLIGHT", "1.5x"),
        ("GEMINI_LIMITS", "m:rpm=x"),
        ("GEMINI_TIMEOUT_RETRY_FACTOR", "0.5"),
    ],
)
def test_malformed_numbers_name_the_setting(name, value) -> None:
    with pytest.raises(GeminiSettingsError) as info:
        GeminiSettings.from_env_like({name: value})
    assert info.value.setting == name and str(info.value).startswith(f"{name}: ")


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


def test_scrapy_free_defaults_are_the_declared_knobs() -> None:
    """GeminiSettings' field defaults are the only defaults in pipelines/ (used without
    Scrapy, from os.environ); each must be the value crawler/settings.py declares, or a
    crawl and a script would run the client differently. Every declared GEMINI_* knob is
    read by from_env_like."""
    from crawler.settings import knob_defaults

    declared = {k: v for k, v in knob_defaults.items() if k.startswith("GEMINI_")}
    defaults = GeminiSettings()
    for name, attr, _minimum in NUMERIC_SETTINGS:
        assert getattr(defaults, attr) == declared[name], name
    assert defaults.models == parse_models(declared["GEMINI_MODELS"])
    assert (defaults.keys, defaults.base_url, dict(defaults.limits)) == ((), None, {})
    assert (declared["GEMINI_API_KEYS"], declared["GEMINI_API_KEY"]) == ("", "")
    assert (declared["GEMINI_BASE_URL"], declared["GEMINI_LIMITS"]) == ("", "")
    text_knobs = {"GEMINI_API_KEYS", "GEMINI_API_KEY", "GEMINI_MODELS", "GEMINI_BASE_URL"}
    read = {name for name, _attr, _minimum in NUMERIC_SETTINGS} | text_knobs | {"GEMINI_LIMITS"}
    assert read == set(declared)
    assert asdict(GeminiSettings.from_env_like({})) == asdict(
        GeminiSettings.from_env_like(declared)
    )
