"""The run's counts and public arguments (crawler/extensions/run_stats.py; exit statuses:
tests/crawler/test_run_record.py)."""

from __future__ import annotations

from crawler.extensions import run_counts


def test_run_counts_groups_stats() -> None:
    stats = {
        "item_scraped_count": 10,
        "notes/new": 7,
        "notes/unchanged": 3,
        "media/images_ok": 20,
        "media/images_failed/too_large": 1,
        "gemini/requests/gemini-2.5-flash": 6,
        "gemini/requests_by_key/k:1a2b3c4d": 6,
        "gemini/429/per_day": 1,
        "xhs/parse_error/state_missing": 2,
        "enrich/failed/blocked": 1,
    }
    summary = run_counts(stats)
    assert summary["notes"]["new"] == 7 and summary["notes"]["unchanged"] == 3
    assert summary["images"] == {"ok": 20, "failed": 1, "skipped_existing": 0}
    assert summary["gemini"]["requests_by_model"] == {"gemini-2.5-flash": 6}
    assert summary["gemini"]["http_429_by_class"] == {"per_day": 1}
    assert summary["errors_by_reason"] == {
        "state_missing": 2,
        "media/too_large": 1,
        "enrich/blocked": 1,
    }


def test_run_record_masks_secret_looking_arguments_only() -> None:
    from types import SimpleNamespace

    from crawler.extensions import public_args

    spider = SimpleNamespace(
        xhs_args={"keywords": "大模型", "api_key": "AIza-secret", "token": "t", "max_notes": 5}
    )
    assert public_args(spider) == {
        "keywords": "大模型",
        "api_key": "***",
        "token": "***",
        "max_notes": "5",
    }
