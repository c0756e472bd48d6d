"""pipelines/guard.py: an unexpected exception in a stage never drops the item; a
deliberate ``DropItem`` still does (the crawl with a hostile note:
tests/reliability/test_surrogate.py)."""

from __future__ import annotations

import logging

import pytest
from scrapy.exceptions import DropItem

from pipelines.guard import INTERNAL_ERROR, MAX_MESSAGE_CHARS, guard_item, record_error
from tests.factories import make_comment, make_note, project_crawler


class Exploding:
    """A stage with a bug: raises on every item."""

    def __init__(self, crawler) -> None:
        self.crawler = crawler

    @guard_item("exploding")
    async def process_item(self, item):
        raise ZeroDivisionError("a bug nobody foresaw")


class Stage:
    """A stage that works, or drops on purpose; no crawler of its own."""

    def __init__(self, drop: bool = False) -> None:
        self.drop = drop

    @guard_item("stage")
    async def process_item(self, item, spider=None):
        """The stage's own docstring."""
        if self.drop:
            raise DropItem("a duplicate")
        return {"wrapped": item, "spider": spider}


async def test_guard_keeps_the_item_with_its_error() -> None:
    crawler = project_crawler({})
    item = make_note(1)
    kept = await Exploding(crawler).process_item(item)
    assert kept is item
    assert [(e.stage, e.reason) for e in item.errors] == [("exploding", "internal_error")]
    assert item.errors[0].message == "ZeroDivisionError: a bug nobody foresaw"
    assert crawler.stats.get_value("pipeline/errors") == 1
    assert crawler.stats.get_value("pipeline/errors/exploding") == 1


async def test_the_traceback_goes_to_the_log_with_the_items_id(caplog) -> None:
    item = make_comment(3, 1)
    with caplog.at_level(logging.ERROR, logger="pipelines.guard"):
        assert await Exploding(crawler=None).process_item(item) is item  # no stats: no crash
    (record,) = caplog.records
    assert f"CommentItem {item.note_id}" in record.getMessage()  # the first id it has
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert not hasattr(item, "errors")  # a comment has no errors field: the log says it


async def test_a_deliberate_drop_and_a_result_pass_through() -> None:
    with pytest.raises(DropItem, match="a duplicate"):
        await Stage(drop=True).process_item(make_note(1))
    item = make_note(2)
    assert await Stage().process_item(item, spider="s") == {"wrapped": item, "spider": "s"}
    assert item.errors == []
    assert Stage.process_item.__doc__ == "The stage's own docstring."


def test_the_error_is_clipped_and_noted_only_where_there_is_room() -> None:
    crawler = project_crawler({})
    error = record_error({"note_id": "x"}, "media", ValueError("é" * 1000), crawler.stats)
    assert error.reason == INTERNAL_ERROR and len(error.message) == MAX_MESSAGE_CHARS
    assert error.message.startswith("ValueError: éé") and error.message.endswith("…")
    assert crawler.stats.get_value("pipeline/errors/media") == 1
    with_room: dict = {"note_id": "y", "errors": None}
    record_error(with_room, "storage", KeyError("k"))
    assert [e.stage for e in with_room["errors"]] == ["storage"]
    assert record_error("not an item", "media", KeyError("k")).stage == "media"
