"""Comment threads of the sandbox notes (issue 14), deterministic from the seed.

A note's thread is built lazily, once per posting of the note (seed, index, posting
time), at its final size, and cached; on a given day the site shows the comments created
before that day's midnight (UTC), with like counts grown to that day (``grown``). So
threads, like notes, grow from one day to the next. The reference note's thread is
complete and fixed, like its counts.

Ground truth: ``Dataset.comments(note_id, day)`` -> ``list[CommentSpec]``, the top-level
comments in the order the comment API pages them (most liked first on that day, then
oldest, then id), each with ``.replies`` oldest first.

Rules the site and the crawler agree on:
- ``status`` 0 is a normal comment; 1 was deleted by its author (content
  ``DELETED_TEXT``, user kept); 3 is hidden by review (content kept, as in fixture 11).
  The comment APIs return every status; only status 0 is *visible*.
- The note's shown comment count (``interactInfo.commentCount``, the API cards'
  ``comment_count``, ``og:xhs:note_comment``) is the number of visible top-level comments
  plus visible replies on that day; ``sub_comment_count`` is a root's visible replies.
  Deleted or hidden comments never have replies of their own.
- A reply answers its root or an earlier reply of the same root (``target_id``,
  ``target_user``); replies by the note's author have ``is_author`` (``show_tags:
  ["is_author"]``); ``at_users`` are the users written as ``@nickname`` in the content;
  ``pictures`` are CDN paths ``comment/...`` served by the sandbox CDN.
- Comment ids are 24 hex: creation time (s), a hash, and ``(root number << 10) | j``
  (j = 0 for a top-level comment, 1.. for its replies), so a root id names its slot.
- Commenters other than the note's author are users without notes of their own (their
  profiles answer "用户不存在").
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from sandbox.dataset import (
    DAY,
    REFERENCE_INDEX,
    REPOST_DAYS,
    NoteUserSpec,
    _b32,
    _core,
    _rng,
    _user,
    grown,
    note_id_of,
    published_at,
)
from sandbox.vocabulary import IP_LOCATIONS

MAX_THREAD = 2500  # visible comments of the largest threads (viral notes)
MAX_TOP = 600  # top-level comments at most
MAX_REPLIES = 200  # replies under one top-level comment at most
DELETED_TEXT = "该评论已删除"
_COMMENTERS = 20_000  # size of the pool of commenters per seed
_COMMENTER_BASE = 400_000  # their user indices start above any note author's

_QUESTIONS = ("请问{x}怎么准备？", "求问楼主{x}用的什么资料", "{x}难吗？想了解一下",
              "博主是几月份的呀？", "请问还有后续吗", "{x}适合新手吗？")  # fmt: skip
_AGREE = ("太有用了，收藏了", "说得对，{x}确实很重要", "同意楼主，亲测有效", "干货满满，感谢分享",
          "码住慢慢看", "正好需要{x}，谢谢")  # fmt: skip
_DISAGREE = ("不太同意，{x}其实没那么重要", "我觉得{x}不是这样的", "感觉有点夸张了",
             "我的经历完全相反")  # fmt: skip
_REPLIES = ("谢谢！", "同问", "我也是这么觉得", "哈哈哈哈", "确实", "可以私信我", "已经发你了",
            "+1", "不客气～", "真的吗")  # fmt: skip
_EMOJI = ("[笑哭R]", "[赞R]", "[害羞R]", "[哭惹R]", "[doge]", "😂", "👍", "🥹", "❤️")


@dataclass(frozen=True)
class CommentPicture:
    """A picture attached to a comment: CDN path and size."""

    token: str
    width: int
    height: int


@dataclass(frozen=True)
class CommentSpec:
    """One comment as a correct crawler should store it (``create_time`` in ms)."""

    comment_id: str
    note_id: str
    root_id: str | None  # None at top level
    target_id: str | None  # the comment a reply answers (None at top level)
    target_user: NoteUserSpec | None
    user: NoteUserSpec
    content: str
    at_users: tuple[NoteUserSpec, ...]
    pictures: tuple[CommentPicture, ...]
    like_count: int
    create_time: int
    ip_location: str | None
    status: int
    is_author: bool
    replies: tuple[CommentSpec, ...] = ()

    @property
    def visible(self) -> bool:
        return self.status == 0

    @property
    def reply_count(self) -> int:
        """Visible replies (the API's ``sub_comment_count``)."""
        return sum(r.visible for r in self.replies)


@dataclass(frozen=True)
class _Raw:
    """A comment of the final thread: like count final, creation time in seconds."""

    spec: CommentSpec  # like_count final
    create_s: int


def _commenter(seed: int, rng: random.Random) -> NoteUserSpec:
    return _user(seed, _COMMENTER_BASE + rng.randrange(_COMMENTERS))


def _content(rng: random.Random, words: tuple[str, ...], reply: bool) -> str:
    if reply and rng.random() < 0.6:
        text = rng.choice(_REPLIES)
    else:
        pool = rng.choice((_QUESTIONS, _AGREE, _AGREE, _DISAGREE))
        text = rng.choice(pool).format(x=rng.choice(words))
    if rng.random() < 0.3:
        text += rng.choice(_EMOJI)
    if rng.random() < 0.05:
        text += f" #{rng.choice(words)}[话题]#"
    return text


def _sizes(rng: random.Random, total: int) -> list[int]:
    """Replies per top-level comment for ``total`` visible comments."""
    if total <= 0:
        return []
    n_top = total if total <= 3 else max(1, min(MAX_TOP, round(total * rng.uniform(0.45, 0.8))))
    n_rep = total - n_top
    weights = [rng.paretovariate(0.8) for _ in range(n_top)]
    counts = Counter(rng.choices(range(n_top), weights, k=n_rep)) if n_rep else Counter()
    sizes = [min(counts[k], MAX_REPLIES) for k in range(n_top)]
    overflow = n_rep - sum(sizes)
    k = 0
    while overflow > 0:  # give what is over the cap to the next roots with room
        room = min(MAX_REPLIES - sizes[k], overflow)
        sizes[k] += room
        overflow -= room
        k = (k + 1) % n_top
    return sizes


def _comment_id(create_s: int, rng: random.Random, root: int, j: int) -> str:
    return f"{create_s:08x}{rng.getrandbits(32):08x}{(root << 10) | j:08x}"


@lru_cache(maxsize=4096)
def _skeleton(
    seed: int, index: int, posted: int
) -> tuple[tuple[int, int, tuple[tuple[int, int], ...]], ...]:
    """Creation times and statuses only, ``((root_s, status, ((reply_s, status), ...)), ...)``
    in creation order: enough to count a thread without writing its comments."""
    core = _core(seed, index)
    total = core.finals["comments"]
    if index != REFERENCE_INDEX:
        total = min(total, MAX_THREAD)
    rng = _rng("thread", seed, index, posted)
    span = (30 if index == REFERENCE_INDEX else REPOST_DAYS) * DAY
    sizes = _sizes(rng, total)
    extras = round(total * 0.03) + (total >= 20)
    # [visible replies, status, hidden replies] per root; extras are leaves with a
    # non-zero status, as roots of their own or as replies of a visible root.
    roots = [[n, 0, 0] for n in sizes]
    for _ in range(extras):
        status = 1 if rng.random() < 0.6 else 3
        if sizes and rng.random() < 0.5:
            roots[rng.randrange(len(sizes))][2] += 1
        else:
            roots.append([0, status, 0])
    times = sorted(posted + 60 + int(span * rng.random() ** 3) for _ in roots)
    rng.shuffle(roots)
    out = []
    for (n_replies, status, n_hidden), root_s in zip(roots, times, strict=True):
        statuses = [0] * n_replies + [1 if rng.random() < 0.6 else 3 for _ in range(n_hidden)]
        rng.shuffle(statuses)
        reply_times = sorted(root_s + 30 + int(20 * DAY * rng.random() ** 2) for _ in statuses)
        out.append((root_s, status, tuple(zip(reply_times, statuses, strict=True))))
    return tuple(out)


@lru_cache(maxsize=256)
def _final(seed: int, index: int, posted: int) -> tuple[tuple[_Raw, tuple[_Raw, ...]], ...]:
    """The thread of one posting at its final size, in creation order."""
    note = _core(seed, index).spec
    author = note.user
    note_id = note_id_of(seed, index, posted // DAY + 1)
    rng = _rng("comments", seed, index, posted)
    words = (*note.tags, note.title[:8])
    out = []
    for k, (root_s, status, reply_skel) in enumerate(_skeleton(seed, index, posted)):
        root_user = author if rng.random() < 0.02 else _commenter(seed, rng)
        root = _make(rng, seed, note_id, author, words, k, 0, root_s, root_user, status, None, None)
        replies: list[_Raw] = []
        for j, (reply_s, st) in enumerate(reply_skel, start=1):
            target = root if not replies or rng.random() < 0.6 else rng.choice(replies)
            is_author = target.spec.user != author and rng.random() < 0.12
            user = author if is_author else _commenter(seed, rng)
            replies.append(
                _make(rng, seed, note_id, author, words, k, j, reply_s, user, st, root, target)
            )
        out.append((root, tuple(replies)))
    return tuple(out)


def _make(
    rng: random.Random,
    seed: int,
    note_id: str,
    author: NoteUserSpec,
    words: tuple[str, ...],
    k: int,
    j: int,
    create_s: int,
    user: NoteUserSpec,
    status: int,
    root: _Raw | None,
    target: _Raw | None,
) -> _Raw:
    content = _content(rng, words, reply=root is not None)
    at_users: tuple[NoteUserSpec, ...] = ()
    if rng.random() < 0.08:
        mentioned = _commenter(seed, rng)
        content = f"@{mentioned.nickname} {content}"
        at_users = (mentioned,)
    pictures: tuple[CommentPicture, ...] = ()
    if rng.random() < 0.03:
        token = "comment/1040g00831" + _b32(rng.getrandbits(110), 22)
        pictures = (CommentPicture(token, *rng.choice(((1080, 1440), (1080, 1080), (720, 1280)))),)
    if status == 1:
        content, at_users, pictures = DELETED_TEXT, (), ()
    hot = rng.random() < 0.01
    likes = rng.randrange(500, 5000) if hot else max(0, int(rng.paretovariate(1.1) * 3) - 3)
    if root is not None:
        likes //= 3
    spec = CommentSpec(
        comment_id=_comment_id(create_s, rng, k, j),
        note_id=note_id,
        root_id=None if root is None else root.spec.comment_id,
        target_id=None if target is None else target.spec.comment_id,
        target_user=None if target is None else target.spec.user,
        user=user,
        content=content,
        at_users=at_users,
        pictures=pictures,
        like_count=likes,
        create_time=create_s * 1000,
        ip_location=rng.choice(IP_LOCATIONS) if rng.random() < 0.95 else None,
        status=status,
        is_author=user == author,
    )
    return _Raw(spec, create_s)


def _on_day(raw: _Raw, cutoff: int, fixed: bool, replies: tuple[CommentSpec, ...]) -> CommentSpec:
    spec = raw.spec
    likes = spec.like_count if fixed else grown(spec.like_count, (cutoff - raw.create_s) / DAY)
    return dataclasses.replace(spec, like_count=likes, replies=replies)


@lru_cache(maxsize=128)
def _thread_on(seed: int, index: int, day: int) -> tuple[CommentSpec, ...]:
    cutoff = day * DAY
    fixed = index == REFERENCE_INDEX
    tops = []
    for root, replies in _final(seed, index, published_at(seed, index, day)):
        if root.create_s >= cutoff:
            continue
        shown = tuple(_on_day(r, cutoff, fixed, ()) for r in replies if r.create_s < cutoff)
        tops.append(_on_day(root, cutoff, fixed, shown))
    tops.sort(key=lambda c: (-c.like_count, c.create_time, c.comment_id))
    return tuple(tops)


def thread_on(seed: int, index: int, day: int) -> list[CommentSpec]:
    """Top-level comments of note ``index`` on ``day`` in API order, with their replies."""
    return list(_thread_on(seed, index, day))


@lru_cache(maxsize=16384)
def visible_count(seed: int, index: int, day: int) -> int:
    """The note's shown comment count on ``day``: visible comments and replies."""
    cutoff = day * DAY
    return sum(
        (status == 0) + sum(st == 0 and reply_s < cutoff for reply_s, st in replies)
        for root_s, status, replies in _skeleton(seed, index, published_at(seed, index, day))
        if root_s < cutoff
    )
