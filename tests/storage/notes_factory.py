"""Note items and pipeline builders for the storage tests."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scrapy.utils.project import get_project_settings
from scrapy.utils.test import get_crawler

from crawler.core.items import NoteImage, NoteInteract, NoteItem, NoteUser
from crawler.settings import knob_defaults
from pipelines.mongo import MongoSettings
from pipelines.storage import MongoStoragePipeline

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def make_note(i: int, **overrides: Any) -> NoteItem:
    note_id = f"{i:024x}"
    values: dict[str, Any] = {
        "note_id": note_id,
        "url": f"https://www.xiaohongshu.com/explore/{note_id}?xsec_token=AB{i}",
        "xsec_token": f"AB{i}",
        "title": f"笔记 {i}",
        "desc": f"正文 {i} #露营[话题]#",
        "type": "normal",
        "user": NoteUser(user_id=f"u{i % 7}", nickname=f"用户{i % 7}"),
        "tags": ["露营", f"tag{i % 5}"],
        "published_at": T0 - timedelta(days=i),
        "updated_at": T0 - timedelta(days=i, hours=-1),
        "ip_location": "上海",
        "interact": NoteInteract(
            liked=i, collected=2 * i, comments=3, shares=1, raw={"liked": str(i)}
        ),
        "images": [
            NoteImage(
                url=f"http://sns-webpic-qc.xhscdn.com/202601050800/{i:032x}/spectrum/img{i}-{k}!nd_dft_wlteh_webp_3",
                width=1080,
                height=1440,
            )
            for k in range(2)
        ],
        "video": None,
        "source": "page",
        "fetched_at": None,  # the pipeline's clock is the crawl time
        "found_via": "keyword:露营",
        "change": "new",
        "enrichment": None,
    }
    values.update(overrides)
    return NoteItem(**values)


class Clock:
    """Injectable wall clock and monotonic clock."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


async def no_sleep(_seconds: float) -> None:
    return None


def project_crawler(**settings: Any) -> Any:
    """A test crawler with the project's knobs (crawler/settings.py, env applied) and
    ``settings`` on top; Scrapy's own settings stay at Scrapy's test defaults."""
    project = get_project_settings()
    values = {name: project.get(name) for name in knob_defaults}
    values.update(settings)
    return get_crawler(settings_dict=values)


def mongo_settings(**overrides: Any) -> MongoSettings:
    """The project's MongoSettings with some fields replaced."""
    return dataclasses.replace(MongoSettings.from_settings(get_project_settings()), **overrides)


def build_storage(
    uri: str, db_name: str, spool: Path, clock: Clock | None = None, **settings: Any
) -> MongoStoragePipeline:
    crawler = project_crawler(
        MONGO_URI=uri,
        MONGO_DATABASE=db_name,
        MONGO_SPOOL_PATH=str(spool),
        CRAWL_RUN_ID="run-test",
        **settings,
    )
    clock = clock or Clock()
    return MongoStoragePipeline(
        crawler,
        MongoSettings.from_settings(crawler.settings),
        clock=clock,
        monotonic=clock.monotonic,
        sleep=no_sleep,
    )
