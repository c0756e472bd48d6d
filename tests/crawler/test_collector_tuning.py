"""CollectorTuning: what is alive when the spider opens leaves the cyclic GC's reach, and
the youngest generation is collected less often."""

from __future__ import annotations

import gc

import pytest
from scrapy import Spider
from scrapy.utils.test import get_crawler

from crawler.extensions import CollectorTuning
from crawler.settings import knob_defaults


class Held:
    """A start-up object in a reference cycle (like modules, classes, components)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def restore_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_spider_open_freezes_what_is_alive_and_raises_the_young_threshold():
    ext = CollectorTuning.from_crawler(get_crawler(Spider, dict(knob_defaults)))
    held = Held()
    older = gc.get_threshold()[1:]
    ext.spider_opened(Spider("s"))
    assert gc.get_freeze_count() > 0
    assert not any(obj is held for obj in gc.get_objects())  # frozen: not tracked
    later = Held()
    assert any(obj is later for obj in gc.get_objects())  # collected as usual
    assert gc.get_threshold() == (10_000, *older)


@pytest.mark.usefixtures("restore_gc")
def test_zero_keeps_pythons_threshold():
    before = gc.get_threshold()
    ext = CollectorTuning.from_crawler(
        get_crawler(Spider, {**knob_defaults, "GC_GEN0_THRESHOLD": 0})
    )
    ext.spider_opened(Spider("s"))
    assert gc.get_threshold() == before
