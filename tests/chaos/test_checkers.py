"""The chaos run's invariant checkers must see violations, or a green run proves nothing."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import Secrets
from bench.chaos_checks import check_image_paths, gave_up_note_ids, scan_for_secrets

NOTE_A = "64c4b0641195dd0973e6f247"
NOTE_B = "6734a1f2000000001b0358c3"


def test_gave_up_note_ids_reads_scrapy_retry_and_captcha_lines() -> None:
    log = "\n".join(
        [
            # scrapy.downloadermiddlewares.retry's message, as logged for a Request
            f"2026-11-29 15:00:00 [scrapy.downloadermiddlewares.retry] ERROR: Gave up retrying "
            f"<GET http://127.0.0.1:5000/explore/{NOTE_A}?xsec_token=AB%3D&xsec_source=pc_feed> "
            "(failed 7 times): 503 Service Unavailable",
            # crawler.middlewares.AntiBotMiddleware after ANTIBOT_MAX_RETRIES captchas
            "2026-11-29 15:00:01 [crawler.middlewares] WARNING: Captcha persists after 5 "
            f"retries, giving up on http://127.0.0.1:5000/explore/{NOTE_B}?xsec_token=x",
            # an image is not a note
            "2026-11-29 15:00:02 [scrapy.downloadermiddlewares.retry] ERROR: Gave up retrying "
            "<GET http://127.0.0.1:5001/1040g2sg31abc> (failed 7 times): 500 Internal Server Error",
            f"2026-11-29 15:00:03 [scrapy.core.engine] DEBUG: Crawled (200) <GET "
            f"http://127.0.0.1:5000/explore/{NOTE_A}?xsec_token=AB%3D>",
        ]
    )
    assert gave_up_note_ids(log) == {NOTE_A, NOTE_B}


def test_check_image_paths_flags_escapes_absolute_missing_and_symlinks(tmp_path: Path) -> None:
    store = tmp_path / "images"
    (store / "full" / "ab").mkdir(parents=True)
    (store / "full" / "ab" / "ok.png").write_bytes(b"x")
    (tmp_path / "outside.jpg").write_bytes(b"x")
    (store / "full" / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    good = {"path": "full/ab/ok.png", "model_path": None, "status": "ok"}
    notes = [
        {"_id": "good", "images": [good, {"path": None, "status": "failed", "error": "http_404"}]},
        {"_id": "escape", "images": [{"path": "../outside.jpg", "status": "ok"}]},
        {"_id": "absolute", "images": [{"model_path": "/etc/passwd", "status": "ok"}]},
        {"_id": "missing", "images": [{"path": "full/ab/gone.png", "status": "ok"}]},
    ]
    problems = check_image_paths(notes, store)
    assert len(problems) == 4, problems
    assert not any("good" in p for p in problems)
    assert any("escape" in p for p in problems) and any("absolute" in p for p in problems)
    assert any("missing" in p for p in problems) and any("symlink" in p for p in problems)


def test_scan_for_secrets_finds_keys_and_cookies_in_texts_and_files(tmp_path: Path) -> None:
    secret = Secrets.generate(sandbox_login=False)
    key = secret.keys["beta-1"]
    (tmp_path / "deep" / "dir").mkdir(parents=True)
    (tmp_path / "deep" / "dir" / "spool.jsonl").write_bytes(b'{"k": "' + key.encode() + b'"}')
    (tmp_path / "clean.log").write_text("key k:1a2b3c4d disabled")
    texts = {"crawl log": f"cookie {secret.cookies['web_session']}".encode(), "dump": b"{}"}
    found = scan_for_secrets(secret.needles(), texts, [tmp_path])
    assert found == [
        "cookie:web_session in crawl log",
        f"key:beta-1 in {tmp_path / 'deep' / 'dir' / 'spool.jsonl'}",
    ]
    assert scan_for_secrets(secret.needles(), {"x": b"nothing here"}, [tmp_path / "none"]) == []


def test_sandbox_login_cookie_is_searched_as_name_value() -> None:
    secret = Secrets.generate(sandbox_login=True)
    assert secret.needles()["cookie:web_session"] == b"web_session=sandbox"
    assert secret.cookie_header == "a1=sandbox; web_session=sandbox"


def test_shifted_clock_env_runs_a_process_a_day_ahead() -> None:
    """The chaos run's follow-up `scrapy crawl enrich` runs "the next day" this way."""
    import subprocess
    import sys

    from sandbox.faketime import shifted_clock_env

    env = shifted_clock_env({"PATH": "/usr/bin:/bin"}, 86400)
    code = "import time, datetime; print(time.time())"
    ahead = float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, check=True).stdout)  # fmt: skip
    assert 86390 < ahead - __import__("time").time() < 86410
