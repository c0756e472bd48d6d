"""FreezeStartupHeap: what is alive when the spider opens leaves the cyclic GC's reach."""

from __future__ import annotations

import gc

from scrapy import Spider
from scrapy.utils.test import get_crawler

from crawler.extensions import FreezeStartupHeap


class Held:
    """A start-up object in a reference cycle (like modules, classes, components)."""

    def __init__(self) -> None:
        self.me = self


def test_spider_open_freezes_what_is_alive_and_later_objects_are_still_tracked():
    ext = FreezeStartupHeap.from_crawler(get_crawler(Spider))
    held = Held()
    try:
        ext.spider_opened(Spider("s"))
        assert gc.get_freeze_count() > 0
        assert not any(obj is held for obj in gc.get_objects())  # frozen: not tracked
        later = Held()
        assert any(obj is later for obj in gc.get_objects())  # collected as usual
    finally:
        gc.unfreeze()
