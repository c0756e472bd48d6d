"""Rendering of the sandbox pictures (and the fake video body) served by the CDN origin.

Text pictures draw exactly ``NoteImageSpec.title`` and ``.lines`` with the layout the
dataset chose (so the ground truth is what is drawn); photos are gradients and shapes.
Every picture carries its image tag along the bottom edge. Encoded bodies are cached
(LRU) because rendering a 1080 x 1440 picture costs tens of milliseconds.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections import OrderedDict
from functools import lru_cache
from threading import Lock

from PIL import Image, ImageDraw, ImageFont, ImageOps

from sandbox import imagetag
from sandbox.dataset import NoteImageSpec

FONT_REGULAR = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
FONT_BOLD = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
_SC_INDEX = 2  # Noto Sans CJK SC inside the collection
_MONO_SC_INDEX = 7  # Noto Sans Mono CJK SC

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_CARD_BACKGROUNDS = (
    (255, 255, 255),
    (255, 250, 240),
    (245, 248, 255),
    (250, 245, 250),
    (255, 252, 235),
)
_ACCENTS = ((255, 36, 66), (35, 110, 220), (20, 150, 110), (235, 120, 20))


@lru_cache(maxsize=32)
def _font(size: int, monospace: bool = False, bold: bool = False) -> ImageFont.FreeTypeFont:
    if monospace:
        return ImageFont.truetype(FONT_REGULAR, size, index=_MONO_SC_INDEX)
    return ImageFont.truetype(FONT_BOLD if bold else FONT_REGULAR, size, index=_SC_INDEX)


def _photo(spec: NoteImageSpec) -> Image.Image:
    rng = random.Random(spec.palette * 7919 + spec.tag)
    top = tuple(rng.randrange(40, 230) for _ in range(3))
    bottom = tuple(rng.randrange(20, 200) for _ in range(3))
    gradient = Image.linear_gradient("L").resize((spec.width, spec.height))
    img = ImageOps.colorize(gradient, top, bottom).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 7)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        x, y = rng.randrange(spec.width), rng.randrange(spec.height * 3 // 4)
        r = rng.randrange(spec.width // 12, spec.width // 4)
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.rectangle((x - r, y - r // 2, x + r, y + r // 2), fill=colour)
    return img


def _text_card(spec: NoteImageSpec) -> Image.Image:
    layout = spec.layout
    if layout.monospace:
        background, ink, heading = (30, 30, 36), (230, 230, 230), (255, 210, 120)
    else:
        background = _CARD_BACKGROUNDS[spec.palette % len(_CARD_BACKGROUNDS)]
        ink, heading = (20, 20, 20), _ACCENTS[spec.palette % len(_ACCENTS)]
    img = Image.new("RGB", (spec.width, spec.height), background)
    draw = ImageDraw.Draw(img)
    if layout.monospace:
        for k, colour in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
            cx = layout.margin + k * 40
            draw.ellipse((cx, 30, cx + 24, 54), fill=colour)
    title_font = _font(int(layout.font_size * 1.25), bold=True)
    draw.text((layout.margin, layout.margin), spec.title, font=title_font, fill=heading)
    body_font = _font(layout.font_size, monospace=layout.monospace)
    for n, line in enumerate(spec.lines):
        draw.text(
            (layout.margin, layout.top + n * layout.line_height), line, font=body_font, fill=ink
        )
    return img


def render(spec: NoteImageSpec) -> Image.Image:
    """The full-size picture with its tag."""
    base = _text_card(spec) if spec.lines or spec.title else _photo(spec)
    return imagetag.encode(base, spec.tag)


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=88)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=85, method=2)
    else:
        img.save(buf, "PNG", compress_level=3)
    return buf.getvalue()


def avatar(token: str) -> bytes:
    """A small round-ish avatar JPEG, colour derived from the token."""
    digest = hashlib.sha256(token.encode()).digest()
    img = Image.new("RGB", (120, 120), (digest[0], digest[1], digest[2]))
    ImageDraw.Draw(img).ellipse((30, 20, 90, 80), fill=(digest[3], digest[4], digest[5]))
    return encode(img, "jpeg")


def fake_mp4(key: str, size: int = 64 * 1024) -> bytes:
    """An ``ftyp``/``mdat`` box pair: sniffs as MP4, deterministic per key."""
    ftyp = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    payload = hashlib.shake_256(key.encode()).digest(size)
    mdat = (len(payload) + 8).to_bytes(4, "big") + b"mdat" + payload
    return ftyp + mdat


class PictureCache:
    """LRU of encoded bodies keyed by (token, variant)."""

    def __init__(self, capacity: int = 128) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], tuple[bytes, str]] = OrderedDict()
        self._lock = Lock()

    def get_or_render(self, spec: NoteImageSpec, variant: str) -> tuple[bytes, str]:
        """``variant``: ``original`` (the image's own format), ``dft`` or ``prv`` (WebP;
        ``prv`` at half size). Returns ``(body, mime)``."""
        key = (spec.token, variant)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        img = render(spec)
        if variant == "original":
            fmt = spec.format
        else:
            fmt = "webp"
            if variant == "prv":
                img = img.resize((spec.width // 2, spec.height // 2), Image.Resampling.LANCZOS)
        value = (encode(img, fmt), MIME[fmt])
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value
