"""MongoSettings: read from the project settings, validated; URIs masked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scrapy.settings import Settings

from pipelines.mongo import MongoSettings, MongoSettingsError, mask_uri
from tests.factories import project_crawler

ROOT = Path(__file__).resolve().parents[2]


def test_settings_from_scrapy_settings_and_env():
    crawler = project_crawler({"MONGO_DATABASE": "other", "MONGO_FLUSH_INTERVAL": "0.5"})
    s = MongoSettings.from_settings(crawler.settings)
    assert (s.uri, s.database, s.flush_interval_s) == ("", "other", 0.5)
    assert s.data_dir == "data/mongo" and s.spool_path == "data/spool/notes.jsonl"
    assert (s.batch_size, s.retry_times, s.probe_interval_s) == (100, 3, 10.0)
    # An env var of a knob's name takes effect (applied when the settings module loads).
    env = {**os.environ, "MONGO_BATCH_SIZE": "7", "MONGO_RETRY_TIMES": "1"}
    code = (
        "from scrapy.utils.project import get_project_settings\n"
        "from pipelines.mongo import MongoSettings\n"
        "s = MongoSettings.from_settings(get_project_settings())\n"
        "print(s.batch_size, s.retry_times)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["7", "1"], out.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MONGO_URI", "not a uri at all", "MONGO_URI is not a mongodb:// or mongodb+srv:// URI"),
        ("MONGO_URI", "http://u:s3cr3t@h/", "MONGO_URI is not a mongodb://"),
        ("MONGO_URI", "mongodb://", "MONGO_URI names no host"),
        ("MONGO_BATCH_SIZE", "abc", "MONGO_BATCH_SIZE must be an integer (got 'abc')"),
        ("MONGO_BATCH_SIZE", "0", "MONGO_BATCH_SIZE must be at least 1"),
        ("MONGO_FLUSH_INTERVAL", "soon", "MONGO_FLUSH_INTERVAL must be a number"),
        ("MONGO_RETRY_TIMES", "-1", "MONGO_RETRY_TIMES must be at least 0"),
        ("MONGO_EMBEDDED_PORT", "70000", "MONGO_EMBEDDED_PORT must be between 0 and 65535"),
        ("MONGO_DATABASE", "", "MONGO_DATABASE must not be empty"),
    ],
)
def test_bad_values_are_clear_errors_at_once(name, value, message):
    settings = project_crawler({name: value}).settings
    started = time.monotonic()
    with pytest.raises(MongoSettingsError) as info:
        MongoSettings.from_settings(settings)
    assert message in str(info.value) and "s3cr3t" not in str(info.value)
    assert isinstance(info.value, ValueError) and time.monotonic() - started < 1


def test_settings_not_from_the_project_name_the_missing_knob():
    with pytest.raises(MongoSettingsError, match="MONGO_DATABASE is not set"):
        MongoSettings.from_settings(Settings({"MONGO_URI": ""}))


def test_srv_and_plain_uris_are_accepted():
    for uri in ("mongodb://h1:1,h2:2/xhs", "mongodb+srv://u:p@cluster.example.net"):
        assert MongoSettings.from_settings(project_crawler({"MONGO_URI": uri}).settings).uri == uri


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        ("mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/"),
        (
            "mongodb://alice:s3cr3t@h1:1,h2:2/xhs?authSource=admin",
            "mongodb://***@h1:1,h2:2/xhs?authSource=admin",
        ),
        ("mongodb+srv://u:p%40ss@cluster.example.net", "mongodb+srv://***@cluster.example.net"),
        (
            "mongodb://h/?tlsCertificateKeyFilePassword=pw&w=1",
            "mongodb://h/?tlsCertificateKeyFilePassword=***&w=1",
        ),
        ("not a uri s3cr3t", "***"),
    ],
)
def test_mask_uri(uri, masked):
    assert mask_uri(uri) == masked
    assert "s3cr3t" not in mask_uri(uri) and "p%40ss" not in mask_uri(uri)
