"""pipelines.imaging: sniffing, integrity, bombs, model copies, re-encoding."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pipelines.imaging import (
    ImageError,
    ImageInfo,
    downscale_for_model,
    inspect_and_downscale,
    inspect_image,
    reencode_jpeg,
    sniff_mime,
    sniff_video_mime,
)
from tests.media import samples


@pytest.mark.parametrize(
    ("make", "mime"),
    [
        (samples.jpeg, "image/jpeg"),
        (samples.png, "image/png"),
        (samples.webp, "image/webp"),
        (samples.gif, "image/gif"),
        (samples.heic, "image/heic"),
        (samples.avif, "image/avif"),
    ],
)
def test_sniff_and_inspect_real_encodings(make, mime):
    data = make((320, 200))
    assert sniff_mime(data) == mime
    assert inspect_image(data) == ImageInfo(mime, 320, 200)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<!DOCTYPE html><html><body>captcha</body></html>",
        b'{"code": 300012}',
        b"\xff\xd8",  # too short for the JPEG signature
        b"RIFF\x10\x00\x00\x00WAVEfmt ",
        samples.mp4(),
    ],
)
def test_sniff_refuses_non_images(data):
    assert sniff_mime(data) is None


def test_sniff_video():
    assert sniff_video_mime(samples.mp4()) == "video/mp4"
    assert sniff_video_mime(samples.heic()) is None
    assert sniff_video_mime(samples.jpeg()) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty_body"),
        (b"<html><head><title>404</title></head></html>", "not_an_image"),
        (samples.jpeg((800, 600))[:3000], "corrupt_image"),  # truncated download
        (samples.png((800, 600))[:2000], "corrupt_image"),
        (b"\x89PNG\r\n\x1a\n" + samples.jpeg()[8:], "corrupt_image"),  # lying magic bytes
        (samples.png_claiming(9000, 8000), "too_many_pixels"),  # over our limit
        (samples.png_claiming(100_000, 100_000), "too_many_pixels"),  # Pillow's bomb error
    ],
)
def test_bad_images_fail_with_a_reason(data, reason):
    with pytest.raises(ImageError) as caught:
        inspect_image(data)
    assert caught.value.reason == reason
    assert str(caught.value).startswith(reason)


def test_pixel_limit_is_a_parameter():
    data = samples.png((400, 300))
    with pytest.raises(ImageError, match="too_many_pixels"):
        inspect_image(data, max_pixels=400 * 300 - 1)
    assert inspect_image(data, max_pixels=400 * 300).width == 400


def test_model_copy_long_side_1536_jpeg_without_metadata():
    info, model = inspect_and_downscale(samples.jpeg((3000, 2000)))
    assert info == ImageInfo("image/jpeg", 3000, 2000)
    assert sniff_mime(model) == "image/jpeg"
    with Image.open(io.BytesIO(model)) as img:
        assert img.size == (1536, 1024)
        assert img.mode == "RGB"
        assert not img.getexif()


def test_model_copy_applies_exif_orientation():
    # Stored 2400 x 1200 with "rotate 90 CW" (6): displayed portrait 1200 x 2400.
    data = samples.jpeg((2400, 1200), orientation=6)
    assert inspect_image(data) == ImageInfo("image/jpeg", 1200, 2400)
    assert samples.size_of(downscale_for_model(data)) == (768, 1536)


def test_model_copy_keeps_small_images_and_flattens_alpha_on_white():
    rgba = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    data = samples.encode(rgba, "PNG")
    model = downscale_for_model(data)
    with Image.open(io.BytesIO(model)) as img:
        assert img.size == (200, 100)
        assert img.getpixel((10, 10)) >= (250, 250, 250)


@pytest.mark.parametrize("make", [samples.heic, samples.gif, samples.webp])
def test_model_copy_of_other_formats(make):
    model = downscale_for_model(make((2000, 1000)), long_side=1536)
    assert sniff_mime(model) == "image/jpeg"
    assert samples.size_of(model) == (1536, 768)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("CMYK", "JPEG"),
        ("L", "JPEG"),
        ("LA", "PNG"),
        ("I;16", "PNG"),
        ("1", "PNG"),
        ("RGBA", "WEBP"),
    ],
)
def test_model_copy_of_other_colour_modes(mode, fmt):
    data = samples.encode(samples.picture((2000, 1000)).convert(mode), fmt)
    with Image.open(io.BytesIO(downscale_for_model(data))) as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (1536, 768))


def test_sniff_bounds_hostile_ftyp_boxes():
    box = (0xFFFFFFFF).to_bytes(4, "big") + b"ftypmif1" + b"\0" * 4 + b"abcd" * 500_000 + b"heic"
    assert sniff_mime(box) == "image/heif"  # brands past the cap are not read


def test_model_copy_refuses_bad_input():
    with pytest.raises(ImageError, match="corrupt_image"):
        downscale_for_model(samples.jpeg((800, 600))[:3000])


@pytest.mark.parametrize(
    "data",
    [
        samples.encode(samples.picture((300, 200)).convert("CMYK"), "JPEG"),
        samples.encode(samples.picture((300, 200)).convert("I;16"), "PNG"),
        samples.heic((300, 200)),
        samples.encode(samples.picture((300, 200)).convert("P"), "PNG", transparency=0),
    ],
)
def test_reencode_jpeg_gives_plain_rgb_jpeg_at_full_size(data):
    out = reencode_jpeg(data)
    with Image.open(io.BytesIO(out)) as img:
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (300, 200))


def test_reencode_jpeg_refuses_non_images():
    with pytest.raises(ImageError, match="not_an_image"):
        reencode_jpeg(b"<html></html>")
