"""Issue 18, defect 2: a lone UTF-16 surrogate (half an emoji) must not drop a note.

Before the fix, the content hash's ``.encode("utf-8")`` raised in the incremental
check, Scrapy dropped the item and the run exited 0 with the note never stored, with
the gemini and the local backend alike. Now text is cleaned where items are built
(U+FFFD), and an unexpected exception in any stage keeps the item with ``errors``
(the guard itself: tests/reliability/test_guard.py).
"""

from __future__ import annotations

import pytest

from tests.enrichment.support import pipeline_run
from tests.factories import make_note

HALF = "\ud83d"  # the high half of 😀, alone


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "gemini"])
def test_half_emoji_note_is_stored(
    backend, hostile, scrapy_crawl, gemini_emulator, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    hostile.add_note(
        1,
        title=f"半个表情{HALF}标题",
        desc=f"正文{HALF}里有半个表情 #话题{HALF}[话题]#",
        tags=(f"标签{HALF}",),
        nickname=f"昵称{HALF}",
        ip_location=f"上海{HALF}",
    )
    hostile.add_note(2, title="好好的一条")
    extra = {"ENRICH_BACKEND": backend, "MONGO_URI": mongo_uri, "MONGO_DATABASE": mongo_db_name}
    if backend == "gemini":
        extra |= {"GEMINI_BASE_URL": gemini_emulator.base_url, "GEMINI_API_KEYS": "p1:test-key-1"}
    result = scrapy_crawl("xhs", {"note_ids": hostile.note_ids()}, hostile.env(**extra))
    assert result.returncode == 0, result.log[-4000:]
    half, whole = hostile.ids
    doc = mongo_sync.notes.find_one({"_id": half})
    assert doc is not None, "the half-emoji note was not stored"
    assert doc["title"] == "半个表情\ufffd标题"
    assert doc["desc"].startswith("正文\ufffd里")
    assert doc["tags"] == ["标签\ufffd"]
    assert doc["user"]["nickname"] == "昵称\ufffd"
    assert doc["ip_location"] == "上海\ufffd"
    assert doc["errors"] == []  # nothing went wrong on the way: the text was clean
    assert doc["enrichment"]["status"] == "done", doc["enrichment"]
    assert doc["enrichment"]["backend"] == backend
    assert mongo_sync.notes.find_one({"_id": whole}) is not None
    assert not result.stats.get("pipeline/errors"), result.stats


async def test_a_stage_that_raises_keeps_the_note(tmp_path, mongo_uri, mongo_db_name) -> None:
    """Text that skipped the parsing edge (an item built by hand, a plugin) meets the
    enrichment's input hash, which raises on it: the note goes on with its error."""
    settings = {"ENRICH_BACKEND": "local", "IMAGES_STORE": str(tmp_path),
                "MONGO_URI": mongo_uri, "MONGO_DATABASE": mongo_db_name}  # fmt: skip
    async with pipeline_run(settings) as (pipeline, stats):
        item = make_note(2, title=f"坏{HALF}", images=[])
        kept = await pipeline.process_item(item)
    assert kept is item
    assert [e.stage for e in item.errors] == ["enrichment"]
    assert item.errors[0].message.startswith("UnicodeEncodeError: ")
    assert stats.get_value("pipeline/errors/enrichment") == 1


def test_rapidocr_says_nothing_in_colour(capfd) -> None:
    """Issue 18, defect 9: a picture without text made RapidOCR print an ANSI-coloured
    warning on stderr, outside the crawl's log format."""
    from pipelines.local_backend import _ocr_sync
    from tests.media import samples

    assert _ocr_sync(samples.jpeg((200, 120))) == ""
    captured = capfd.readouterr()
    assert "\x1b[" not in captured.err and "RapidOCR" not in captured.err, captured.err
