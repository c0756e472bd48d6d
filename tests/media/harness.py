"""Run NoteMediaPipeline inside a real Scrapy crawl, in a subprocess.

``run_crawl(notes, settings, workdir)`` writes the notes and settings as JSON, runs
``python -m tests.media.harness`` (a fresh process: its own Twisted reactor, the
project's settings and downloader middlewares, only the media pipeline), and returns
the processed items and the final stats. A subprocess is the honest and reliable way
to run a crawl from pytest: no reactor leaks between tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import scrapy
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.utils.project import get_project_settings
from scrapy.utils.test import get_crawler

from crawler.core.items import NoteImage, NoteItem, NoteVideo
from crawler.settings import knob_defaults
from tests import factories

ROOT = Path(__file__).resolve().parents[2]
_HTTP_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"


def project_crawler(settings: dict[str, Any], spidercls: type | None = None) -> Crawler:
    """A test crawler with the project's knobs at their declared defaults
    (``crawler.settings.knob_defaults``, whatever the environment says) under
    ``settings``, but none of the project's components (pipelines, extensions, add-ons,
    handlers): the unit under test is built by hand."""
    return get_crawler(spidercls, settings_dict={**knob_defaults, **settings})


def make_note(
    note_id: str,
    images: list[NoteImage],
    *,
    title: str = "",
    video: NoteVideo | None = None,
) -> NoteItem:
    """A note with these images (and video): what the media pipeline works on."""
    return factories.make_note(
        note_id=note_id,
        url=f"https://www.xiaohongshu.com/explore/{note_id}",
        title=title,
        type="video" if video else "normal",
        images=images,
        video=video,
    )


def _note_from_dict(data: dict[str, Any]) -> NoteItem:
    video = data.get("video")
    return make_note(
        data["note_id"],
        [NoteImage(**image) for image in data["images"]],
        title=data.get("title", ""),
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


class _StatsDump:
    """Writes the final stats as JSON when the spider closes."""

    def __init__(self, crawler: Any, path: str) -> None:
        self.crawler = crawler
        self.path = path

    @classmethod
    def from_crawler(cls, crawler: Any) -> _StatsDump:
        ext = cls(crawler, crawler.settings["MEDIA_TEST_STATS_FILE"])
        crawler.signals.connect(ext.spider_closed, signal=scrapy.signals.spider_closed)
        return ext

    def spider_closed(self) -> None:
        stats = self.crawler.stats.get_stats()
        Path(self.path).write_text(json.dumps(stats, indent=1, sort_keys=True, default=str))


def run_crawl(
    notes: list[NoteItem], settings: dict[str, Any], workdir: Path, *, timeout: float = 60
) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """Crawl ``notes`` through the media pipeline; returns (items, stats, log text)."""
    workdir.mkdir(parents=True, exist_ok=True)
    notes_file = workdir / "notes.json"
    notes_file.write_text(json.dumps([asdict(n) for n in notes], default=str))
    items_file = workdir / "items.jsonl"
    stats_file = workdir / "stats.json"
    items_file.unlink(missing_ok=True)
    overrides = {
        **settings,
        "MEDIA_TEST_STATS_FILE": str(stats_file),
        "FEEDS": {str(items_file): {"format": "jsonlines"}},
    }
    (workdir / "settings.json").write_text(json.dumps(overrides))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.media.harness", str(notes_file), str(workdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    log = proc.stderr
    if proc.returncode != 0 or not stats_file.exists():
        raise AssertionError(f"crawl failed (exit {proc.returncode}):\n{log[-4000:]}")
    items = [json.loads(line) for line in items_file.read_text().splitlines() if line]
    return items, json.loads(stats_file.read_text()), log


def main(notes_file: str, workdir: str) -> None:
    settings = get_project_settings()
    settings.setdict(
        {
            # The project's settings with only the stage under test: no project
            # spiders, middlewares, add-ons or extensions (their owners test them).
            "SPIDER_MODULES": [],
            "ITEM_PIPELINES": {"pipelines.media.NoteMediaPipeline": 200},
            "DOWNLOADER_MIDDLEWARES": {},
            "ADDONS": {},
            "EXTENSIONS": {"tests.media.harness._StatsDump": 0},
            # Plain HTTP handler: media requests never use the browser, and starting
            # Chromium would only slow the test down.
            "DOWNLOAD_HANDLERS": {"http": _HTTP_HANDLER, "https": _HTTP_HANDLER},
            "DOWNLOAD_DELAY": 0,
            "RANDOMIZE_DOWNLOAD_DELAY": False,
            "AUTOTHROTTLE_ENABLED": False,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
            "LOG_LEVEL": "INFO",
        },
        priority="cmdline",
    )
    overrides = json.loads((Path(workdir) / "settings.json").read_text())
    settings.setdict(overrides, priority="cmdline")
    process = CrawlerProcess(settings, install_root_handler=True)
    process.crawl(NotesSpider, notes_file=notes_file)
    process.start()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
