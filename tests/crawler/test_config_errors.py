"""Bad configuration (issue 18 defect 8): `scrapy crawl` prints ONE line naming the knob
on stderr and exits 2, before anything starts: no traceback, never a silent exit 0.
And with the database down at start, the overlap guard says so in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.crawlenv import isolated_environ
from sandbox.harness import ROOT, free_port, run_crawl, sandbox_env

pytestmark = pytest.mark.slow

SECRET = "AIzaSyTHISisAsecretKEY0123456789"


def crawl_with(tmp_path: Path, spider: str, args: dict[str, str], **env: str):
    return run_crawl(
        spider, args, {**isolated_environ(), "PYTHONPATH": str(ROOT), **env},
        workdir=tmp_path, feed=False, timeout=90,
    )  # fmt: skip


def assert_one_line(result, *needles: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.log[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.log
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"GEMINI_API_KEYS": "::"}, "GEMINI_API_KEYS"),
        ({"GEMINI_API_KEYS": f"a:{SECRET}:c"}, "GEMINI_API_KEYS"),
        ({"GEMINI_API_KEYS": f"proj:{SECRET} {SECRET}"}, "GEMINI_API_KEYS"),
        ({"GEMINI_MODELS": "gpt-4o,claude-3-opus"}, "GEMINI_MODELS"),
        ({"ENRICH_BACKEND": "bogus"}, "ENRICH_BACKEND"),
        ({"XHS_BASE_URL": "garbage"}, "XHS_BASE_URL"),
        ({"XHS_BASE_URL": "http://"}, "XHS_BASE_URL"),
        (
            {"XHS_IMAGE_ORIGIN_TEMPLATES": "https://cdn.example/original"},
            "XHS_IMAGE_ORIGIN_TEMPLATES",
        ),
        ({"MONGO_BATCH_SIZE": "abc"}, "MONGO_BATCH_SIZE"),
        ({"MONGO_URI": "not a uri at all"}, "MONGO_URI"),
        ({"ANTIBOT_COOLDOWN": "soon"}, "ANTIBOT_COOLDOWN"),  # a knob the old env list missed
    ],
    ids=lambda value: json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else None,
)
def test_bad_knob_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, env: dict[str, str], needle: str
) -> None:
    result = crawl_with(tmp_path, "xhs", {"note_ids": "685e9b3d00000000240089a5"}, **env)
    line = assert_one_line(result, needle)
    assert SECRET not in result.log, line


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"urls": "javascript:alert(1)"}, "urls="),
        ({"urls": "file:///etc/passwd"}, "urls="),
        ({"note_ids": "../../x:y"}, "note_ids="),
        ({"users": "../../etc"}, "users="),
    ],
)
def test_nothing_usable_to_crawl_is_one_line_and_exit_2(
    tmp_path: Path, args: dict[str, str], needle: str
) -> None:
    assert_one_line(crawl_with(tmp_path, "xhs", args), needle, "nothing to crawl")


@pytest.mark.parametrize(
    "limit",
    ["abc", "0"],
)
def test_enrich_limit_is_checked_before_the_start(tmp_path: Path, limit: str) -> None:
    assert_one_line(crawl_with(tmp_path, "enrich", {"limit": limit}), "limit")


def test_database_down_at_start_is_one_line_from_the_overlap_guard(
    sandbox_site, tmp_path: Path
) -> None:
    note = sandbox_site.dataset.note(0)
    env = sandbox_env(
        sandbox_site,
        MONGO_URI=f"mongodb://127.0.0.1:{free_port()}/",
        MONGO_SERVER_SELECTION_TIMEOUT_MS="1000",
        MONGO_RETRY_TIMES="0",
        ENRICH_BACKEND="off",
    )
    result = run_crawl(
        "xhs", {"note_ids": f"{note.note_id}:{note.xsec_token}"}, env,
        workdir=tmp_path, feed=False, timeout=120,
    )  # fmt: skip
    guard = [line for line in result.stderr.splitlines() if "Overlap guard" in line]
    assert len(guard) == 1, result.stderr[-4000:]
    assert "the database is unreachable" in guard[0]
    assert "Traceback" not in result.log, result.stderr[-4000:]
    assert result.returncode == 6, result.stderr[-3000:]  # the note is safe in the spool
