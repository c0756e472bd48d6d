"""Comment answers → ``CommentItem`` (pure; fixtures 10 and 11 are the real shapes).

Two answers, both snake_case web API (domain notes, "Comments"):

- ``GET /api/sns/web/v2/comment/page`` → :func:`parse_comment_page`: top-level
  comments, each with its first replies inline in ``sub_comments``, the page's
  ``cursor``/``has_more``, and per top-level comment where its replies go on
  (``sub_comment_cursor``/``sub_comment_has_more``) as a :class:`ReplyThread`.
- ``GET /api/sns/web/v2/comment/sub/page`` → :func:`parse_reply_page`: replies of one
  root (the request names it; the entries do not), each with ``target_comment``.

An answer that is not usable as a whole raises (``ResponseMalformed``, or the typed
error of ``code != 0``). One bad entry does not spoil the page: it is left out and
recorded in ``skipped`` as a typed error (``.reason``: ``comment_malformed``,
``comment_wrong_note``, ``reply_orphan``, ``comment_duplicate``), which the caller
counts. Long text is cut to its cap and the item names the field in ``truncated``.
Only known fields are read, so unknown keys never reach an item; a hostile one (a
Mongo operator ``$where``, a dotted path ``a.b``, a NUL) is counted in ``ignored``
(``hostile_key``) so that an answer carrying them shows in the stats.

(Just over 400 lines: the two parsers share one ``_Reader`` that keeps the answer's
seen ids, roots and skips; the typed value readers already live in ``values``.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.core.items import (
    CommentItem,
    CommentOrigin,
    CommentPicture,
    CommentTarget,
    CountText,
    NoteUser,
)
from crawler.parsing.errors import (
    CommentDuplicate,
    CommentMalformed,
    CommentWrongNote,
    ParseError,
    ReplyOrphan,
    ResponseMalformed,
)
from crawler.parsing.images import display_url
from crawler.parsing.values import (
    capped_text,
    count_text,
    data_object,
    datetime_ms,
    id_value,
    int_value,
    keys_of,
    list_value,
    load_answer,
    mapping_value,
    safe_id,
    url_value,
)

__all__ = [
    "MAX_AT_USERS",
    "MAX_CONTENT_CHARS",
    "MAX_PICTURES",
    "CommentPage",
    "ReplyPage",
    "ReplyThread",
    "parse_comment_page",
    "parse_reply_page",
]

MAX_CONTENT_CHARS = 10_000  # the site allows far less; a longer text is hostile
MAX_AT_USERS = 50
MAX_PICTURES = 20
MAX_SHOW_TAGS = 10
MAX_SHORT_TEXT = 200  # nicknames, locations, tags, cursors
AUTHOR_TAG = "is_author"
HOSTILE_KEY = "hostile_key"  # the ``ignored`` reason of a key such as ``$where`` or ``a.b``
_SCAN_DEPTH = 4  # nesting levels of an entry scanned for hostile keys


@dataclass(frozen=True, slots=True)
class ReplyThread:
    """Where a top-level comment's replies go on after the ones inline."""

    root_comment_id: str
    cursor: str | None  # sub_comment_cursor: the reply page to ask next
    has_more: bool  # sub_comment_has_more
    reply_count: CountText  # sub_comment_count (the site's count, not proof)
    inline: int  # replies that came inline in sub_comments


@dataclass(slots=True)
class CommentPage:
    """One comment/page answer: roots, each followed by its inline replies."""

    comments: list[CommentItem]
    cursor: str | None
    has_more: bool
    threads: list[ReplyThread]
    skipped: list[ParseError] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)  # keys left unread, by reason

    @property
    def roots(self) -> list[CommentItem]:
        return [c for c in self.comments if c.root_comment_id is None]


@dataclass(slots=True)
class ReplyPage:
    """One comment/sub/page answer: replies of ``root_comment_id``, in order."""

    note_id: str
    root_comment_id: str
    replies: list[CommentItem]
    cursor: str | None
    has_more: bool
    skipped: list[ParseError] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)  # keys left unread, by reason


def parse_comment_page(
    api_json: Mapping[str, Any] | str | bytes,
    *,
    note_id: str | None = None,
    fetched_at: datetime | None = None,
    http_status: int | None = None,
    max_content_chars: int = MAX_CONTENT_CHARS,
) -> CommentPage:
    """The comments of a comment/page answer, with inline replies linked to their root.

    ``note_id`` is the note asked for: entries of another note are skipped, and entries
    without a note id take it. Without it each entry must name its note.
    ``http_status`` is the answer's status when known (code -1 is a signature verdict
    only on a 406).
    """
    label = f"comment page of note {note_id}" if note_id else "comment page"
    data = data_object(load_answer(api_json, label, http_status=http_status), label)
    entries = list_value(data.get("comments"), f"{label}: data.comments", ResponseMalformed)
    reader = _Reader(note_id, fetched_at, max_content_chars)
    comments: list[CommentItem] = []
    threads: list[ReplyThread] = []
    for index, entry in enumerate(entries):
        where = f"{label}: comments[{index}]"
        try:
            root = reader.comment(entry, where, root=None, found_via="comment_page")
            inline = list_value(
                entry.get("sub_comments"), f"{where}.sub_comments", CommentMalformed
            )
            cursor = _cursor(entry.get("sub_comment_cursor"), f"{where}.sub_comment_cursor")
        except ParseError as error:
            reader.skipped.append(error)
            continue
        reader.seen.add(root.comment_id)
        replies = reader.replies(inline, f"{where}.sub_comments", root, "inline_reply")
        comments += [root, *replies]
        threads.append(
            ReplyThread(
                root_comment_id=root.comment_id,
                cursor=cursor,
                has_more=entry.get("sub_comment_has_more") is True,
                reply_count=root.reply_count or CountText(),
                inline=len(replies),
            )
        )
    return CommentPage(
        comments=comments,
        cursor=_cursor(data.get("cursor"), f"{label}: data.cursor", ResponseMalformed),
        has_more=data.get("has_more") is True,
        threads=threads,
        skipped=reader.skipped,
        ignored=reader.ignored,
    )


def parse_reply_page(
    api_json: Mapping[str, Any] | str | bytes,
    *,
    note_id: str,
    root_comment_id: str,
    fetched_at: datetime | None = None,
    http_status: int | None = None,
    max_content_chars: int = MAX_CONTENT_CHARS,
) -> ReplyPage:
    """The replies of a comment/sub/page answer, all under ``root_comment_id``.

    ``note_id`` and ``root_comment_id`` are what the request asked for (the entries
    name their note but not their root); a ``ValueError`` names a bad one.
    """
    for name, value in (("note_id", note_id), ("root_comment_id", root_comment_id)):
        if safe_id(value) is None:
            raise ValueError(f"parse_reply_page: {name} {str(value)[:40]!r} is not an id")
    label = f"reply page of comment {root_comment_id} (note {note_id})"
    data = data_object(load_answer(api_json, label, http_status=http_status), label)
    entries = list_value(data.get("comments"), f"{label}: data.comments", ResponseMalformed)
    reader = _Reader(note_id, fetched_at, max_content_chars)
    reader.seen.add(root_comment_id)
    root = _RootRef(comment_id=root_comment_id, note_id=note_id)
    return ReplyPage(
        note_id=note_id,
        root_comment_id=root_comment_id,
        replies=reader.replies(entries, label, root, "reply_page"),
        cursor=_cursor(data.get("cursor"), f"{label}: data.cursor", ResponseMalformed),
        has_more=data.get("has_more") is True,
        skipped=reader.skipped,
        ignored=reader.ignored,
    )


# --- one entry ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RootRef:
    """What a reply is checked against: its root's id and note."""

    comment_id: str
    note_id: str


class _Reader:
    """Reads the entries of one answer: the note they must belong to, the ids seen."""

    def __init__(self, note_id: str | None, fetched_at: datetime | None, max_chars: int) -> None:
        self.note_id = note_id
        self.fetched_at = fetched_at
        self.max_chars = max_chars
        self.seen: set[str] = set()
        self.skipped: list[ParseError] = []
        self.ignored: Counter[str] = Counter()

    def replies(
        self,
        entries: list[Any],
        label: str,
        root: CommentItem | _RootRef,
        found_via: CommentOrigin,
    ) -> list[CommentItem]:
        """The good replies among ``entries``; the others go to ``skipped``."""
        replies = []
        for index, entry in enumerate(entries):
            try:
                reply = self.comment(entry, f"{label}[{index}]", root, found_via)
            except ParseError as error:
                self.skipped.append(error)
                continue
            self.seen.add(reply.comment_id)
            replies.append(reply)
        return replies

    def comment(
        self,
        entry: Any,
        where: str,
        root: CommentItem | _RootRef | None,
        found_via: CommentOrigin,
    ) -> CommentItem:
        """One entry as an item, or the typed error that says why it is left out."""
        if not isinstance(entry, Mapping):
            raise CommentMalformed(f"{where} is a {type(entry).__name__}, not an object")
        if hostile := _hostile_keys(entry, _SCAN_DEPTH):
            self.ignored[HOSTILE_KEY] += hostile
        comment_id = id_value(entry.get("id"), f"{where}.id", CommentMalformed)
        if comment_id is None:
            raise CommentMalformed(f"{where} has no id (keys: {keys_of(entry)})")
        where = f"{where} (comment {comment_id})"
        note_id = self._note_of(entry, where, root)
        target = self._target(entry, where)
        declared_root = id_value(
            entry.get("root_comment_id"), f"{where}.root_comment_id", ReplyOrphan
        )
        if root is None:
            if target is not None or declared_root is not None:
                raise ReplyOrphan(
                    f"{where}: a reply (of {declared_root or (target and target.comment_id)}) "
                    "listed at the top level, its root unknown"
                )
        else:
            if declared_root is not None and declared_root != root.comment_id:
                raise ReplyOrphan(
                    f"{where}: names root {declared_root} but came in the thread of "
                    f"{root.comment_id}"
                )
            if comment_id == root.comment_id:
                raise ReplyOrphan(f"{where}: a reply that is its own root")
        if comment_id in self.seen:
            raise CommentDuplicate(f"{where}: seen before in this answer")
        content, cut = capped_text(
            entry.get("content"), f"{where}.content", CommentMalformed, self.max_chars
        )
        truncated = ["content"] if cut else []
        at_users = self._at_users(entry, where, truncated)
        pictures = self._pictures(entry, where, truncated)
        tags = [
            tag[:MAX_SHORT_TEXT]
            for tag in list_value(entry.get("show_tags"), f"{where}.show_tags", CommentMalformed)
            if isinstance(tag, str) and tag
        ][:MAX_SHOW_TAGS]
        ip_location, _ = capped_text(
            entry.get("ip_location"), f"{where}.ip_location", CommentMalformed, MAX_SHORT_TEXT
        )
        return CommentItem(
            comment_id=comment_id,
            note_id=note_id,
            root_comment_id=None if root is None else root.comment_id,
            target_comment=target,
            user=_user(entry.get("user_info"), f"{where}.user_info"),
            content=content or "",
            at_users=at_users,
            pictures=pictures,
            like_count=count_text(entry.get("like_count"), f"{where}.like_count", CommentMalformed),
            created_at=datetime_ms(entry.get("create_time")),
            ip_location=ip_location or None,
            status=int_value(entry.get("status")),
            is_author=AUTHOR_TAG in tags,
            show_tags=tags,
            reply_count=(
                count_text(
                    entry.get("sub_comment_count"), f"{where}.sub_comment_count", CommentMalformed
                )
                if root is None
                else None
            ),
            found_via=found_via,
            truncated=truncated,
            fetched_at=self.fetched_at,
        )

    def _note_of(
        self, entry: Mapping[str, Any], where: str, root: CommentItem | _RootRef | None
    ) -> str:
        named = id_value(entry.get("note_id"), f"{where}.note_id", CommentMalformed)
        expected = root.note_id if root is not None else self.note_id
        if named is not None and expected is not None and named != expected:
            raise CommentWrongNote(f"{where}: belongs to note {named}, not {expected}")
        note_id = named or expected
        if note_id is None:
            raise CommentMalformed(f"{where} names no note (no note_id, none asked for)")
        return note_id

    def _target(self, entry: Mapping[str, Any], where: str) -> CommentTarget | None:
        target = mapping_value(
            entry.get("target_comment"), f"{where}.target_comment", CommentMalformed
        )
        if not target:
            return None
        target_id = id_value(target.get("id"), f"{where}.target_comment.id", CommentMalformed)
        if target_id is None:
            return None
        return CommentTarget(
            comment_id=target_id,
            user=_user(target.get("user_info"), f"{where}.target_comment.user_info"),
        )

    def _at_users(
        self, entry: Mapping[str, Any], where: str, truncated: list[str]
    ) -> list[NoteUser]:
        entries = list_value(entry.get("at_users"), f"{where}.at_users", CommentMalformed)
        users: list[NoteUser] = []
        for index, mention in enumerate(entries):
            if not isinstance(mention, Mapping):
                continue  # a mention that names nobody
            user = _user(mention, f"{where}.at_users[{index}]")
            if user is None:
                continue
            if len(users) == MAX_AT_USERS:
                truncated.append("at_users")
                break
            users.append(user)
        return users

    def _pictures(
        self, entry: Mapping[str, Any], where: str, truncated: list[str]
    ) -> list[CommentPicture]:
        entries = list_value(entry.get("pictures"), f"{where}.pictures", CommentMalformed)
        pictures = []
        for picture in entries:
            url = url_value(display_url(picture)) if isinstance(picture, Mapping) else None
            if url is None:
                continue
            if len(pictures) == MAX_PICTURES:
                truncated.append("pictures")
                break
            pictures.append(
                CommentPicture(
                    url=url,
                    width=int_value(picture.get("width")),
                    height=int_value(picture.get("height")),
                )
            )
        return pictures


def _user(value: Any, where: str) -> NoteUser | None:
    """``user_info`` (or an ``at_users`` entry) as a user; None without a usable id."""
    user = mapping_value(value, where, CommentMalformed)
    if not user:
        return None
    user_id = safe_id(user.get("user_id") or user.get("userid"))
    if user_id is None:
        return None
    nickname, _ = capped_text(
        user.get("nickname"), f"{where}.nickname", CommentMalformed, MAX_SHORT_TEXT
    )
    return NoteUser(
        user_id=user_id,
        nickname=nickname,
        avatar=url_value(user.get("image") or user.get("avatar")),
    )


def _hostile_keys(value: Any, depth: int) -> int:
    """Keys of ``value`` (and of the objects inside it, ``depth`` levels down) that a
    Mongo document or filter must never take: ``$…``, dotted, or with a NUL. Inline
    replies (``sub_comments``) are entries of their own, scanned as such."""
    if depth <= 0:
        return 0
    if isinstance(value, Mapping):
        found = 0
        for key, item in value.items():
            name = str(key)
            found += name.startswith("$") or "." in name or "\x00" in name
            if name != "sub_comments":
                found += _hostile_keys(item, depth - 1)
        return found
    if isinstance(value, list):
        return sum(_hostile_keys(item, depth - 1) for item in value[: MAX_PICTURES + MAX_AT_USERS])
    return 0


def _cursor(value: Any, what: str, error: type[ParseError] = CommentMalformed) -> str | None:
    text, cut = capped_text(value, what, error, MAX_SHORT_TEXT)
    if cut:
        raise error(f"{what} is over {MAX_SHORT_TEXT} characters, not a cursor")
    return text or None
