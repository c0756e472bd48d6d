"""Pure image helpers: magic-byte sniffing, integrity check, model copies.

Nothing here trusts a URL, a file name or a ``Content-Type`` header: the type comes
from the bytes, and an image only counts as one when Pillow decodes it completely
(a truncated JPEG has valid magic bytes and a valid header).

Decoding is bounded: the pixel count is checked from the header before any pixel
data is decoded, so a small file that claims to be 100000 x 100000 pixels fails
with ``too_many_pixels`` instead of allocating gigabytes. This module does not
change Pillow's global ``Image.MAX_IMAGE_PIXELS``; Pillow's own
``DecompressionBombError`` (raised above twice that limit) maps to the same reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageOps

pillow_heif.register_heif_opener()

#: Above this many pixels an image is refused (a 4000 x 6000 photo has 24 M; long
#: phone screenshots stay well below). Below Pillow's own bomb warning threshold.
DEFAULT_MAX_PIXELS = 64_000_000
MODEL_LONG_SIDE = 1536
MODEL_JPEG_QUALITY = 85
REENCODE_JPEG_QUALITY = 90

#: Sniffed MIME type -> file extension used for stored originals.
MIME_EXTENSIONS: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/avif": "avif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
}

# Pillow format names, to decode a file only as the type its magic bytes announce.
_PILLOW_FORMATS: dict[str, str] = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/heic": "HEIF",
    "image/heif": "HEIF",
    "image/avif": "AVIF",
}

# ISO-BMFF (``ftyp``) brands. HEIF stills, AVIF stills and MP4/QuickTime video share
# the container; the brands tell them apart.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"heif"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_MP4_BRANDS = frozenset(
    {
        b"isom",
        b"iso2",
        b"iso3",
        b"iso4",
        b"iso5",
        b"iso6",
        b"mp41",
        b"mp42",
        b"avc1",
        b"dash",
        b"M4V ",
        b"MSNV",
        b"f4v ",
    }
)
_QUICKTIME_BRAND = b"qt  "
_MAX_BRANDS = 64

# EXIF orientations that swap width and height when applied.
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_EXIF_ORIENTATION_TAG = 0x0112


class ImageError(Exception):
    """An image that cannot be used; ``reason`` is a short snake_case key for stats.

    Reasons: ``empty_body``, ``not_an_image``, ``corrupt_image``, ``too_many_pixels``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class ImageInfo:
    """What the bytes really are. ``width``/``height`` are as displayed (EXIF
    orientation applied), which is what a reader of the note sees."""

    mime: str
    width: int
    height: int


def _ftyp_brands(data: bytes) -> tuple[bytes, frozenset[bytes]] | None:
    """Major brand and compatible brands of an ISO-BMFF ``ftyp`` box at offset 0."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(data[0:4], "big")
    # A hostile box size must not make us read megabytes of "brands".
    end = min(box_size, len(data), 16 + 4 * _MAX_BRANDS) if box_size >= 16 else 16
    compatible = frozenset(data[i : i + 4] for i in range(16, end - 3, 4))
    return data[8:12], compatible


def sniff_mime(data: bytes) -> str | None:
    """The image type announced by the magic bytes, or ``None`` for anything else
    (HTML, JSON, video, empty input …). Decodability is checked by ``inspect_image``."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[0:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    brands = _ftyp_brands(data)
    if brands is None:
        return None
    major, compatible = brands
    every = compatible | {major}
    if major in _AVIF_BRANDS or (major in _HEIF_BRANDS and every & _AVIF_BRANDS):
        return "image/avif"
    if major in _HEIC_BRANDS or every & _HEIC_BRANDS:
        return "image/heic"
    if major in _HEIF_BRANDS:
        return "image/heif"
    return None


def sniff_video_mime(data: bytes) -> str | None:
    """``video/mp4`` or ``video/quicktime`` from the ``ftyp`` box, else ``None``."""
    brands = _ftyp_brands(data)
    if brands is None:
        return None
    major, compatible = brands
    if major == _QUICKTIME_BRAND:
        return "video/quicktime"
    if major in _MP4_BRANDS or (compatible & _MP4_BRANDS and sniff_mime(data) is None):
        return "video/mp4"
    return None


def _open_verified(data: bytes, max_pixels: int) -> tuple[Image.Image, str]:
    """Open ``data`` as the sniffed type, refuse oversized images from the header,
    then decode the (first) frame completely so truncation is caught here."""
    if not data:
        raise ImageError("empty_body", "0 bytes")
    mime = sniff_mime(data)
    if mime is None:
        raise ImageError("not_an_image", f"magic bytes {data[:8].hex()}")
    try:
        img = Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[mime]])
    except Image.DecompressionBombError as exc:
        raise ImageError("too_many_pixels", str(exc)) from exc
    except Exception as exc:
        # Hostile input makes decoders raise anything (OSError, SyntaxError,
        # struct.error, ValueError …): every one of them means "not decodable".
        raise ImageError("corrupt_image", f"{type(exc).__name__}: {exc}"[:200]) from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError("corrupt_image", f"size {width}x{height}")
    if width * height > max_pixels:
        raise ImageError("too_many_pixels", f"{width}x{height} > {max_pixels} pixels")
    return img, mime


def _load(img: Image.Image) -> None:
    try:
        img.load()
    except Exception as exc:  # same reasoning as in _open_verified
        raise ImageError("corrupt_image", f"{type(exc).__name__}: {exc}"[:200]) from exc


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # a broken EXIF block does not make the pixels unusable
        return 1


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB with transparency flattened onto white (black would hide dark text)."""
    if img.mode == "RGB":
        return img
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _scaled_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    longest = max(width, height)
    if longest <= long_side:
        return width, height
    scale = long_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode_jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # No exif=…: the copy carries no metadata (GPS, device) and no orientation tag,
    # because the orientation is already applied to the pixels.
    img.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _render(img: Image.Image, long_side: int | None, quality: int) -> tuple[ImageInfo, bytes]:
    """Decode (fully), orient, flatten, optionally downscale, encode as JPEG."""
    if long_side is not None and img.format == "JPEG":
        # Let libjpeg decode at a reduced scale (never below the target size):
        # much faster for big photos, and it still reads the whole stream. The long
        # side does not depend on the orientation, so the stored size is used.
        img.draft("RGB", _scaled_size(*img.size, long_side))
    _load(img)
    try:
        oriented = ImageOps.exif_transpose(img)
    except Exception:  # unreadable EXIF: keep the pixels as stored
        oriented = img
    rgb = _to_rgb(oriented)
    if long_side is not None:
        target = _scaled_size(rgb.width, rgb.height, long_side)
        if target != rgb.size:
            rgb = rgb.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    info = ImageInfo("image/jpeg", rgb.width, rgb.height)
    return info, _encode_jpeg(rgb, quality)


def inspect_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Type and displayed size of ``data``; raises ``ImageError`` unless the bytes
    are a supported image that decodes completely within ``max_pixels``."""
    img, mime = _open_verified(data, max_pixels)
    with img:
        width, height = img.size
        transposed = _orientation(img) in _TRANSPOSING_ORIENTATIONS
        _load(img)
    if transposed:
        width, height = height, width
    return ImageInfo(mime, width, height)


def inspect_and_downscale(
    data: bytes,
    long_side: int = MODEL_LONG_SIDE,
    *,
    quality: int = MODEL_JPEG_QUALITY,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[ImageInfo, bytes]:
    """``inspect_image`` and ``downscale_for_model`` with a single decode (what the
    media pipeline needs for every downloaded image)."""
    img, mime = _open_verified(data, max_pixels)
    with img:
        width, height = img.size
        if _orientation(img) in _TRANSPOSING_ORIENTATIONS:
            width, height = height, width
        _, jpeg = _render(img, long_side, quality)
    return ImageInfo(mime, width, height), jpeg


def downscale_for_model(
    data: bytes,
    long_side: int = MODEL_LONG_SIDE,
    *,
    quality: int = MODEL_JPEG_QUALITY,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> bytes:
    """A JPEG copy for the model: EXIF orientation applied, RGB (transparency on
    white), long side at most ``long_side`` (smaller images keep their size), no
    metadata. Fewer image tiles means fewer tokens, with no loss for OCR at 1536 px."""
    return inspect_and_downscale(data, long_side, quality=quality, max_pixels=max_pixels)[1]


def reencode_jpeg(
    data: bytes, *, quality: int = REENCODE_JPEG_QUALITY, max_pixels: int = DEFAULT_MAX_PIXELS
) -> bytes:
    """The same picture as a plain baseline RGB JPEG at full size, for an image the
    model rejected as unprocessable (odd colour modes, CMYK, 16-bit PNG, HEIC …)."""
    img, _ = _open_verified(data, max_pixels)
    with img:
        return _render(img, None, quality)[1]
