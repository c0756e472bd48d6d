"""An identifier drawn into every sandbox picture, readable after re-encoding.

The tag is a 48-bit integer plus a 16-bit checksum, drawn as two rows of 32 black or
white blocks along the bottom edge of the picture. The block layout is defined as
fractions of the picture's size, so decoding a downscaled copy samples the same
blocks; each block is sampled over its central area, which makes the strip robust to
resampling blur and JPEG ringing (at 1080 px wide a block is ~34 px, still ~24 px
after downscaling to 768 px). A picture without a tag decodes to ``None`` unless its
bottom edge happens to hold a valid checksum (probability 2**-16 for noise).
"""

from __future__ import annotations

import hashlib

from PIL import Image, ImageDraw

TAG_BITS = 48
CHECK_BITS = 16
COLUMNS = 32
ROWS = 2
MAX_TAG = (1 << TAG_BITS) - 1


def strip_height(width: int, height: int) -> int:
    """Pixel height of the strip for a picture of this size (two rows of square blocks)."""
    return min(height, round(ROWS * width / COLUMNS))


def _checksum(tag: int) -> int:
    digest = hashlib.blake2b(tag.to_bytes(6, "big"), digest_size=2, person=b"sbxtag").digest()
    return int.from_bytes(digest, "big")


def _bits(tag: int) -> list[int]:
    word = (tag << CHECK_BITS) | _checksum(tag)
    total = TAG_BITS + CHECK_BITS
    return [(word >> (total - 1 - k)) & 1 for k in range(total)]


def _cell_box(width: int, height: int, k: int) -> tuple[float, float, float, float]:
    """Box (x0, y0, x1, y1) of bit ``k`` in a picture of this size, as floats."""
    row, col = divmod(k, COLUMNS)
    cell_w = width / COLUMNS
    top = height - strip_height(width, height)
    cell_h = (height - top) / ROWS
    return (col * cell_w, top + row * cell_h, (col + 1) * cell_w, top + (row + 1) * cell_h)


def encode(img: Image.Image, tag: int) -> Image.Image:
    """Return a copy of ``img`` (RGB) with ``tag`` drawn along its bottom edge."""
    if not 0 <= tag <= MAX_TAG:
        raise ValueError(f"tag must fit in {TAG_BITS} bits, got {tag}")
    out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    width, height = out.size
    for k, bit in enumerate(_bits(tag)):
        x0, y0, x1, y1 = _cell_box(width, height, k)
        colour = (0, 0, 0) if bit else (255, 255, 255)
        draw.rectangle((round(x0), round(y0), round(x1) - 1, round(y1) - 1), fill=colour)
    return out


def decode(img: Image.Image) -> int | None:
    """Read the tag of ``img``; ``None`` when there is none (or it is unreadable)."""
    grey = img.convert("L")
    width, height = grey.size
    if width < COLUMNS or strip_height(width, height) < ROWS * 2:
        return None
    pixels = grey.load()
    means: list[float] = []
    for k in range(TAG_BITS + CHECK_BITS):
        x0, y0, x1, y1 = _cell_box(width, height, k)
        # Sample the central half of the block, away from blurred edges.
        xs = range(
            int(x0 + (x1 - x0) / 4), max(int(x0 + (x1 - x0) / 4) + 1, int(x1 - (x1 - x0) / 4))
        )
        ys = range(
            int(y0 + (y1 - y0) / 4), max(int(y0 + (y1 - y0) / 4) + 1, int(y1 - (y1 - y0) / 4))
        )
        total = sum(pixels[x, y] for y in ys for x in xs)
        means.append(total / (len(xs) * len(ys)))
    low, high = min(means), max(means)
    if high - low < 64:
        return None
    threshold = (low + high) / 2
    word = 0
    for mean in means:
        word = (word << 1) | (1 if mean < threshold else 0)
    tag, check = word >> CHECK_BITS, word & ((1 << CHECK_BITS) - 1)
    return tag if _checksum(tag) == check else None
