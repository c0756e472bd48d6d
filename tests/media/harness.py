"""NoteMediaPipeline inside a real Scrapy crawl, through the shared crawl runner.

``media_crawl(notes, settings, workdir)`` writes the notes as JSON and runs
:func:`sandbox.harness.run_crawl` (a fresh process: its own Twisted reactor, the
project's settings) with :class:`NotesSpider` and only the media pipeline; it returns
the processed items, the final stats and the log. Notes are built with
``tests.factories.make_note``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import scrapy

from crawler.core.items import NoteImage, NoteItem, NoteVideo
from sandbox.crawlenv import isolated_environ
from sandbox.harness import ROOT, STATS_DUMP, run_crawl
from tests.factories import make_note

_HTTP_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"

#: The project's settings with only the stage under test: no project spiders,
#: middlewares, add-ons or extensions (their owners test them).
MEDIA_ONLY: dict[str, Any] = {
    "SPIDER_MODULES": [__name__],
    "ITEM_PIPELINES": {"pipelines.media.NoteMediaPipeline": 200},
    "DOWNLOADER_MIDDLEWARES": {},
    "ADDONS": {},
    "EXTENSIONS": {STATS_DUMP: 0},
    # Plain HTTP handler: media requests never use the browser, and starting Chromium
    # would only slow the test down.
    "DOWNLOAD_HANDLERS": {"http": _HTTP_HANDLER, "https": _HTTP_HANDLER},
    "DOWNLOAD_DELAY": 0,
    "RANDOMIZE_DOWNLOAD_DELAY": False,
    "AUTOTHROTTLE_ENABLED": False,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
    "LOG_LEVEL": "INFO",
}


def _note_from_dict(data: dict[str, Any]) -> NoteItem:
    video = data.get("video")
    return make_note(
        note_id=data["note_id"],
        url=data["url"],
        title=data.get("title", ""),
        type=data["type"],
        images=[NoteImage(**image) for image in data["images"]],
        video=NoteVideo(**video) if video else None,
    )


class NotesSpider(scrapy.Spider):
    """Yields the prepared notes as items: the media pipeline does all downloads."""

    name = "media_notes"

    def __init__(self, notes_file: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.notes_file = notes_file

    async def start(self) -> AsyncIterator[NoteItem]:
        for data in json.loads(Path(self.notes_file).read_text()):
            yield _note_from_dict(data)


def media_crawl(
    notes: list[NoteItem], settings: dict[str, Any], workdir: Path, *, timeout: float = 60
) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """Crawl ``notes`` through the media pipeline; returns (items, stats, log text)."""
    workdir.mkdir(parents=True, exist_ok=True)
    notes_file = workdir / "notes.json"
    notes_file.write_text(json.dumps([asdict(n) for n in notes], default=str))
    result = run_crawl(
        NotesSpider.name,
        {"notes_file": str(notes_file)},
        isolated_environ() | {"PYTHONPATH": str(ROOT)},
        workdir=workdir,
        label="media",
        settings={**MEDIA_ONLY, **settings},
        use_runner=True,  # settings as JSON: dicts stay dicts
        sandbox_paths=False,
        timeout=timeout,
    )
    # No run record here (the project's extensions are off), so the runner's exit status
    # says nothing; a crawl that closed dumped its stats.
    if result.timed_out or not result.stats:
        raise AssertionError(f"crawl failed (exit {result.returncode}):\n{result.log[-4000:]}")
    return result.items, result.stats, result.stderr
