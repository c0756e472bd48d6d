"""The items: one normalized schema per record whatever the source (page state or web API).

Notes (``NoteItem``), and since issues 14/15 comments (``CommentItem``) and creator
profiles (``UserItem``), whose counts are ``CountText`` (the integer and the raw text).

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
class ItemError:
    """An unexpected exception a pipeline stage met on this item (``pipelines/guard.py``):
    the stage's work on it is missing, the item went on to the next stage anyway."""

    stage: str  # the pipeline stage: incremental, media, enrichment, storage
    reason: str  # a stats key part: ``internal_error``
    message: str  # the exception's type and (clipped) message


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
    # The note's comment thread, set by the spider when comments are asked for
    # (crawler/comments/) and read in this crawl; None: not read this time (off, or
    # unchanged since the stored read), so storage leaves the stored thread fields as
    # they are. ``comments_complete`` false names why in ``comments_reason``.
    comments: list[CommentItem] | None = None
    comments_complete: bool | None = None
    comments_reason: str | None = None
    comments_crawled: CommentsCrawled | None = None
    # Unexpected exceptions met by pipeline stages (pipelines/guard.py), in stage order.
    errors: list[ItemError] = field(default_factory=list)


# --- comments (issue 14) and creator profiles (issue 15) ------------------------------
# Built by crawler/parsing/comments.py and crawler/parsing/users.py. Text is cleaned
# (crawler.core.text.clean_text) and capped there; a capped field is named in
# ``truncated``, so a stored record says what was cut.


@dataclass
class CountText:
    """A count as an integer (lower bound for "10+"-style forms) plus the text shown.

    ``value`` is None when the text is no count ("赞", absent, absurdly long).
    """

    value: int | None = None
    raw: str | None = None


@dataclass
class CommentTarget:
    """The comment a reply answers (its root or another reply) and that comment's author."""

    comment_id: str
    user: NoteUser | None = None


@dataclass
class CommentPicture:
    url: str
    width: int | None = None
    height: int | None = None


# Where a comment was read: a top-level entry of comment/page, a reply inline in a
# top-level entry's ``sub_comments``, or a reply of comment/sub/page.
CommentOrigin = Literal["comment_page", "inline_reply", "reply_page"]


@dataclass
class CommentItem:
    comment_id: str
    note_id: str
    root_comment_id: str | None  # None for a top-level comment
    target_comment: CommentTarget | None  # what a reply answers; None at top level
    user: NoteUser | None
    content: str
    at_users: list[NoteUser]
    pictures: list[CommentPicture]
    like_count: CountText
    created_at: datetime | None
    ip_location: str | None
    status: int | None  # the site's own status code (0 = shown)
    is_author: bool  # written by the note's author (show_tags has "is_author")
    show_tags: list[str]
    reply_count: CountText | None  # sub_comment_count; None for a reply
    found_via: CommentOrigin
    truncated: list[str] = field(default_factory=list)  # fields cut to their cap
    fetched_at: datetime | None = None


@dataclass
class CommentsCrawled:
    """How a note's thread was read: what the next crawl compares to skip an unchanged one."""

    note_count: int | None  # the note's shown comment count when its thread was read
    # (exact counts only: None for a bucketed "100+" / "1.2万", see ``shown``)
    wanted_comments: int | None  # top-level comments asked for (None: all)
    wanted_replies: int | None  # replies per top-level comment asked for (None: all)
    read: int  # comments and replies kept
    pages: int  # comment API answers read
    reloads: int  # page loads after the first (captchas, rotated signatures, stalls)
    skipped: dict[str, int] = field(default_factory=dict)  # left-out entries by reason
    at: datetime | None = None
    shown: str | None = None  # the count as the note showed it then ("342", "1.2万")


UserGender = Literal["male", "female"]


@dataclass
class UserTag:
    """A profile tag: ``kind`` is the site's tagType ("info", "location", "college", …)."""

    kind: str
    name: str | None = None
    icon: str | None = None


@dataclass
class UserInteractions:
    follows: CountText = field(default_factory=CountText)
    fans: CountText = field(default_factory=CountText)
    likes_and_collects: CountText = field(default_factory=CountText)  # "获赞与收藏"


@dataclass
class UserItem:
    user_id: str
    red_id: str | None
    nickname: str
    desc: str
    gender: UserGender | None
    ip_location: str | None
    avatar: str | None
    tags: list[UserTag]
    interactions: UserInteractions
    # Red-official verification, when the source carries it (None: not said).
    verified: bool | None = None
    verify_type: int | None = None  # the site's red_official_verify_type (0 = none)
    source: NoteSource = "page"
    truncated: list[str] = field(default_factory=list)  # fields cut to their cap
    fetched_at: datetime | None = None
    # Set by the crawl: the user's notes the visit saw listed on the profile (all pages
    # scrolled for `-a users=`, the page's first notes for a profile-only visit).
    notes_seen: int | None = None
