"""EnrichSettings: the knobs read once from the project settings, checked, and the backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipelines.enrichment import EnrichBackend, EnrichSettings, EnrichSettingsError, resolve_backend
from tests.factories import project_crawler


def settings_of(**overrides: object) -> EnrichSettings:
    return EnrichSettings.from_settings(project_crawler(dict(overrides)).settings)


@pytest.mark.parametrize(
    ("value", "configured", "expected"),
    [
        ("auto", True, "gemini"),
        ("auto", False, "local"),
        ("", False, "local"),
        ("GEMINI", False, "gemini"),
        ("local", True, "local"),
        ("off", True, "off"),
    ],
)
def test_resolve_backend(value: str, configured: bool, expected: str) -> None:
    assert resolve_backend(value, gemini_configured=configured) == expected


def test_a_bogus_backend_is_a_value_error_naming_the_setting() -> None:
    with pytest.raises(EnrichSettingsError, match="ENRICH_BACKEND") as caught:
        settings_of(ENRICH_BACKEND="bogus")
    assert isinstance(caught.value, ValueError) and caught.value.setting == "ENRICH_BACKEND"
    assert "'bogus'" in str(caught.value)


def test_settings_are_read_once_into_a_dataclass() -> None:
    cfg = settings_of(
        GEMINI_API_KEYS="p:k",
        ENRICH_CONCURRENCY="3",
        ENRICH_MAX_IMAGES_PER_REQUEST="4",
        ENRICH_MAX_REQUESTS_PER_NOTE="5",
        ENRICH_RETRY_AFTER="60",
    )
    assert (cfg.backend, cfg.concurrency, cfg.max_images_per_request) == ("gemini", 3, 4)
    assert cfg.max_requests_per_note == 5 and cfg.retry_after == timedelta(seconds=60)


def test_defaults_come_from_the_project_settings() -> None:
    cfg = settings_of()
    assert cfg.backend is EnrichBackend.LOCAL  # no Gemini key configured
    assert (cfg.concurrency, cfg.max_images_per_request, cfg.max_requests_per_note) == (4, 9, 3)
    assert (cfg.max_attempts, cfg.retry_after, cfg.thinking) == (5, timedelta(hours=1), False)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENRICH_CONCURRENCY", "0", "at least 1"),
        ("ENRICH_MAX_IMAGES_PER_REQUEST", "many", "a number"),
        ("ENRICH_MAX_REQUESTS_PER_NOTE", "0", "at least 1"),
        ("ENRICH_RETRY_AFTER", "-1", "at least 0"),
        ("ENRICH_MAX_ATTEMPTS", "0", "at least 1"),
        ("ENRICH_THINKING", "maybe", "true or false"),
    ],
)
def test_bad_values_name_the_knob(name: str, value: str, message: str) -> None:
    with pytest.raises(EnrichSettingsError, match=f"^{name} .*{message}"):
        settings_of(**{name: value})
