"""sandbox/demo.py: the main job on the sandbox, end to end (site, crawl, the run summary)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.crawlenv import isolated_environ
from sandbox.harness import ROOT

pytestmark = pytest.mark.slow


def test_demo_crawls_and_prints_where_the_data_is(
    tmp_path: Path, mongo_uri: str, mongo_db_name: str, mongo_sync
) -> None:
    env = {
        **isolated_environ(),
        "MONGO_URI": mongo_uri,
        "MONGO_DATABASE": mongo_db_name,
        "IMAGES_STORE": str(tmp_path / "images"),
        "MONGO_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "RUN_REPORT_DIR": str(tmp_path / "reports"),
        "ENRICH_BACKEND": "off",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "sandbox.demo", "--max-notes", "4", "--notes", "80"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr  # the run summary is the crawl's log (stderr)
    assert "demo: scrapy crawl xhs -a keywords=面经 -a max_notes=4 -s DOWNLOAD_DELAY=0" in out
    assert re.search(r"Run \S+ \(xhs\): finished, exit status 0", out), out[-3000:]
    stored = mongo_sync.notes.count_documents({})
    assert 0 < stored <= 4 and re.search(rf"notes\s+{stored} stored: {stored} new", out)
    assert "(MONGO_URI), database" in out
    assert "python -m crawler.web" in proc.stdout  # what to do next (issue 17)
    assert list((tmp_path / "reports").glob("run-*.html"))
