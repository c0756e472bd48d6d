"""NoteMediaPipeline inside real Scrapy crawls against a real local HTTP server.

Two crawls per module (each a subprocess, see harness.py):
* ``local``: XHS_BASE_URL on 127.0.0.1 (the sandbox case), so loopback images are
  allowed; covers fallback, formats, bad images, redirects, incremental skip, videos.
* ``remote``: XHS_BASE_URL is the real site; every loopback/private URL is refused
  and the server must not see a single request.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from crawler.core.items import NoteImage, NoteVideo
from tests.factories import make_note
from tests.media import samples
from tests.media.harness import media_crawl
from tests.media.server import MediaServer

MIB = 1024 * 1024
BIG_PHOTO = samples.jpeg((3000, 2000))
EXISTING = samples.png((64, 64))
EXISTING_SHA = hashlib.sha256(EXISTING).hexdigest()
EXISTING_PATH = f"full/{EXISTING_SHA[:2]}/{EXISTING_SHA}.png"
EXISTING_MODEL = f"model/{EXISTING_SHA[:2]}/{EXISTING_SHA}.jpg"


@dataclass
class Crawl:
    server: MediaServer
    store: Path
    items: dict[str, dict[str, Any]]
    stats: dict[str, Any]
    log: str

    def images(self, note_id: str) -> list[dict[str, Any]]:
        return self.items[note_id]["images"]


def _local_notes(srv: MediaServer) -> list:
    photo = srv.add("/page/photo.jpg", BIG_PHOTO)
    return [
        make_note(
            note_id="fallback",
            images=[
                # Originals first: 500 then 404, then the page URL works.
                NoteImage(
                    url=photo,
                    original_urls=[
                        srv.add("/ci/500", b"oops", status=500, content_type="text/plain"),
                        srv.url("/bd/404"),
                    ],
                ),
                # The original works: the page URL is never requested.
                NoteImage(
                    url=srv.add("/page/unused.png", samples.png()),
                    original_urls=[srv.add("/bd/orig.png", samples.png((640, 400)))],
                ),
            ],
        ),
        make_note(
            note_id="formats",
            images=[
                NoteImage(url=srv.add(f"/fmt/{name}", make((300, 180)), content_type=ctype))
                for name, make, ctype in [
                    ("jpeg", samples.jpeg, "image/jpeg"),
                    ("png", samples.png, "image/png"),
                    ("webp", samples.webp, "image/webp"),
                    ("heic", samples.heic, "image/heic"),
                    # Types come from the bytes, never from the header:
                    ("gif", samples.gif, "application/octet-stream"),
                ]
            ],
        ),
        make_note(
            note_id="bad",
            images=[
                NoteImage(url=srv.add("/bad/truncated.jpg", samples.jpeg((800, 600))[:4000])),
                NoteImage(url=srv.add("/bad/empty.jpg", b"")),
                NoteImage(url=srv.add("/bad/html.jpg", b"<html><body>verify</body></html>")),
                NoteImage(url=srv.add("/bad/50mb.jpg", stream_bytes=50 * MIB)),
                NoteImage(
                    url=srv.add(
                        "/bad/50mb-chunked.jpg", stream_bytes=50 * MIB, declare_length=False
                    )
                ),
                NoteImage(url=srv.add("/bad/bomb.png", samples.png_claiming(100_000, 100_000))),
                NoteImage(url=srv.add("/bad/ok.webp", samples.webp((500, 500)))),
            ],
            title="../../etc/passwd",
        ),
        make_note(
            note_id="hostile",
            images=[
                NoteImage(url="http://169.254.169.254/latest/meta-data/"),
                NoteImage(url="http://10.0.0.5/a.jpg"),
                NoteImage(url="file:///etc/passwd"),
                NoteImage(url="data:image/png;base64,iVBORw0KGgo="),
                # Redirect hops go through the policy too.
                NoteImage(
                    url=srv.add(
                        "/redirect/evil",
                        status=302,
                        headers={"Location": "http://169.254.169.254/latest/"},
                        content_type="text/plain",
                    )
                ),
                NoteImage(
                    url=srv.add(
                        "/redirect/good",
                        status=301,
                        headers={"Location": "/page/redirected.jpg"},
                        content_type="text/plain",
                    )
                ),
            ],
            title="<script>alert(1)</script>/../../../tmp/x",
        ),
        make_note(
            note_id="existing",
            images=[
                NoteImage(
                    url=srv.url("/must-not-be-requested.png"),
                    path=EXISTING_PATH,
                    model_path=EXISTING_MODEL,
                    status="ok",
                    sha256=EXISTING_SHA,
                    mime="image/png",
                    bytes=len(EXISTING),
                ),
                # A stored path of a shape this pipeline never writes is not trusted.
                NoteImage(
                    url=srv.add("/existing/again.jpg", samples.jpeg((90, 90))),
                    path="../../etc/passwd",
                    status="ok",
                ),
            ],
        ),
        # The same photo in another note: fetched once per run, same path.
        make_note(note_id="same-photo", images=[NoteImage(url=photo)]),
        make_note(
            note_id="video",
            type="video",
            images=[NoteImage(url=srv.add("/video/cover.jpg", samples.jpeg((200, 300))))],
            video=NoteVideo(
                url=srv.add("/video/gone.mp4", b"", status=404, content_type="text/plain"),
                candidates=[
                    "http://10.0.0.7/v.mp4",
                    srv.add("/video/ok.mp4", samples.mp4(), content_type="video/mp4"),
                ],
            ),
        ),
    ]


@pytest.fixture(scope="module")
def local_crawl(tmp_path_factory: pytest.TempPathFactory):
    srv = MediaServer()
    srv.add("/page/redirected.jpg", samples.jpeg((120, 80)))
    with srv.running():
        work = tmp_path_factory.mktemp("media-local")
        store = work / "store"
        # The incremental stage found this image stored by an earlier run.
        for rel, data in ((EXISTING_PATH, EXISTING), (EXISTING_MODEL, samples.jpeg((64, 64)))):
            (store / rel).parent.mkdir(parents=True, exist_ok=True)
            (store / rel).write_bytes(data)
        items, stats, log = media_crawl(
            _local_notes(srv),
            {
                "XHS_BASE_URL": srv.base_url,
                "IMAGES_STORE": str(store),
                "XHS_DOWNLOAD_VIDEOS": True,
                "MEDIA_DOWNLOAD_TIMEOUT": 10,
            },
            work,
        )
        yield Crawl(srv, store, {i["note_id"]: i for i in items}, stats, log)


def test_every_note_comes_out(local_crawl):
    assert sorted(local_crawl.items) == sorted(
        ["fallback", "formats", "bad", "hostile", "existing", "same-photo", "video"]
    )
    assert local_crawl.stats["item_scraped_count"] == 7
    assert "log_count/ERROR" not in local_crawl.stats, local_crawl.log[-3000:]


def test_originals_first_then_page_url(local_crawl):
    srv = local_crawl.server
    first, second = local_crawl.images("fallback")
    assert first["status"] == "ok" and first["error"] is None
    assert (first["width"], first["height"], first["mime"]) == (3000, 2000, "image/jpeg")
    assert [srv.hits("/ci/500"), srv.hits("/bd/404")] == [1, 1]  # no retry: it falls back
    assert second["status"] == "ok" and (second["width"], second["height"]) == (640, 400)
    assert srv.hits("/bd/orig.png") == 1 and srv.hits("/page/unused.png") == 0
    assert local_crawl.stats["media/candidate_fallbacks"] >= 2


def test_content_hash_paths_and_files(local_crawl):
    store = os.path.realpath(local_crawl.store)
    stored = [
        img
        for item in local_crawl.items.values()
        for img in item["images"]
        if img["status"] == "ok"
    ]
    assert len(stored) >= 12
    for img in stored:
        for rel in (img["path"], img["model_path"]):
            real = os.path.realpath(os.path.join(store, rel))
            assert real.startswith(store + os.sep) and os.path.isfile(real)
        data = Path(store, img["path"]).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        ext = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(img["mime"])
        assert img["path"] == f"full/{sha[:2]}/{sha}.{ext or img['path'].rsplit('.', 1)[1]}"
        assert img["model_path"] == f"model/{sha[:2]}/{sha}.jpg"
        assert (img["sha256"], img["bytes"]) == (sha, len(data))
    # Nothing in the store but the three content folders.
    assert sorted(os.listdir(store)) == ["full", "model", "video"]


def test_hostile_titles_change_nothing(local_crawl):
    ok = local_crawl.images("bad")[-1]
    assert ok["status"] == "ok"
    assert ok["path"].startswith("full/") and ".." not in ok["path"]


def test_formats_sniffed_from_magic_bytes(local_crawl):
    got = [(i["mime"], i["path"].rsplit(".", 1)[1]) for i in local_crawl.images("formats")]
    assert got == [
        ("image/jpeg", "jpg"),
        ("image/png", "png"),
        ("image/webp", "webp"),
        ("image/heic", "heic"),
        ("image/gif", "gif"),
    ]
    assert all(i["width"] == 300 and i["height"] == 180 for i in local_crawl.images("formats"))


def test_model_copy_long_side_1536_jpeg(local_crawl):
    photo = local_crawl.images("fallback")[0]
    model = (local_crawl.store / photo["model_path"]).read_bytes()
    with Image.open(io.BytesIO(model)) as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (1536, 1024))


def test_bad_images_fail_with_reasons_while_the_good_one_is_stored(local_crawl):
    images = local_crawl.images("bad")
    reasons = [(i["status"], (i["error"] or "").split(":")[0]) for i in images]
    assert reasons == [
        ("failed", "corrupt_image"),
        ("failed", "empty_body"),
        ("failed", "not_an_image"),
        ("failed", "too_large"),
        ("failed", "too_large"),
        ("failed", "too_many_pixels"),
        ("ok", ""),
    ]
    assert images[3]["error"] == f"too_large: body over {20 * MIB} bytes"
    assert all(i["path"] is None and i["sha256"] is None for i in images[:-1])
    stats = local_crawl.stats
    for reason, count in [
        ("corrupt_image", 1),
        ("empty_body", 1),
        ("not_an_image", 1),
        ("too_large", 2),
        ("too_many_pixels", 1),
    ]:
        assert stats[f"media/images_failed/{reason}"] == count, reason


def test_refused_urls_never_make_a_request(local_crawl):
    images = local_crawl.images("hostile")
    assert [i["error"] for i in images[:4]] == [
        "host_not_allowed: 169.254.169.254",
        "host_not_allowed: 10.0.0.5",
        "scheme_not_allowed: file",
        "scheme_not_allowed: data",
    ]
    assert images[4]["status"] == "failed"
    assert images[4]["error"] == "host_not_allowed: 169.254.169.254"
    assert local_crawl.server.hits("/redirect/evil") == 1
    assert images[5]["status"] == "ok" and (images[5]["width"], images[5]["height"]) == (120, 80)
    assert local_crawl.server.hits("/page/redirected.jpg") == 1
    stats = local_crawl.stats
    assert stats["media/url_refused/host_not_allowed"] >= 4
    assert stats["media/url_refused/scheme_not_allowed"] == 2
    # Refused before any request: only the loopback test server was ever contacted.
    assert stats["downloader/request_count"] == len(local_crawl.server.requests)


def test_incremental_skip_of_stored_images(local_crawl):
    kept, untrusted = local_crawl.images("existing")
    assert kept["status"] == "ok" and kept["path"] == EXISTING_PATH
    assert local_crawl.server.hits("/must-not-be-requested.png") == 0
    assert local_crawl.stats["media/skipped_existing"] == 1
    assert untrusted["status"] == "ok" and untrusted["path"].startswith("full/")
    assert local_crawl.server.hits("/existing/again.jpg") == 1


def test_same_url_fetched_once_per_run(local_crawl):
    (again,) = local_crawl.images("same-photo")
    assert again["path"] == local_crawl.images("fallback")[0]["path"]
    assert local_crawl.server.hits("/page/photo.jpg") == 1


def test_video_opt_in_stored_under_content_path(local_crawl):
    data = samples.mp4()
    sha = hashlib.sha256(data).hexdigest()
    assert (local_crawl.store / f"video/{sha[:2]}/{sha}.mp4").read_bytes() == data
    assert local_crawl.stats["media/videos_ok"] == 1
    assert local_crawl.server.hits("/video/gone.mp4") == 1
    video = local_crawl.items["video"]["video"]
    assert video["url"].endswith("/video/gone.mp4")  # the note keeps its video URL


# --- remote base: loopback is off limits ---------------------------------------------------


@pytest.fixture(scope="module")
def remote_crawl(tmp_path_factory: pytest.TempPathFactory):
    srv = MediaServer()
    with srv.running():
        photo = srv.add("/photo.jpg", samples.jpeg())
        port = srv.port
        urls = [
            photo,
            f"http://127.0.0.9:{port}/photo.jpg",
            f"http://[::1]:{port}/photo.jpg",
            # Listed below, on its usual port (another port is refused by the URL
            # alone), and resolves to loopback: refused by address.
            "http://localhost/photo.jpg",
            "http://169.254.169.254/latest/",
            "http://10.1.2.3/a.jpg",
            "file:///etc/passwd",
        ]
        work = tmp_path_factory.mktemp("media-remote")
        items, stats, log = media_crawl(
            [make_note(note_id="remote", images=[NoteImage(url=u) for u in urls])],
            {
                "XHS_BASE_URL": "https://www.xiaohongshu.com",
                "XHS_IMAGE_HOSTS": "localhost",
                "IMAGES_STORE": str(work / "store"),
            },
            work,
        )
        yield Crawl(srv, work / "store", {i["note_id"]: i for i in items}, stats, log)


def test_remote_base_refuses_loopback_and_private(remote_crawl):
    images = remote_crawl.images("remote")
    assert [i["status"] for i in images] == ["failed"] * 7
    assert [i["error"].split(":")[0] for i in images] == [
        "host_not_allowed",
        "host_not_allowed",
        "host_not_allowed",
        "address_not_allowed",
        "host_not_allowed",
        "host_not_allowed",
        "scheme_not_allowed",
    ]
    assert "(loopback)" in images[3]["error"]
    assert remote_crawl.server.requests == []
    assert remote_crawl.stats.get("downloader/request_count", 0) == 0
    assert remote_crawl.stats["item_scraped_count"] == 1
