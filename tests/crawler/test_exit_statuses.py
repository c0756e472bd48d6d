"""Exit statuses a scheduler can trust: the README table is the code's enum, and every
run asked for nothing usable exits 2 with one line, writing no run record and no report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crawler.commands.crawl import unknown_argument
from crawler.commands.exit_status import MEANINGS, ExitStatus
from crawler.spiders.enrich import EnrichSpider
from crawler.spiders.xhs import XhsSpider
from sandbox.harness import ROOT, run_crawl, sandbox_env

README = ROOT / "README.md"


def readme_exit_table() -> dict[int, str]:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| status | meaning |") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        match = re.match(r"^\| (\d+) \| (.+?) \| (.+?) \|$", line)
        assert match, f"README exit table row not understood: {line!r}"
        rows[int(match.group(1))] = match.group(2)
    return rows


def test_readme_table_is_the_enum() -> None:
    assert readme_exit_table() == {int(status): MEANINGS[status] for status in ExitStatus}
    assert set(MEANINGS) == set(ExitStatus)


def test_unknown_argument_suggests_the_close_one() -> None:
    assert unknown_argument(XhsSpider, {"keyword": "面经"}) == (
        "unknown argument keyword; did you mean keywords=?"
    )
    assert unknown_argument(XhsSpider, {"max_note": "3"}).endswith("did you mean max_notes=?")
    assert unknown_argument(EnrichSpider, {"limt": "3"}).endswith("did you mean limit=?")
    message = unknown_argument(XhsSpider, {"zzz": "1"})
    assert message.startswith("unknown argument zzz; arguments: ") and "keywords=" in message
    assert unknown_argument(XhsSpider, {"keywords": "x", "max_notes": "2"}) is None


# --- the real command ---------------------------------------------------------------------


def _crawl(tmp_path: Path, args: dict[str, str], env: dict[str, str], mongo_uri: str, db: str):
    return run_crawl(
        "xhs", args, {**env, "MONGO_URI": mongo_uri, "MONGO_DATABASE": db},
        workdir=tmp_path, feed=False, timeout=120,
    )  # fmt: skip


def _assert_refused(result, needle: str, mongo_sync, tmp_path: Path) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == ExitStatus.USAGE, result.log[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]
    assert needle in lines[0], lines[0]
    assert "Traceback" not in result.log
    assert mongo_sync.crawl_runs.count_documents({}) == 0  # no run record
    assert not list((tmp_path / "reports").glob("*.html"))  # no report
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({}, "nothing to crawl: give urls=, note_ids=, keywords= or users="),
        ({"keyword": "面经"}, "unknown argument keyword; did you mean keywords=?"),
        ({"max_notes": "abc"}, "max_notes= must be a whole number: 'abc'"),
        ({"urls": "javascript:alert(1)"}, "urls= javascript: URLs are refused"),
        ({"urls": "file:///etc/passwd"}, "urls= file: URLs are refused"),
        ({"note_ids": "../../x:y"}, "note_ids= note id must be 24 hex digits"),
        ({"urls": "javascript:x,not a url,../../x:y"}, "nothing to crawl"),
    ],
    ids=lambda value: ",".join(value) or "no-arguments" if isinstance(value, dict) else None,
)
def test_nothing_usable_exits_2_with_one_line_and_no_record(
    tmp_path: Path,
    args: dict[str, str],
    needle: str,
    sandbox_site,
    mongo_uri,
    mongo_db_name,
    mongo_sync,
) -> None:
    result = _crawl(tmp_path, args, sandbox_env(sandbox_site), mongo_uri, mongo_db_name)
    _assert_refused(result, needle, mongo_sync, tmp_path)


@pytest.mark.slow
def test_a_bad_enrich_flag_exits_2_with_one_line(
    tmp_path: Path, sandbox_site, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    """``-a include_local=maybe`` used to mean "off" without a word."""
    env = {**sandbox_env(sandbox_site), "MONGO_URI": mongo_uri, "MONGO_DATABASE": mongo_db_name}
    result = run_crawl(
        "enrich", {"include_local": "maybe"}, env, workdir=tmp_path, feed=False, timeout=120
    )
    _assert_refused(result, "include_local= must be 1 or 0: 'maybe'", mongo_sync, tmp_path)


@pytest.mark.slow
def test_keyword_crawl_without_cookies_says_so(
    tmp_path: Path, sandbox_site, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    env = {**sandbox_env(sandbox_site), "XHS_COOKIES": ""}
    result = _crawl(tmp_path, {"keywords": "面经"}, env, mongo_uri, mongo_db_name)
    line = _assert_refused(result, "no XHS_COOKIES set", mongo_sync, tmp_path)
    assert "expired" not in result.log.lower(), line


@pytest.mark.slow
def test_unknown_tokenless_id_ends_the_run_with_2_no_record_and_no_report(
    tmp_path: Path, sandbox_site, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    note = sandbox_site.dataset.note(0)
    result = _crawl(
        tmp_path, {"note_ids": note.note_id}, sandbox_env(sandbox_site), mongo_uri, mongo_db_name
    )
    assert result.returncode == ExitStatus.USAGE, result.log[-3000:]
    assert "has no xsec_token and is not stored yet" in result.log
    assert "Share > Copy link" in result.log
    assert mongo_sync.crawl_runs.count_documents({}) == 0  # a usage error leaves no record
    assert not list((tmp_path / "reports").glob("*.html"))
