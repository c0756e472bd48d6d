"""The CDN origin: tagged pictures in their formats, styled URLs, video bodies, truncation."""

from __future__ import annotations

import io

from PIL import Image

from sandbox import imagetag
from sandbox.dataset import lookup_image_text
from sandbox.site import SiteServer
from tests.site.helpers import fetch, page_state

_MAGIC = {"png": b"\x89PNG", "jpeg": b"\xff\xd8\xff"}


def test_originals_have_their_format_and_a_readable_tag(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    formats: set[str] = set()
    for index in (ds.reference_index, 0, 1, 2, 3):
        for spec in ds.note(index).images[:2]:
            answer = fetch(f"{sandbox_site.cdn_url}/{spec.token}")
            assert answer.status == 200
            formats.add(spec.format)
            if spec.format == "webp":
                assert answer.body[:4] == b"RIFF" and answer.body[8:12] == b"WEBP"
            else:
                assert answer.body.startswith(_MAGIC[spec.format])
            img = Image.open(io.BytesIO(answer.body))
            assert img.size == (spec.width, spec.height)
            tag = imagetag.decode(img)
            assert tag == spec.tag and lookup_image_text(tag) == spec.text
    assert len(formats) >= 2


def test_styled_urls_from_the_page_serve_webp(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    note = ds.note(ds.reference_index)
    url = f"{sandbox_site.url}/explore/{note.note_id}?xsec_token={note.xsec_token}"
    image = page_state(fetch(url).text)[1]["note"]["noteDetailMap"][note.note_id]["note"][
        "imageList"
    ][0]
    dft, prv = fetch(image["urlDefault"]), fetch(image["urlPre"])
    assert (
        dft.headers["content-type"] == "image/webp" and prv.headers["content-type"] == "image/webp"
    )
    assert Image.open(io.BytesIO(prv.body)).size == (
        note.images[0].width // 2,
        note.images[0].height // 2,
    )
    assert imagetag.decode(Image.open(io.BytesIO(prv.body))) == note.images[0].tag
    assert fetch(f"{sandbox_site.cdn_url}/1040g2sg31doesnotexist000000000000").status == 404


def test_video_bodies_and_avatars(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    note = next(ds.note(i) for i in range(len(ds)) if ds.note(i).type == "video")
    for key in (note.video.origin_video_key, note.video.stream_key):
        answer = fetch(f"{sandbox_site.cdn_url}/{key}")
        assert answer.status == 200 and answer.headers["content-type"] == "video/mp4"
        assert answer.body[4:8] == b"ftyp"
    avatar = fetch(f"{sandbox_site.cdn_url}/{note.user.avatar_token}?imageView2/2/w/120/format/jpg")
    assert avatar.status == 200 and avatar.body.startswith(b"\xff\xd8\xff")


def test_truncated_image_rate_cuts_bodies(make_site) -> None:
    site = make_site(notes=20, truncated_image_rate=1.0)
    spec = site.dataset.note(site.dataset.reference_index).images[0]
    cut = fetch(f"{site.cdn_url}/{spec.token}")
    site.control(truncated_image_rate=0)
    whole = fetch(f"{site.cdn_url}/{spec.token}")
    assert cut.status == 200 and len(cut.body) == len(whole.body) // 2
    assert int(cut.headers["content-length"]) == len(cut.body)
    assert site.stats()["cdn_truncated"] == 1 and site.stats()["cdn_ok"] == 1
