"""A note's comments in its one enrichment request (issue 14), pure.

When the spider read the note's thread in this crawl (``item.comments`` is a list), the
request also carries its top comments: shown ones (status 0), most liked first, each cut
to ``MAX_COMMENT_CHARS``, while they fit in ``COMMENT_TOKEN_BUDGET`` (a Chinese character
is about one token; an overhead per line is counted). The answer gains
``comment_insights`` (:class:`~pipelines.enrich_schema.CommentInsights`): the main
questions readers ask, what they agree with and what they dispute. The local backend
fills what it can without a model: the questions (comments ending in ？ or ?).

Still one request per note, and zero for an unchanged note: the comments do not enter
the content hash, only a mark (``+c``) that the result was made with them. So a note
whose content is unchanged keeps its result when its thread is read again (counts and
replies move every day) or not read at all (an unchanged thread: ``item.comments`` is
None); a note enriched before comments were asked for gets one new request, with them.
A packed request (several notes at once, issue 16) carries each note's top comments the
same way, under its ``Note <id>:`` block, and its entries answer ``comment_insights`` too
(:mod:`pipelines.enrichment.packing`): the same mark applies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.enrich_schema import CommentInsights

COMMENTS_MARK = "+c"
COMMENT_TOKEN_BUDGET = 1500  # tokens of comments per request (about 1 per CJK character)
MAX_COMMENT_CHARS = 200
LINE_OVERHEAD = 8  # tokens of a line's number and like count
MAX_QUESTIONS = 10
_QUESTION_ENDS = ("？", "?")


@dataclass(frozen=True)
class CommentLine:
    """One comment as the model sees it."""

    comment_id: str
    text: str
    likes: int
    reply: bool


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _likes(comment: Any) -> int:
    count = _get(comment, "like_count")
    value = _get(count, "value") if count is not None else None
    return value if isinstance(value, int) else 0


def top_comments(
    comments: Iterable[Any], budget: int = COMMENT_TOKEN_BUDGET
) -> tuple[CommentLine, ...]:
    """The most liked shown comments that fit in ``budget`` tokens, most liked first."""
    shown = []
    for comment in comments:
        text = " ".join(str(_get(comment, "content") or "").split())
        if _get(comment, "status") not in (0, None) or not text:
            continue
        if len(text) > MAX_COMMENT_CHARS:
            text = text[: MAX_COMMENT_CHARS - 1] + "…"
        shown.append(
            CommentLine(
                comment_id=str(_get(comment, "comment_id")),
                text=text,
                likes=_likes(comment),
                reply=_get(comment, "root_comment_id") is not None,
            )
        )
    shown.sort(key=lambda line: (-line.likes, line.comment_id))
    picked, used = [], 0
    for line in shown:
        cost = len(line.text) + LINE_OVERHEAD
        if used + cost > budget:
            break
        picked.append(line)
        used += cost
    return tuple(picked)


def comments_mark(comments_read: bool, digest: str, previous_cache_key: str | None) -> str:
    """The mark appended to the content hash ``digest`` (see the module doc): ``+c`` when
    this request carries the thread, or when the thread was not read now but the previous
    result for this same content was made with it; else nothing."""
    if comments_read:
        return COMMENTS_MARK
    previous = previous_cache_key.rsplit("/", 1)[-1] if previous_cache_key else ""
    return COMMENTS_MARK if previous == digest + COMMENTS_MARK else ""


def with_comments(note: Any, adapter: Any, digest: str) -> Any:
    """``note`` (a ``NoteInput``) with the item's top comments and its mark; ``digest`` is
    the note's content hash without them."""
    comments = adapter.get("comments")
    enrichment = adapter.get("enrichment")
    previous = _get(enrichment, "cache_key") if enrichment is not None else None
    return dataclasses.replace(
        note,
        comments=top_comments(comments) if comments is not None else (),
        comments_mark=comments_mark(comments is not None, digest, previous),
    )


def render_comments(lines: Iterable[CommentLine]) -> str:
    """The comments block of the prompt ("" without comments)."""
    rows = [
        f"{k}. [{'回复' if line.reply else '评论'}·赞{line.likes}] {line.text}"
        for k, line in enumerate(lines, start=1)
    ]
    return "\n".join(rows)


def local_insights(lines: Iterable[CommentLine]) -> CommentInsights:
    """What the local backend can say: the questions asked (most liked first)."""
    questions = [line.text for line in lines if line.text.rstrip().endswith(_QUESTION_ENDS)]
    return CommentInsights(questions=questions[:MAX_QUESTIONS])
