"""A ``spider_file`` crawl (``scrapy runspider`` outside the checkout) carries the
project's knobs: declared defaults, env vars of the same name, then ``settings``."""

from __future__ import annotations

import textwrap
from pathlib import Path

from crawler.settings import knob_defaults
from sandbox.crawlenv import isolated_environ
from sandbox.harness import run_crawl

SPIDER = textwrap.dedent(
    """
    import scrapy


    class Knobs(scrapy.Spider):
        name = "knobs"

        async def start(self):
            names = ("ENRICH_CONCURRENCY", "GEMINI_UNKNOWN_RPM_SPACING", "PROGRESS_INTERVAL")
            yield {name: self.settings.get(name) for name in names}
    """
)


def test_a_spider_file_crawl_sees_the_project_knobs(tmp_path: Path) -> None:
    spider = tmp_path / "knobs_spider.py"
    spider.write_text(SPIDER)
    env = {**isolated_environ(), "PROGRESS_INTERVAL": "7.5"}
    result = run_crawl(
        "knobs", {}, env, workdir=tmp_path / "w", spider_file=spider, timeout=120,
        settings={"GEMINI_UNKNOWN_RPM_SPACING": "0.2"},
    )  # fmt: skip
    assert result.returncode == 0, result.log[-3000:]
    assert result.items == [
        {
            "ENRICH_CONCURRENCY": str(knob_defaults["ENRICH_CONCURRENCY"]),  # declared
            "GEMINI_UNKNOWN_RPM_SPACING": "0.2",  # the caller's settings win
            "PROGRESS_INTERVAL": "7.5",  # the env var of the knob's name
        }
    ]
