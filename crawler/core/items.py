"""The note item: one normalized schema whatever the source (page state or web API).

Parsing fills the content fields; the media pipeline fills the per-image file fields;
the enrichment pipeline fills ``enrichment``; storage adds bookkeeping of its own.
Nested parts are dataclasses too, so ``ItemAdapter(item).asdict()`` gives plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from crawler.core.enrichment_state import EnrichmentState

NoteType = Literal["normal", "video"]
NoteSource = Literal["page", "api"]


@dataclass
class NoteUser:
    user_id: str
    nickname: str | None = None
    avatar: str | None = None


@dataclass
class NoteInteract:
    """Interaction counts as integers (lower bound for "10+"-style forms) plus the raw text."""

    liked: int | None = None
    collected: int | None = None
    comments: int | None = None
    shares: int | None = None
    raw: dict[str, str | None] = field(default_factory=dict)


@dataclass(kw_only=True)
class StoredFile:
    """What the media pipeline records of a downloaded file (images, opt-in videos)."""

    path: str | None = None  # relative to IMAGES_STORE, derived from the content hash
    sha256: str | None = None
    mime: str | None = None
    bytes: int | None = None
    status: Literal["pending", "ok", "failed", "skipped"] = "pending"
    error: str | None = None


@dataclass
class NoteImage(StoredFile):
    url: str
    original_urls: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    live_photo: bool = False
    model_path: str | None = None  # downscaled JPEG copy sent to the model (media pipeline)


@dataclass
class NoteVideo(StoredFile):
    """The file fields are filled only when XHS_DOWNLOAD_VIDEOS is on."""

    url: str | None
    candidates: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds


@dataclass
class NoteItem:
    note_id: str
    url: str
    xsec_token: str | None
    title: str
    desc: str
    type: NoteType
    user: NoteUser | None
    tags: list[str]
    published_at: datetime | None
    updated_at: datetime | None
    ip_location: str | None
    interact: NoteInteract
    images: list[NoteImage]
    video: NoteVideo | None
    source: NoteSource
    fetched_at: datetime | None = None
    # Set by the spider: how the note was found ("url", "note_id", "keyword:…", "user:…").
    found_via: str | None = None
    # Set by the incremental check before media/enrichment: "new" | "changed" | "unchanged".
    change: str | None = None
    # Set by the incremental check too: pipelines.incremental.content_hash of the note.
    content_hash: str | None = None
    # Filled by the enrichment pipeline (see crawler/core/enrichment_state.py).
    enrichment: EnrichmentState | None = None
    # True for a stored note the enrich spider sends through again (not a new sighting:
    # storage writes no note_stats row and does not move last_crawled_at).
    from_backlog: bool = False
