"""NoteMediaPipeline pieces without a crawl: configuration, hooks, path rules.

The hooks get real Scrapy ``Request``/``Response`` objects; the crawls in
test_media_crawl.py cover the same code end to end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
from pathlib import Path

import pytest
from scrapy.exceptions import DownloadCancelledError, DownloadTimeoutError
from scrapy.http import Request, Response
from twisted.python.failure import Failure

from crawler.core.items import NoteImage
from pipelines.media import (
    MediaDownloadError,
    MediaSettingsError,
    NoteMediaPipeline,
    Redirected,
    Rejected,
    Stored,
    content_path,
    is_content_path,
    unique,
)
from pipelines.media.pipeline import _Attempt
from tests.factories import make_note, project_crawler
from tests.media import samples

SHA = "ab" + "0" * 62


def make_pipeline(store: Path, **settings: object) -> NoteMediaPipeline:
    crawler = project_crawler(
        {"IMAGES_STORE": str(store), "XHS_BASE_URL": "https://www.xiaohongshu.com", **settings}
    )
    return NoteMediaPipeline.from_crawler(crawler)


def test_settings_are_read_once_into_a_frozen_config(tmp_path):
    pipeline = make_pipeline(
        tmp_path / "images",
        FILES_STORE=str(tmp_path / "files"),
        MEDIA_MAX_BYTES=1234,
        MEDIA_DOWNLOAD_TIMEOUT=7,
        XHS_DOWNLOAD_VIDEOS="true",
        XHS_IMAGE_HOSTS="img.example.com",
    )
    config = pipeline.config
    assert (config.max_bytes, config.timeout, config.download_videos) == (1234, 7.0, True)
    assert config.model_long_side == 1536
    assert config.referer == "https://www.xiaohongshu.com/"
    assert pipeline.store.basedir == str(tmp_path / "images")  # IMAGES_STORE wins
    assert pipeline.policy.check("https://img.example.com/a") is None
    assert pipeline.policy.allow_loopback is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_bytes = 1  # type: ignore[misc]


def test_defaults(tmp_path):
    config = make_pipeline(tmp_path).config
    assert config.max_bytes == 20 * 1024 * 1024
    assert config.download_videos is False


def test_decode_concurrency_zero_means_a_few_threads(tmp_path):
    config = make_pipeline(tmp_path, MEDIA_DECODE_CONCURRENCY=0).config
    assert config.decode_concurrency == max(1, min(4, os.cpu_count() or 1))
    assert make_pipeline(tmp_path, MEDIA_DECODE_CONCURRENCY=2).config.decode_concurrency == 2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MEDIA_MAX_BYTES", "0", "at least 1"),
        ("MEDIA_MAX_VIDEO_BYTES", "lots", "whole number"),
        ("MEDIA_MAX_REDIRECTS", "-1", "at least 0"),
        ("MEDIA_DOWNLOAD_TIMEOUT", "0", "positive"),
        ("MEDIA_DOWNLOAD_TIMEOUT", "soon", "a number"),
    ],
)
def test_bad_knobs_name_themselves(tmp_path, name, value, message):
    with pytest.raises(MediaSettingsError, match=f"^{name} .*{message}"):
        make_pipeline(tmp_path, **{name: value})


def test_media_request_meta(tmp_path):
    pipeline = make_pipeline(tmp_path, MEDIA_MAX_BYTES=999)
    request = pipeline._media_request("https://ci.xiaohongshu.com/t", "image", last=False)
    assert request.meta["download_maxsize"] == 999
    assert request.meta["dont_redirect"] and request.meta["dont_retry"]
    assert request.meta["dont_merge_cookies"]
    assert request.headers[b"Accept"].startswith(b"image/")
    assert not pipeline._media_request("https://ci.xiaohongshu.com/t", "image", last=True).meta[
        "dont_retry"
    ]


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        (f"full/ab/{SHA}.jpg", True),
        (f"model/ab/{SHA}.jpg", True),
        (f"video/ab/{SHA}.mp4", True),
        (f"full/cd/{SHA}.jpg", False),  # fan-out dir must match the hash
        (f"full/ab/{SHA.upper()}.jpg", False),
        (f"../full/ab/{SHA}.jpg", False),
        (f"full/ab/{SHA}.jpg/../../../etc/passwd", False),
        ("../../etc/passwd", False),
        ("/etc/passwd", False),
        ("", False),
        (None, False),
    ],
)
def test_only_content_paths_are_trusted(path, ok):
    assert is_content_path(path) is ok


def test_content_path_and_unique():
    assert content_path("full", SHA, "webp") == f"full/ab/{SHA}.webp"
    assert unique(["a", None, " ", "b", "a ", "c"]) == ["a", "b", "c"]


async def test_peer_address_checked_after_download_unless_proxied(tmp_path):
    pipeline = make_pipeline(tmp_path)
    request = Request("https://sns-img-bd.xhscdn.com/t")
    response = Response(
        request.url,
        body=samples.jpeg(),
        request=request,
        ip_address=ipaddress.ip_address("10.0.0.1"),
    )
    outcome = await pipeline.media_downloaded(
        response, request, None, item=_Attempt(request, "image")
    )
    assert outcome == Rejected("address_not_allowed", "sns-img-bd.xhscdn.com -> 10.0.0.1 (private)")
    assert not any(tmp_path.iterdir())
    request.meta["proxy"] = "http://10.0.0.2:3128"
    outcome = await pipeline.media_downloaded(
        response, request, None, item=_Attempt(request, "image")
    )
    assert isinstance(outcome, Stored)
    assert (tmp_path / outcome.path).read_bytes() == samples.jpeg()
    assert (tmp_path / outcome.model_path).is_file()


async def test_redirects_and_http_errors_become_outcomes(tmp_path):
    pipeline = make_pipeline(tmp_path, MEDIA_ALLOW_REDIRECTS=True)
    request = Request("https://sns-img-bd.xhscdn.com/a/b")
    moved = Response(request.url, status=302, headers={"Location": "../c"}, request=request)
    attempt = _Attempt(request, "image")
    assert await pipeline.media_downloaded(moved, request, None, item=attempt) == Redirected(
        "https://sns-img-bd.xhscdn.com/c"
    )
    gone = Response(request.url, status=404, request=request)
    assert await pipeline.media_downloaded(gone, request, None, item=attempt) == Rejected(
        "http_404", "sns-img-bd.xhscdn.com"
    )
    no_redirects = make_pipeline(tmp_path, MEDIA_ALLOW_REDIRECTS=False)
    outcome = await no_redirects.media_downloaded(moved, request, None, item=attempt)
    assert outcome == Rejected("http_302", "sns-img-bd.xhscdn.com")


@pytest.mark.parametrize(
    ("exc", "reason", "detail"),
    [
        (DownloadCancelledError(), "too_large", "body over 5000 bytes"),
        (DownloadTimeoutError("Getting x took longer"), "timeout", "no complete answer in 3 s"),
        (ConnectionRefusedError("refused"), "connection_error", "refused"),
    ],
)
def test_transport_failures_keep_their_reason(tmp_path, exc, reason, detail):
    pipeline = make_pipeline(tmp_path)
    request = Request(
        "https://ci.xiaohongshu.com/t", meta={"download_maxsize": 5000, "download_timeout": 3}
    )
    with pytest.raises(MediaDownloadError) as caught:
        pipeline.media_failed(Failure(exc), request, None)
    assert (caught.value.reason, caught.value.detail) == (reason, detail)


async def test_items_without_downloads_never_touch_the_network(tmp_path):
    """Refused and URL-less images are settled before any request: no engine needed."""
    pipeline = make_pipeline(tmp_path)
    note = make_note(
        note_id="n",
        images=[
            NoteImage(url=""),
            NoteImage(url="file:///etc/passwd", original_urls=["http://10.0.0.1/x"]),
        ],
    )
    assert await pipeline.process_item(note) is note
    skipped, refused = note.images
    assert (skipped.status, skipped.error) == ("skipped", "no_candidates: the image has no URL")
    assert refused.status == "failed"
    assert refused.error == "scheme_not_allowed: file (earlier candidates: host_not_allowed)"
    stats = pipeline.crawler.stats.get_stats()
    assert stats["media/images_failed/scheme_not_allowed"] == 1
    assert stats["media/candidate_fallbacks"] == 1
    assert stats["media/images_skipped"] == 1


async def test_stored_image_is_recognised(tmp_path):
    pipeline = make_pipeline(tmp_path)
    path, model = f"full/ab/{SHA}.png", f"model/ab/{SHA}.jpg"
    assert not await pipeline._already_stored(path, model)
    for rel in (path, model):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert await pipeline._already_stored(path, model)
    assert await pipeline._already_stored(path, None)
    assert not await pipeline._already_stored(None, None)
    assert not await pipeline._already_stored("../" + path)


def test_file_path_hook_hashes_content_not_url(tmp_path):
    pipeline = make_pipeline(tmp_path)
    body = samples.png()
    sha = hashlib.sha256(body).hexdigest()
    for url in ("https://ci.xiaohongshu.com/a.jpg", "https://ci.xiaohongshu.com/../../etc/x.exe"):
        request = Request(url)
        response = Response(url, body=body, request=request)
        attempt = _Attempt(request, "image")
        assert pipeline.file_path(request, response, item=attempt) == f"full/{sha[:2]}/{sha}.png"
    video = samples.mp4()
    response = Response("https://sns-video-bd.xhscdn.com/v", body=video, request=request)
    sha = hashlib.sha256(video).hexdigest()
    path = pipeline.file_path(request, response, item=_Attempt(request, "video"))
    assert path == f"video/{sha[:2]}/{sha}.mp4"
    with pytest.raises(ValueError, match="unknown content type"):
        pipeline.file_path(request, Response("https://ci.xiaohongshu.com/h", body=b"<html>"))


def test_proxy_detection_follows_the_environment(tmp_path, monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    direct = make_pipeline(tmp_path)
    assert not direct._proxied(Request("https://sns-img-bd.xhscdn.com/t"))
    assert direct._proxied(Request("https://sns-img-bd.xhscdn.com/t", meta={"proxy": "http://p:1"}))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:3128")
    monkeypatch.setenv("no_proxy", "ci.xiaohongshu.com")
    proxied = make_pipeline(tmp_path)
    assert proxied._proxied(Request("https://sns-img-bd.xhscdn.com/t"))
    assert not proxied._proxied(Request("https://ci.xiaohongshu.com/t"))
    assert not proxied._proxied(Request("http://sns-img-bd.xhscdn.com/t"))  # no http_proxy
    assert not proxied._proxied(Request("https://sns-img-bd.xhscdn.com/t", meta={"proxy": None}))
    assert not make_pipeline(tmp_path, HTTPPROXY_ENABLED=False)._proxied(
        Request("https://sns-img-bd.xhscdn.com/t")
    )


async def test_a_full_image_store_is_a_named_failure_logged_once(tmp_path, caplog):
    """Issue 18 (chaos run): ENOSPC was "unexpected error for media" with a traceback
    and stored as internal_error. The kernel's own ENOSPC here: the file the store
    writes is a link to /dev/full."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    pipeline = make_pipeline(tmp_path)
    body = samples.jpeg()
    target = tmp_path / content_path("full", hashlib.sha256(body).hexdigest(), "jpg")
    target.parent.mkdir(parents=True)
    target.symlink_to("/dev/full")
    caplog.set_level("INFO")
    for name in ("a", "b"):
        request = Request(f"https://sns-img-bd.xhscdn.com/{name}")
        response = Response(request.url, body=body, request=request)
        with pytest.raises(MediaDownloadError) as raised:
            await pipeline.media_downloaded(
                response, request, None, item=_Attempt(request, "image")
            )
        assert raised.value.reason == "no_space"
        with pytest.raises(MediaDownloadError):  # Scrapy hands it to media_failed: kept as is
            pipeline.media_failed(Failure(raised.value), request, None)
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "image store full" in errors[0].getMessage()
