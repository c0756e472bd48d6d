"""Pipeline builders and clocks for the storage tests (note items: tests.factories)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from scrapy.utils.project import get_project_settings

from pipelines.mongo import MongoSettings
from pipelines.storage import MongoStoragePipeline
from tests.factories import T0, make_note, project_crawler


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


def mongo_settings(**overrides: Any) -> MongoSettings:
    """The project's MongoSettings with some fields replaced."""
    return dataclasses.replace(MongoSettings.from_settings(get_project_settings()), **overrides)


def build_storage(
    uri: str, db_name: str, spool: Path, clock: Clock | None = None, **settings: Any
) -> MongoStoragePipeline:
    crawler = project_crawler(
        {
            "MONGO_URI": uri,
            "MONGO_DATABASE": db_name,
            "MONGO_SPOOL_PATH": str(spool),
            "CRAWL_RUN_ID": "run-test",
            **settings,
        }
    )
    clock = clock or Clock()
    return MongoStoragePipeline(
        crawler,
        MongoSettings.from_settings(crawler.settings),
        clock=clock,
        monotonic=clock.monotonic,
        sleep=no_sleep,
    )


__all__ = [
    "T0",
    "Clock",
    "build_storage",
    "make_note",
    "mongo_settings",
    "no_sleep",
    "project_crawler",
]
