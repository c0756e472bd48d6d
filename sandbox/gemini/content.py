"""Reading a ``generateContent`` request: fields in either spelling, images, token counts.

The SDK sends camelCase at the top and snake_case inside some nested objects
(``inlineData: {data, mime_type}``, ``thinkingConfig: {thinking_budget}``,
``property_ordering``), so every field is looked up under both names. Unknown fields
are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

IMAGE_TILE = 768
SMALL_IMAGE = 384
TOKENS_PER_TILE = 258

_URLSAFE = str.maketrans("-_", "+/")
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


class RequestInvalid(ValueError):
    """The request cannot be served as sent (400 INVALID_ARGUMENT with this message)."""


class BadImage(ValueError):
    """An inline image does not decode."""


def snake(name: str) -> str:
    """``responseMimeType`` → ``response_mime_type``."""
    return _CAMEL_HUMP.sub("_", name).lower()


def field(obj: Mapping[str, Any], camel: str, default: Any = None) -> Any:
    """``obj[camel]``, else ``obj[snake(camel)]``, else ``default``."""
    if camel in obj:
        return obj[camel]
    return obj.get(snake(camel), default)


def text_tokens(text: str) -> int:
    """The emulator's token estimate for text: one token per four characters."""
    return math.ceil(len(text) / 4)


def image_tokens(width: int, height: int) -> int:
    """258 for a picture within 384×384, else 258 per started 768×768 tile."""
    if width <= SMALL_IMAGE and height <= SMALL_IMAGE:
        return TOKENS_PER_TILE
    return math.ceil(width / IMAGE_TILE) * math.ceil(height / IMAGE_TILE) * TOKENS_PER_TILE


@dataclass(frozen=True)
class InlineImage:
    """An image part as sent: its position among the request's images and its bytes."""

    index: int
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class ImageInfo:
    """A decoded image: size, token cost and the text the emulator "reads" in it."""

    index: int
    width: int
    height: int
    tokens: int
    sha256: str
    text: str


@dataclass(frozen=True)
class GenerateRequest:
    """What the emulator needs from a ``generateContent`` body."""

    texts: tuple[str, ...]
    system_text: str
    images: tuple[InlineImage, ...]
    # The contents in order: a text part as its string, an image as its index in
    # ``images`` (a packed request assigns images to the note whose label precedes them).
    layout: tuple[str | int, ...]
    json_mode: bool
    schema: Mapping[str, Any] | None
    max_output_tokens: int | None
    thinking_budget: int | None
    thinking_level: str | None

    @property
    def text_token_count(self) -> int:
        return text_tokens(self.system_text) + sum(text_tokens(t) for t in self.texts)


def _parts_text_and_images(
    contents: list[Any], images: list[InlineImage], layout: list[str | int] | None = None
) -> list[str]:
    texts: list[str] = []
    layout = [] if layout is None else layout
    for content in contents:
        if not isinstance(content, Mapping):
            raise RequestInvalid("Invalid JSON payload received. Expected an object in contents.")
        for part in field(content, "parts") or []:
            if not isinstance(part, Mapping):
                raise RequestInvalid("Invalid JSON payload received. Expected an object in parts.")
            text = part.get("text")
            if isinstance(text, str):
                texts.append(text)
                layout.append(text)
            inline = field(part, "inlineData")
            if isinstance(inline, Mapping):
                layout.append(len(images))
                images.append(_inline_image(inline, len(images)))
    return texts


def _inline_image(inline: Mapping[str, Any], index: int) -> InlineImage:
    mime = field(inline, "mimeType") or ""
    raw = inline.get("data") or ""
    try:
        # The SDK sends the URL-safe alphabet; proto3 JSON accepts both.
        data = base64.b64decode(str(raw).translate(_URLSAFE), validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise RequestInvalid(
            "Invalid value at 'contents.parts.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
        ) from exc
    return InlineImage(index=index, mime_type=str(mime), data=data)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RequestInvalid(
            f'Invalid JSON payload received. Unknown name "{where}": Proto field is not '
            "repeating, cannot start list."
        )
    return value


def parse_generate_request(body: Any) -> GenerateRequest:
    """Pick the parts of a ``generateContent`` body the emulator acts on."""
    if not isinstance(body, Mapping):
        raise RequestInvalid("Invalid JSON payload received. Expected an object.")
    contents = body.get("contents")
    if isinstance(contents, Mapping):
        contents = [contents]
    if not contents:
        raise RequestInvalid("* GenerateContentRequest.contents: contents is not specified\n")
    images: list[InlineImage] = []
    layout: list[str | int] = []
    texts = _parts_text_and_images(list(contents), images, layout)
    system = field(body, "systemInstruction")
    system_texts = _parts_text_and_images([system], []) if isinstance(system, Mapping) else []
    config = _object(field(body, "generationConfig"), "generation_config")
    mime = field(config, "responseMimeType") or ""
    schema = field(config, "responseSchema") or field(config, "responseJsonSchema")
    thinking = _object(field(config, "thinkingConfig"), "generation_config.thinking_config")
    budget = field(thinking, "thinkingBudget")
    max_out = field(config, "maxOutputTokens")
    return GenerateRequest(
        texts=tuple(texts),
        system_text="\n".join(system_texts),
        images=tuple(images),
        layout=tuple(layout),
        json_mode=mime == "application/json",
        schema=schema if isinstance(schema, Mapping) else None,
        max_output_tokens=int(max_out) if isinstance(max_out, int | float) else None,
        thinking_budget=int(budget) if isinstance(budget, int | float) else None,
        thinking_level=field(thinking, "thinkingLevel"),
    )


def count_tokens_contents(body: Any) -> tuple[list[str], list[InlineImage]]:
    """Texts and images of a ``countTokens`` body (plain or wrapped in a request)."""
    if not isinstance(body, Mapping):
        raise RequestInvalid("Invalid JSON payload received. Expected an object.")
    inner = field(body, "generateContentRequest")
    if isinstance(inner, Mapping):
        body = inner
    images: list[InlineImage] = []
    texts = _parts_text_and_images(list(body.get("contents") or []), images)
    return texts, images


_heif_registered = False


def _open_image(data: bytes) -> Image.Image:
    global _heif_registered
    if not _heif_registered:
        # Registering is idempotent and cheap; done on first use so importing the
        # emulator does not require the plugin.
        from pillow_heif import register_heif_opener

        register_heif_opener()
        _heif_registered = True
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def ground_truth_text(img: Image.Image, digest: str) -> str:
    """The text drawn into a sandbox picture, read through its tag.

    ``sandbox.imagetag`` and ``sandbox.dataset`` are imported on use: the emulator
    serves non-sandbox pictures too, and those get a clearly marked placeholder.
    """
    placeholder = f"[emulator: no ground truth for image sha256:{digest[:12]}…]"
    try:
        from sandbox import dataset, imagetag
    except ImportError:
        return placeholder
    tag = imagetag.decode(img)
    if tag is None:
        return placeholder
    text = dataset.lookup_image_text(tag)
    return placeholder if text is None else text


class _DecodedCache:
    """Size and text of recently seen pictures by SHA-256: clients resend the same images
    on every retry, and decoding plus reading the tag takes ~40 ms for a 1536 px JPEG."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[int, int, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[int, int, str] | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None:
                self._entries.move_to_end(digest)
            return entry

    def put(self, digest: str, entry: tuple[int, int, str]) -> None:
        with self._lock:
            self._entries[digest] = entry
            self._entries.move_to_end(digest)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


_decoded = _DecodedCache(capacity=512)


def analyse_image(image: InlineImage) -> ImageInfo:
    """Decode an inline image (Pillow, plus pillow-heif for HEIC/HEIF) or raise BadImage."""
    digest = hashlib.sha256(image.data).hexdigest()
    entry = _decoded.get(digest)
    if entry is None:
        try:
            img = _open_image(image.data)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise BadImage(f"image {image.index} does not decode: {type(exc).__name__}") from exc
        entry = (*img.size, ground_truth_text(img.convert("RGB"), digest))
        _decoded.put(digest, entry)
    width, height, text = entry
    return ImageInfo(
        index=image.index,
        width=width,
        height=height,
        tokens=image_tokens(width, height),
        sha256=digest,
        text=text,
    )
