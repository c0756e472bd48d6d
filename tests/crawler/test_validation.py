"""crawler/validation.py: every knob checked once, errors naming the knob, secrets never."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from crawler.config import ConfigError
from crawler.settings import knob_defaults
from crawler.validation import CHECKS, check_types, shown, validate_settings


def project(**overrides: object) -> Settings:
    return Settings({**knob_defaults, **overrides})


def test_the_declared_defaults_are_valid() -> None:
    validate_settings(project())


def test_every_check_names_a_declared_knob() -> None:
    assert set(CHECKS) <= set(knob_defaults)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("MONGO_BATCH_SIZE", "abc", "MONGO_BATCH_SIZE must be a whole number, got 'abc'"),
        ("ANTIBOT_COOLDOWN", "soon", "ANTIBOT_COOLDOWN must be a number, got 'soon'"),
        ("ANTIBOT_COOLDOWN", "nan", "ANTIBOT_COOLDOWN must be a finite number"),
        ("RUN_LEASE_ENABLED", "maybe", "RUN_LEASE_ENABLED must be true or false"),
        ("MEDIA_MAX_VIDEO_BYTES", "1e9x", "MEDIA_MAX_VIDEO_BYTES must be a whole number"),
    ],
)
def test_types_follow_the_declared_default(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        check_types(project(**{name: value}), knob_defaults)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("ENRICH_BACKEND", "bogus", "ENRICH_BACKEND must be auto|gemini|local|off"),
        ("MONGO_BATCH_SIZE", "0", "MONGO_BATCH_SIZE must be at least 1"),
        ("DISCOVERY_IDLE_ROUNDS", "0", "DISCOVERY_IDLE_ROUNDS must be at least 1"),
        ("RUN_LEASE_TTL", "-5", "RUN_LEASE_TTL must be at least 1"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a redis:// or rediss:// or unix://"),
        ("GEMINI_BASE_URL", "emulator", "GEMINI_BASE_URL must be a http:// or https:// URL"),
        ("XHS_BASE_URL", "garbage", "XHS_BASE_URL must be an http(s) URL with a host"),
        ("XHS_BASE_URL", "http://", "XHS_BASE_URL must be an http(s) URL with a host"),
        ("XHS_BASE_URL", "http://host:notaport", "XHS_BASE_URL must be"),
        ("XHS_IMAGE_ORIGIN_TEMPLATES", "https://cdn/x", "lacks {token}"),
        ("XHS_IMAGE_ORIGIN_TEMPLATES", "cdn/{token}", "not an http(s) URL"),
        ("XHS_COOKIES", "a1", "XHS_COOKIES is not a cookie header"),
    ],
)
def test_forms_and_ranges(name: str, value: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_settings(project(**{name: value}))
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("REDIS_URL", "http://:hunter2@redis:6379", "hunter2"),
        ("XHS_COOKIES", "a1=s3cr3t=; web_session", "s3cr3t"),
    ],
)
def test_a_secret_knob_shows_a_fingerprint_never_its_value(
    name: str, value: str, secret: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_settings(project(**{name: value}))
    assert name in str(caught.value) and secret not in str(caught.value)
    assert "fingerprint" in shown(name, value) and secret not in shown(name, value)


def test_components_errors_become_config_errors_naming_the_knob() -> None:
    """The pipelines' own parsers run here too (their ValueError subclasses)."""
    with pytest.raises(ConfigError, match="GEMINI_LIMITS"):
        validate_settings(project(GEMINI_LIMITS="gemini-2.5-flash:rpx=1"))
    with pytest.raises(ConfigError, match="MONGO_URI") as caught:
        validate_settings(project(MONGO_URI="not a uri at all"))
    assert "not a uri at all" not in str(caught.value)
