"""NoteMediaPipeline against the sandbox site's CDN (the offline stand-in for XHS).

The pictures carry an ``imagetag`` strip naming their ground truth: it must survive
the pipeline's downscaled model copy, or local OCR and the Gemini emulator would not
know which picture they were given.
"""

from __future__ import annotations

import io

from PIL import Image

from crawler.core.items import NoteImage
from sandbox import imagetag
from tests.factories import make_note
from tests.media.harness import media_crawl

_STYLE = "nd_dft_wlteh_webp_3"
_MIMES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def test_sandbox_pictures_through_the_pipeline(sandbox_site, tmp_path):
    cdn = sandbox_site.cdn_url
    specs = [sandbox_site.dataset.note(i) for i in range(4)]
    notes = [
        make_note(
            note_id=spec.note_id,
            images=[
                NoteImage(
                    url=f"{cdn}/202611291200/{'0' * 32}/{image.token}!{_STYLE}",
                    original_urls=[f"{cdn}/{image.token}"],
                )
                for image in spec.images
            ],
        )
        for spec in specs
    ]
    # The original of the very first image is gone: its page URL (full-size WebP)
    # must serve.
    notes[0].images[0].original_urls = [f"{cdn}/notes_pre_post/unknown-token"]
    store = tmp_path / "store"
    items, stats, log = media_crawl(
        notes, {"XHS_BASE_URL": sandbox_site.url, "IMAGES_STORE": str(store)}, tmp_path
    )
    by_id = {item["note_id"]: item for item in items}
    assert len(by_id) == len(specs)
    total = sum(len(spec.images) for spec in specs)
    assert stats["media/images_ok"] == total, log[-3000:]
    assert stats["media/candidate_fallbacks"] == 1
    for spec in specs:
        for image, truth in zip(by_id[spec.note_id]["images"], spec.images, strict=True):
            fell_back = spec is specs[0] and truth.index == 0
            assert image["status"] == "ok"
            assert image["mime"] == ("image/webp" if fell_back else _MIMES[truth.format])
            assert (image["width"], image["height"]) == (truth.width, truth.height)
            with Image.open(io.BytesIO((store / image["model_path"]).read_bytes())) as model:
                assert max(model.size) <= 1536
                assert imagetag.decode(model) == truth.tag
