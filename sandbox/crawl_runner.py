"""Run one crawl described by a JSON file: ``python -m sandbox.crawl_runner spec.json``.

For crawls whose spider arguments are longer than one command-line argument may be
(10,000 note ids are ~700 KB; Linux allows 128 KiB per argument). It runs the same
spider with the project's settings, the way ``scrapy crawl`` does, in its own process.
The spec: ``{"spider": …, "args": {…}, "settings": {…}, "feed": "path:format" | null}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from scrapy.crawler import CrawlerProcess
from scrapy.utils.project import get_project_settings

from crawler.core.run_context import RunContext
from crawler.extensions import EXIT_ERROR


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    settings = get_project_settings()
    settings.setdict(spec.get("settings") or {}, priority="cmdline")
    if spec.get("feed"):
        uri, _, fmt = spec["feed"].rpartition(":")
        settings.set("FEEDS", {uri: {"format": fmt, "overwrite": True}}, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(spec["spider"])
    process.crawl(crawler, **spec.get("args", {}))
    process.start()
    status = RunContext.of(crawler).exit_status
    return EXIT_ERROR if status is None else status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
