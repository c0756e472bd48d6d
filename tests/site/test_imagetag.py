"""The picture tag survives downscaling to 768 px and JPEG quality 70."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from sandbox import imagetag
from sandbox.dataset import Dataset
from sandbox.site.pictures import encode, render


def _degrade(img: Image.Image, fmt: str = "JPEG", quality: int = 70) -> Image.Image:
    small = img.copy()
    small.thumbnail((768, 768), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, fmt, quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize(
    "size", [(1080, 1440), (1440, 1080), (1080, 1080), (1242, 1660), (800, 2400)]
)
def test_round_trip_after_downscale_and_jpeg(size: tuple[int, int]) -> None:
    base = Image.linear_gradient("L").resize(size).convert("RGB")
    for tag in (0, 1, 0xA5_0007_00031, imagetag.MAX_TAG):
        assert imagetag.decode(_degrade(imagetag.encode(base, tag))) == tag


def test_sandbox_pictures_of_every_kind_decode() -> None:
    ds = Dataset(7, 100)
    kinds: set[tuple[str, str]] = set()
    specs = [spec for i in range(40) for spec in ds.note(i).images]
    for spec in specs:
        if (spec.kind, spec.format) in kinds or len(kinds) >= 6:
            continue
        kinds.add((spec.kind, spec.format))
        original = Image.open(io.BytesIO(encode(render(spec), spec.format)))
        assert imagetag.decode(original) == spec.tag
        assert imagetag.decode(_degrade(original)) == spec.tag
    assert len({kind for kind, _ in kinds}) >= 3


def test_untagged_pictures_decode_to_none() -> None:
    assert imagetag.decode(Image.new("RGB", (1080, 1440), "white")) is None
    assert imagetag.decode(Image.linear_gradient("L").resize((900, 1200))) is None
    assert imagetag.decode(Image.new("RGB", (10, 10))) is None


def test_tag_must_fit() -> None:
    with pytest.raises(ValueError):
        imagetag.encode(Image.new("RGB", (100, 100)), 1 << 48)
