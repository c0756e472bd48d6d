"""`python -m sandbox.site` serves, prints its URL and stops cleanly on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.site.helpers import fetch

ROOT = Path(__file__).resolve().parents[2]


def test_cli_serves_and_stops() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.site", "--port", "0", "--notes", "50", "--seed", "3",
         "--captcha-threshold", "100"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        first = process.stdout.readline()
        match = re.match(
            r"sandbox site (http://127\.0\.0\.1:\d+) \(cdn (http://127\.0\.0\.1:\d+),", first
        )
        assert match, first + process.stderr.read()
        url, cdn = match.groups()
        reference = process.stdout.readline().split()[-1]
        assert reference.startswith(f"{url}/explore/6734a1f2000000001b0358c3?xsec_token=AB")
        assert fetch(reference).status == 200
        assert fetch(f"{url}/_sandbox/control").json()["captcha_threshold"] == 100
        assert fetch(f"{cdn}/nothing-here").status == 404
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
