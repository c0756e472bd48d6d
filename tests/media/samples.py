"""Test media generated on the fly with Pillow / pillow_heif (no binary fixtures)."""

from __future__ import annotations

import io
import struct
import zlib

import pillow_heif
from PIL import Image, ImageDraw

pillow_heif.register_heif_opener()


def picture(size: tuple[int, int] = (320, 200), mode: str = "RGB") -> Image.Image:
    """A picture with some structure (a gradient and a box), so encoders do real work."""
    img = Image.linear_gradient("L").resize(size).convert(mode)
    ImageDraw.Draw(img).rectangle((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    return img


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def jpeg(size: tuple[int, int] = (320, 200), *, orientation: int | None = None) -> bytes:
    img = picture(size)
    if orientation is None:
        return encode(img, "JPEG", quality=90)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", quality=90, exif=exif)


def png(size: tuple[int, int] = (320, 200), mode: str = "RGB") -> bytes:
    return encode(picture(size, mode), "PNG")


def webp(size: tuple[int, int] = (320, 200)) -> bytes:
    return encode(picture(size), "WEBP")


def gif(size: tuple[int, int] = (320, 200)) -> bytes:
    return encode(picture(size).convert("P"), "GIF")


def heic(size: tuple[int, int] = (320, 200)) -> bytes:
    return encode(picture(size), "HEIF")


def avif(size: tuple[int, int] = (320, 200)) -> bytes:
    return encode(picture(size), "AVIF")


def mp4() -> bytes:
    """An ISO-BMFF file with an MP4 ``ftyp`` box (enough for type sniffing)."""
    ftyp = struct.pack(">I4s4sI", 24, b"ftyp", b"isom", 0x200) + b"isomiso2"
    mdat = struct.pack(">I4s", 8 + 64, b"mdat") + bytes(range(64))
    return ftyp + mdat


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims ``width`` x ``height`` pixels
    (a decompression bomb or a lying image: the data holds a few bytes only)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size
