"""``python -m sandbox.gemini``: serves a TOML scenario, prints the log table on exit."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.emulator.helpers import client
from tests.emulator.test_http import call

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """
seed = 1
[projects.alpha]
keys = ["cli-key"]
[projects.alpha.limits."gemini-2.5-flash"]
rpd = 1
[[script]]
outcome = "safety"
"""


def test_cli_serves_a_scenario_and_prints_the_summary(tmp_path):
    config = tmp_path / "scenario.toml"
    config.write_text(SCENARIO, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.gemini", "--port", "0", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("Gemini emulator listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        sdk = client(url, "cli-key")
        blocked = sdk.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert blocked.text is None  # the scripted SAFETY answer
        status, _, quota_error = call(
            url,
            "/v1beta/models/gemini-2.5-flash:generateContent",
            {"contents": [{"parts": [{"text": "hi"}]}]},
            key="cli-key",
        )
        assert status == 429  # rpd = 1, spent by the first call
        assert quota_error["error"]["details"][1]["violations"][0]["quotaValue"] == "1"
        assert call(url, "/v1beta/models", key="nope")[0] == 400
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    table = out.splitlines()
    header = "key_fp project model calls ok 429 other prompt_tok output_tok images"
    assert table[0].split() == header.split()
    assert any(
        row.split()[1:7] == ["alpha", "gemini-2.5-flash", "2", "1", "1", "0"] for row in table[1:]
    )
    assert "cli-key" not in out + err and "nope" not in out + err


def test_cli_rejects_a_bad_config(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[projects.p]\ntier = "platinum"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.gemini", "--port", "0", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "tier" in done.stderr


def test_cli_reports_a_missing_config_file(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.gemini", "--config", str(tmp_path / "absent.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "bad configuration" in done.stderr
