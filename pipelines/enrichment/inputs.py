"""What the model sees of a note, and the identities derived from it (pure, but for
:func:`note_input`, which reads the images through the media store).

- :class:`NoteInput`: title, description, tags and the usable images (:class:`ModelImage`,
  keyed by their position in ``item.images``); the text capped by :func:`cap_text`
  (``ENRICH_MAX_TEXT_CHARS``: a 2,000,000-character desc never goes to the model whole).
- :func:`model_input_hash` and the cache key ``<prompt version>/<family>/<hash>``
  (:func:`make_cache_key`, :func:`split_cache_key`).
- :func:`plan_batches`: images split into the fewest, evenly sized requests.
- :func:`build_parts`: the prompt, then ``Image <i>:`` before each image.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from google.genai import types
from itemadapter import ItemAdapter

from pipelines.enrichment.comments import CommentLine, with_comments
from pipelines.media import MediaReadError, MediaStore

logger = logging.getLogger(__name__)

GEMINI_FAMILY = "gemini"
LOCAL_FAMILY = "local"


@dataclass(frozen=True)
class ModelImage:
    """One image as sent to the model: its position in ``item.images`` and its bytes."""

    index: int
    data: bytes
    sha256: str
    mime: str = "image/jpeg"


@dataclass(frozen=True)
class NoteInput:
    title: str
    desc: str
    tags: tuple[str, ...]
    images: tuple[ModelImage, ...]
    text_cut: bool = False  # the text was longer than ENRICH_MAX_TEXT_CHARS (see cap_text)
    # The note's top comments and the hash's "+c" mark (pipelines/enrichment/comments.py).
    comments: tuple[CommentLine, ...] = ()
    comments_mark: str = ""

    @property
    def empty(self) -> bool:
        return not self.title and not self.desc and not self.images


def model_input_hash(note: NoteInput) -> str:
    """Hash of what the model sees: the text fields and each image's sha256, in order."""
    payload = json.dumps(
        {
            "title": note.title,
            "desc": note.desc,
            "tags": list(note.tags),
            "images": [[img.index, img.sha256] for img in note.images],
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32] + note.comments_mark


def cap_text(
    title: str, desc: str, tags: Sequence[str], limit: int
) -> tuple[str, str, tuple[str, ...], bool]:
    """(title, desc, tags, cut): the note's text within ``limit`` characters in all.

    The title comes first (cut to ``limit`` itself if it must), the desc gets what is
    left (cut with a final ``…``), then whole tags while they fit. ``cut`` says whether
    anything was left out.
    """
    cut = len(title) > limit
    title = title[:limit]
    room = limit - len(title)
    if len(desc) > room:
        desc, cut = (desc[: room - 1] + "…" if room > 0 else ""), True
    room -= len(desc)
    kept: list[str] = []
    for tag in tags:
        if len(tag) <= room:
            kept.append(tag)
            room -= len(tag)
        else:
            cut = True
    return title, desc, tuple(kept), cut


def make_cache_key(version: str, family: str, digest: str) -> str:
    return f"{version}/{family}/{digest}"


def split_cache_key(key: str | None) -> tuple[str, str, str] | None:
    """``(version, family, content hash)`` of a key made by :func:`make_cache_key`."""
    parts = key.rsplit("/", 2) if isinstance(key, str) else []
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


def plan_batches(images: Sequence[ModelImage], max_per_request: int) -> list[list[ModelImage]]:
    """Split images into the fewest requests of at most ``max_per_request``, evenly sized.

    Even sizes (12 → 6 + 6 rather than 8 + 4) keep every answer well below the output
    limit. A note without images is one request with no image.
    """
    if not images:
        return [[]]
    count = -(-len(images) // max_per_request)
    size, extra = divmod(len(images), count)
    batches, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        batches.append(list(images[start:end]))
        start = end
    return batches


def image_label(index: int) -> str:
    return f"Image {index}"


def build_parts(prompt: str, images: Sequence[ModelImage]) -> list[types.Part]:
    """The prompt, then for each image its label as a text part followed by the JPEG."""
    parts = [types.Part.from_text(text=prompt)]
    for img in images:
        parts.append(types.Part.from_text(text=f"{image_label(img.index)}:"))
        parts.append(types.Part.from_bytes(data=img.data, mime_type=img.mime))
    return parts


def note_input(
    adapter: ItemAdapter, store: MediaStore, *, max_text_chars: int
) -> tuple[NoteInput, list[str]]:
    """The note's text (capped: :func:`cap_text`) and the bytes of its usable images,
    plus the reasons of the images that could not be read (blocking: run it in a worker
    thread).

    Images the media pipeline did not store (``status`` other than ``ok``) are left
    out; the downscaled JPEG (``model_path``) is preferred over the stored original.
    """
    images: list[ModelImage] = []
    unreadable: list[str] = []
    for index, image in enumerate(adapter.get("images") or []):
        img = ItemAdapter(image)
        relative = img.get("model_path") or img.get("path")
        if img.get("status") != "ok" or not relative:
            continue
        try:
            data = store.read(relative)
        except MediaReadError as exc:
            logger.warning("image %d of note %s unreadable: %s", index, adapter.get("note_id"), exc)
            unreadable.append(exc.reason)
            continue
        mime = "image/jpeg" if img.get("model_path") else img.get("mime") or "image/jpeg"
        digest = img.get("sha256") or hashlib.sha256(data).hexdigest()
        images.append(ModelImage(index=index, data=data, sha256=digest, mime=mime))
    title, desc, tags, cut = cap_text(
        (adapter.get("title") or "").strip(),
        (adapter.get("desc") or "").strip(),
        tuple(adapter.get("tags") or ()),
        max_text_chars,
    )
    note = NoteInput(title=title, desc=desc, tags=tags, images=tuple(images), text_cut=cut)
    return with_comments(note, adapter, model_input_hash(note)), unreadable
