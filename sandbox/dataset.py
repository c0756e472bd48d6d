"""A deterministic, seeded dataset of Xiaohongshu-style notes for the sandbox site.

Nothing is stored: note ``i`` of seed ``s`` is derived from a hash of ``(s, i)`` and does
not depend on the dataset size, so any size (10 to 100,000 notes and more) costs the
same memory, and ``lookup_image_text(tag)`` can regenerate the text drawn on any
picture from the picture's tag alone (seed, note index and image index are in the tag).

Structure that must be computable without scanning every note:
- topics cycle with a per-seed permutation of period 16 (``topic_of``), so the notes of
  a topic are an arithmetic set of indices; ``search`` only generates the notes of the
  topics whose vocabulary can contain the keyword (``_candidate_topics``);
- users own notes inside blocks of 64 consecutive indices (``USER_SLOTS``), so
  ``user_notes`` is a list of at most 34 indices.

Note ``REFERENCE_INDEX`` is always the reference post of the project's original script
(its id ``REFERENCE_NOTE_ID`` is the same for every seed; its date and counts never move).

Days (issue 13): every other note is dated relative to the site's current UTC day
(``day`` = days since 1970-01-01, ``today()``). A note has a fixed phase inside a
``REPOST_DAYS`` cycle and shows its latest posting before that day's midnight, so dates
spread evenly over the ``REPOST_DAYS`` days before today and do not move from one day to
the next, except for the ~1/``REPOST_DAYS`` notes per day whose cycle comes round: they
are posted again that day, under a new id (the id carries the posting time, as real ids
do; ``Dataset.reposted(index, day_a, day_b)`` names them). Counts are a deterministic
function of the note's age on that day (``grown``), so they rise day after day. Comment
threads live in ``sandbox/threads.py`` and profiles in ``sandbox/profiles.py``; both are
reached through ``Dataset``. The words notes are made of are ``sandbox/vocabulary.py``.

Why one module of ~870 lines: every field of a note is drawn from the same per-note
hash and random stream, in an order that fixes the ids, texts and tags of every seed;
split across modules, that order would be shared implicit state. The sections (ids and
tokens, users, dates and growth, pictures, the note, the ``Dataset`` index) read top
to bottom in the order a note is made.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import random
import time as _time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from sandbox.imagetag import strip_height
from sandbox.vocabulary import (
    IP_LOCATIONS,
    NICK_HEAD,
    NICK_TAIL,
    REFERENCE_DESC,
    REFERENCE_ROUNDS,
    REFERENCE_TAGS,
    REFERENCE_TITLE,
    TOPICS,
    Topic,
)

if TYPE_CHECKING:
    from sandbox.profiles import ProfileSpec
    from sandbox.threads import CommentSpec

REFERENCE_INDEX = 7
REFERENCE_NOTE_ID = "6734a1f2000000001b0358c3"

MAX_SEED = 0xFFFF
MAX_NOTES = 1 << 20
_TAG_MAGIC = 0xA5
BLOCK = 64
# Notes per user inside one block of 64 consecutive notes (6 users per block).
USER_SLOTS = (34, 10, 8, 6, 4, 2)
_T0 = 1_672_531_200  # 2023-01-01T00:00:00Z (users' creation times)
DAY = 86400
REPOST_DAYS = 240  # notes are dated within this many days before today
_PERIOD = REPOST_DAYS * DAY
# Alphabet of short-link codes (xhslink.com/a/<code>).
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

IMAGE_SIZES = ((1080, 1440), (1080, 1080), (1242, 1660), (1440, 1080), (1080, 1350))
FORMATS = ("png", "jpeg", "webp")

_TOPIC_BY_KEY = {t.key: t for t in TOPICS}
# Period-16 topic cycle: the LLM topic is a quarter of any dataset (the sandbox is
# themed around the project's LLM-interview notes; a 300-note site has ~70 of them).
_CYCLE = ("llm", "llm", "llm", "llm", "code", "code", "career", "study", "travel", "travel",
          "food", "food", "beauty", "fitness", "photo", "pets")  # fmt: skip


@dataclass(frozen=True)
class Layout:
    """How a text picture is drawn: the sandbox renderer follows it exactly."""

    font_size: int
    line_height: int
    margin: int
    top: int
    monospace: bool = False


@dataclass(frozen=True)
class NoteImageSpec:
    """One picture of a note: CDN token, size, original format, and what is drawn."""

    index: int
    token: str
    width: int
    height: int
    format: str  # png | jpeg | webp (of the original)
    kind: str  # qa_card | list | code | photo | video_cover
    title: str  # heading drawn on text pictures ("" for photos)
    lines: tuple[str, ...]  # body lines as drawn
    tag: int
    layout: Layout
    palette: int

    @property
    def text(self) -> str:
        """Ground truth: every piece of text drawn on the picture, one line per row."""
        return "\n".join(([self.title] if self.title else []) + list(self.lines))


@dataclass(frozen=True)
class NoteUserSpec:
    """The author of notes (``avatar_token`` is a CDN path)."""

    index: int
    user_id: str
    nickname: str
    avatar_token: str
    xsec_token: str


@dataclass(frozen=True)
class NoteVideoSpec:
    """CDN keys of a video note's body (origin key and h264 stream key)."""

    origin_video_key: str
    stream_key: str
    width: int
    height: int
    duration: int  # seconds


@dataclass(frozen=True)
class NoteSpec:
    """One note with everything a correct crawler should extract from it.

    ``interact`` holds the counts as the site shows them (``"1.2万"``, ``"10+"``),
    ``interact_expected`` what a correct count parser returns for those strings, and
    ``interact_exact`` the true values behind them.
    """

    index: int
    note_id: str
    xsec_token: str
    title: str
    desc: str
    type: str  # normal | video
    topic: str
    user: NoteUserSpec
    tags: tuple[str, ...]
    time: int  # ms
    last_update_time: int  # ms
    ip_location: str
    interact: dict[str, str]  # raw strings as shown: liked, collected, comments, shares
    interact_expected: dict[str, int]  # what a correct count parser returns for each
    interact_exact: dict[str, int]  # the underlying true counts
    images: tuple[NoteImageSpec, ...]
    video: NoteVideoSpec | None = None
    tag_ids: tuple[str, ...] = ()


def _hash(*parts: object) -> int:
    data = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _rng(*parts: object) -> random.Random:
    return random.Random(_hash(*parts))


_B32 = "0123456789abcdefghijklmnopqrstuv"


def _b32(value: int, length: int) -> str:
    return "".join(_B32[(value >> (5 * k)) & 31] for k in range(length))


def _xsec(*parts: object) -> str:
    raw = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return "AB" + base64.urlsafe_b64encode(raw).decode()[:43] + "="


@lru_cache(maxsize=512)
def _index_mask(seed: int, kind: str) -> int:
    return _hash("mask", kind, seed) & 0xFFFFFFFF


def _short_mask(seed: int) -> int:
    return _index_mask(seed, "short") & (MAX_NOTES - 1)


def format_count(n: int, style: str) -> str:
    """The count as the site shows it: ``300``, ``1.2万``, or a ``10+``-style bucket."""
    if style == "plus":
        for floor, text in ((10000, "1w+"), (1000, "1k+"), (100, "100+"), (10, "10+")):
            if n >= floor:
                return text
        return str(n)
    if n < 10000:
        return str(n)
    value = f"{n / 10000:.1f}".rstrip("0").rstrip(".")
    return f"{value}万"


def expected_count(text: str) -> int:
    """What a correct parser returns for a shown count (lower bound for ``+`` forms)."""
    body = text.rstrip("+")
    for suffix, factor in (("万", 10000), ("w", 10000), ("k", 1000)):
        if body.endswith(suffix):
            return round(float(body[: -len(suffix)]) * factor)
    return int(body)


def text_units(line: str) -> float:
    """Approximate rendered width in em: CJK and full-width characters 1, others 0.6."""
    return sum(1.0 if ord(ch) > 0x2E80 else 0.6 for ch in line)


def wrap(line: str, max_units: float) -> list[str]:
    """Wrap one line to ``max_units`` em without a font (deterministic, font-free)."""
    out: list[str] = []
    current = ""
    for ch in line:
        if current and text_units(current + ch) > max_units:
            out.append(current.rstrip())
            current = "" if ch == " " else ch
        else:
            current += ch
    if current.strip():
        out.append(current.rstrip())
    return out


def topic_of(seed: int, index: int) -> Topic:
    """Topic of note ``index`` (the reference note is an LLM note)."""
    if index == REFERENCE_INDEX:
        return _TOPIC_BY_KEY["llm"]
    return _TOPIC_BY_KEY[_cycle(seed)[index % len(_CYCLE)]]


@lru_cache(maxsize=256)
def _cycle(seed: int) -> tuple[str, ...]:
    order = list(_CYCLE)
    random.Random(seed).shuffle(order)
    return tuple(order)


@lru_cache(maxsize=256)
def _slot_table(seed: int) -> tuple[int, ...]:
    table = [slot for slot, count in enumerate(USER_SLOTS) for _ in range(count)]
    random.Random(seed * 31 + 7).shuffle(table)
    return tuple(table)


def user_index_of(seed: int, index: int) -> int:
    block, pos = divmod(index, BLOCK)
    return block * len(USER_SLOTS) + _slot_table(seed)[pos]


def user_note_indices(seed: int, user_index: int) -> list[int]:
    """Indices of every note of a user (unbounded by size), ascending."""
    block, slot = divmod(user_index, len(USER_SLOTS))
    return [block * BLOCK + pos for pos, s in enumerate(_slot_table(seed)) if s == slot]


def make_tag(seed: int, index: int, image: int) -> int:
    """48-bit picture tag: magic (8 bits), seed (16), note index (20), image index (4)."""
    return (_TAG_MAGIC << 40) | (seed << 24) | (index << 4) | image


def split_tag(tag: int) -> tuple[int, int, int] | None:
    """``(seed, note index, image index)`` of a tag, ``None`` if it is not a sandbox tag."""
    if tag >> 40 != _TAG_MAGIC:
        return None
    return (tag >> 24) & 0xFFFF, (tag >> 4) & 0xFFFFF, tag & 0xF


def _user(seed: int, user_index: int) -> NoteUserSpec:
    rng = _rng("user", seed, user_index)
    nickname = rng.choice(NICK_HEAD) + rng.choice(NICK_TAIL)
    if rng.random() < 0.5:
        nickname += str(rng.randrange(10, 999))
    ts = _T0 - 86400 * 365 + rng.randrange(86400 * 365)
    uid = (
        f"{ts:08x}" + f"{rng.getrandbits(32):08x}" + f"{user_index ^ _index_mask(seed, 'user'):08x}"
    )
    avatar = "avatar/1040g2jo" + _b32(rng.getrandbits(100), 20)
    return NoteUserSpec(user_index, uid, nickname, avatar, _xsec("user", seed, user_index))


def _interact_finals(rng: random.Random) -> tuple[dict[str, int], dict[str, str]]:
    """Counts a note reaches in the end, and how each is shown (``plain`` or ``plus``)."""
    liked = int(rng.paretovariate(0.9) * 20) - 20 + rng.randrange(0, 40)
    if rng.random() < 0.025:  # a viral note
        liked = rng.randrange(10_000, 300_000)
    liked = min(max(liked, 0), 2_000_000)
    exact = {
        "liked": liked,
        "collected": int(liked * rng.uniform(0.1, 0.9)),
        "comments": int(liked * rng.uniform(0.01, 0.2)),
        "shares": int(liked * rng.uniform(0.0, 0.15)),
    }
    styles: dict[str, str] = {}
    for name, n in exact.items():
        # Listings round big counts down to buckets ("1k+", "1w+"); small comment and
        # share counts are often shown as "10+".
        odds = 0.25 if n >= 1000 else (0.15 if name in ("comments", "shares") else 0.0)
        styles[name] = "plus" if rng.random() < odds else "plain"
    return exact, styles


def _shown(
    exact: dict[str, int], styles: dict[str, str]
) -> tuple[dict[str, str], dict[str, int], dict[str, int]]:
    raw = {k: format_count(n, styles[k]) for k, n in exact.items()}
    return raw, {k: expected_count(v) for k, v in raw.items()}, dict(exact)


def today(offset: int = 0) -> int:
    """The current UTC day (days since 1970-01-01) plus ``offset`` days."""
    return int(_time.time() // DAY) + offset


def published_at(seed: int, index: int, day: int) -> int:
    """Posting time (s) of note ``index`` as seen on ``day``: its latest posting before
    that day's midnight (UTC). The reference note keeps its own date."""
    if index == REFERENCE_INDEX:
        return int(REFERENCE_NOTE_ID[:8], 16)
    cutoff = day * DAY
    phase = _hash("phase", seed, index) % _PERIOD
    return cutoff - 1 - ((cutoff - 1 - phase) % _PERIOD)


def grown(final: int, age_days: float) -> int:
    """Part of a final count reached ``age_days`` after posting: most of it in the first
    days, the rest linearly until ``REPOST_DAYS``. Non-decreasing in ``age_days``."""
    age = min(max(age_days, 0.0), float(REPOST_DAYS))
    return int(final * (0.8 * age / (age + 2.0) + 0.2 * age / REPOST_DAYS))


def _text_picture(
    topic: Topic, kind: str, rng: random.Random, width: int
) -> tuple[str, tuple[str, ...], Layout]:
    if kind == "code" and topic.code:
        lines = rng.choice(topic.code)
        size = max(28, width // 30)
        layout = Layout(
            size, int(size * 1.5), width // 14, width // 14 + int(size * 2.2), monospace=True
        )
        title = "代码示例" if topic.key != "llm" else "手撕代码"
        return title, tuple(lines), layout
    size = max(36, width // 24)
    layout = Layout(size, int(size * 1.6), width // 14, width // 14 + int(size * 2.4))
    max_units = (width - 2 * layout.margin) / size - 1
    picks = rng.sample(topic.texts, k=min(len(topic.texts), rng.randint(3, 6)))
    if kind == "qa_card":
        title = rng.choice(("面试题整理", "高频面试题", "面试真题", "今日份面试题"))
    else:
        title = rng.choice(("要点总结", "收藏备用", "建议收藏", "干货清单"))
    body: list[str] = []
    for n, line in enumerate(picks, start=1):
        body.extend(wrap(f"{n}. {line}", max_units))
    return title, tuple(body), layout


def _fit_height(height: int, layout: Layout, n_lines: int, width: int) -> int:
    needed = layout.top + n_lines * layout.line_height + layout.margin
    while needed + strip_height(width, height) > height:
        height += 120
    return height


def _unb32(text: str) -> int | None:
    value = 0
    for k, ch in enumerate(text):
        digit = _B32.find(ch)
        if digit < 0:
            return None
        value |= digit << (5 * k)
    return value


_IMAGE_STEM = "1040g2sg31"
_VIDEO_STEM = "pre_post/1040g2t0"
_PRE_POST = "notes_pre_post/"


def image_token(seed: int, index: int, image: int, pre_post: bool = False) -> str:
    """CDN token of a picture: the real shape, with the picture's tag inside it."""
    tag = make_tag(seed, index, image)
    token = _IMAGE_STEM + _b32(tag, 10) + _b32(_hash("token", tag), 12)
    return (_PRE_POST if pre_post else "") + token


def parse_image_token(token: str) -> tuple[int, int, int] | None:
    """``(seed, note index, image index)`` named by a sandbox image token, else ``None``."""
    bare = token.removeprefix(_PRE_POST)
    if len(bare) != 32 or not bare.startswith(_IMAGE_STEM):
        return None
    tag = _unb32(bare[10:20])
    if tag is None or split_tag(tag) is None or bare[20:] != _b32(_hash("token", tag), 12):
        return None
    return split_tag(tag)


def video_keys(seed: int, index: int) -> tuple[str, str]:
    """``(origin video key, h264 stream key)`` of a video note."""
    mark = _b32((seed << 20) | index, 8)
    origin = _VIDEO_STEM + mark + _b32(_hash("video", seed, index), 14)
    stream = f"stream/110/258/01e{mark}{_hash('stream', seed, index):016x}_258.mp4"
    return origin, stream


def parse_video_key(key: str) -> tuple[int, int] | None:
    """``(seed, note index)`` named by a sandbox video key or stream key, else ``None``."""
    if key.startswith(_VIDEO_STEM):
        mark = key[len(_VIDEO_STEM) : len(_VIDEO_STEM) + 8]
    elif key.startswith("stream/110/258/01e"):
        mark = key[18:26]
    else:
        return None
    value = _unb32(mark)
    if value is None or len(mark) != 8:
        return None
    seed, index = value >> 20, value & 0xFFFFF
    if seed > MAX_SEED or key not in video_keys(seed, index):
        return None
    return seed, index


def _image(seed: int, index: int, j: int, topic: Topic, kind: str) -> NoteImageSpec:
    rng = _rng("image", seed, index, j)
    width, height = rng.choice(IMAGE_SIZES)
    fmt = rng.choice(FORMATS)
    token = image_token(seed, index, j, pre_post=rng.random() < 0.3)
    tag = make_tag(seed, index, j)
    if kind in ("photo", "video_cover"):
        layout = Layout(0, 0, 0, 0)
        return NoteImageSpec(
            j, token, width, height, fmt, kind, "", (), tag, layout, rng.randrange(1 << 16)
        )
    title, lines, layout = _text_picture(topic, kind, rng, width)
    height = _fit_height(height, layout, len(lines), width)
    return NoteImageSpec(
        j, token, width, height, fmt, kind, title, lines, tag, layout, rng.randrange(1 << 16)
    )


def _reference_images(seed: int) -> tuple[NoteImageSpec, ...]:
    images = []
    width = 1080
    size = 52
    layout = Layout(size, 84, 80, 80 + 130)
    for j, (title, lines) in enumerate(REFERENCE_ROUNDS):
        token = image_token(seed, REFERENCE_INDEX, j)
        height = _fit_height(1440, layout, len(lines), width)
        tag = make_tag(seed, REFERENCE_INDEX, j)
        images.append(
            NoteImageSpec(j, token, width, height, "png", "qa_card", title, lines, tag, layout, 0)
        )
    return tuple(images)


def _topic_ids(tags: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(
        f"{_hash('topic', t) & 0xFFFFFFFF:08x}0000000001{_hash('t2', t) & 0xFFFFFF:06x}"
        for t in tags
    )


def note_id_of(seed: int, index: int, day: int | None = None) -> str:
    """24-hex note id on ``day`` (default today): posting time, a hash, and the index
    masked per seed. A repost (see ``published_at``) gets a new id."""
    if index == REFERENCE_INDEX:
        return REFERENCE_NOTE_ID
    posted = published_at(seed, index, today() if day is None else day)
    mid = _hash("id", seed, index, posted) & 0xFFFFFFFF
    return f"{posted:08x}{mid:08x}{index ^ _index_mask(seed, 'note'):08x}"


@lru_cache(maxsize=131072)
def note_headline(seed: int, index: int) -> tuple[str, tuple[str, ...]]:
    """Title and tags of a note, derived on their own so that search stays cheap."""
    if index == REFERENCE_INDEX:
        return REFERENCE_TITLE, REFERENCE_TAGS
    topic = topic_of(seed, index)
    rng = _rng("headline", seed, index)
    title = rng.choice(topic.titles).format(x=rng.choice(topic.slots))
    others = [t for t in topic.tags if t != topic.core_tag]
    tags = (topic.core_tag, *rng.sample(others, k=rng.randint(2, min(6, len(others)))))
    return title, tags


@dataclass(frozen=True)
class _Core:
    """The day-independent part of a note: its content, final counts, edit delay."""

    spec: NoteSpec  # dated at the epoch, counts final
    finals: dict[str, int]
    styles: dict[str, str]
    edit_s: int  # seconds between posting and last edit (0: never edited)


@lru_cache(maxsize=8192)
def _core(seed: int, index: int) -> _Core:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in 0..{MAX_SEED}")
    if not 0 <= index < MAX_NOTES:
        raise ValueError(f"note index must be in 0..{MAX_NOTES - 1}")
    topic = topic_of(seed, index)
    rng = _rng("note", seed, index)
    user = _user(seed, user_index_of(seed, index))
    finals, styles = _interact_finals(rng)
    raw, expected, exact = _shown(finals, styles)
    if index == REFERENCE_INDEX:
        time_s = int(REFERENCE_NOTE_ID[:8], 16)
        tags = REFERENCE_TAGS
        title = REFERENCE_TITLE
        desc = REFERENCE_DESC + " ".join(f"#{t}[话题]#" for t in tags)
        images = _reference_images(seed)
        spec = NoteSpec(
            index, REFERENCE_NOTE_ID, _xsec("note", seed, REFERENCE_NOTE_ID), title, desc, "normal",
            topic.key, user, tags, time_s * 1000, time_s * 1000 + 3_600_000, "北京",
            raw, expected, exact, images, None, _topic_ids(tags),
        )  # fmt: skip
        return _Core(spec, finals, styles, 3600)
    title, tags = note_headline(seed, index)
    desc = rng.choice(topic.descs) + "\n" + " ".join(f"#{t}[话题]#" for t in tags)
    is_video = rng.random() < topic.video_rate
    if is_video:
        images: tuple[NoteImageSpec, ...] = (_image(seed, index, 0, topic, "video_cover"),)
        vrng = _rng("video", seed, index)
        origin_key, stream_key = video_keys(seed, index)
        video = NoteVideoSpec(
            origin_video_key=origin_key,
            stream_key=stream_key,
            width=720,
            height=1280,
            duration=vrng.randint(8, 300),
        )
    else:
        count = rng.choice((1, 1, 2, 3, 3, 4, 5, 6, 9))
        images = tuple(
            _image(seed, index, j, topic, rng.choice(topic.image_kinds)) for j in range(count)
        )
        video = None
    edit_s = rng.randrange(86400 * 30) if rng.random() < 0.3 else 0
    spec = NoteSpec(
        index=index,
        note_id="",
        xsec_token="",
        title=title,
        desc=desc,
        type="video" if is_video else "normal",
        topic=topic.key,
        user=user,
        tags=tags,
        time=0,
        last_update_time=0,
        ip_location=rng.choice(IP_LOCATIONS),
        interact=raw,
        interact_expected=expected,
        interact_exact=exact,
        images=images,
        video=video,
        tag_ids=_topic_ids(tags),
    )
    return _Core(spec, finals, styles, edit_s)


@lru_cache(maxsize=16384)
def generate_note(seed: int, index: int, day: int | None = None) -> NoteSpec:
    """Note ``index`` of ``seed`` as the site shows it on ``day`` (default: today),
    independent of any dataset size: posting date, id and counts of that day."""
    if day is None:
        return generate_note(seed, index, today())
    core = _core(seed, index)
    if index == REFERENCE_INDEX:
        return core.spec
    from sandbox import threads  # threads builds on this module's users and hashes

    posted = published_at(seed, index, day)
    age = (day * DAY - posted) / DAY
    counts = {k: grown(v, age) for k, v in core.finals.items()}
    counts["comments"] = threads.visible_count(seed, index, day)
    raw, expected, exact = _shown(counts, core.styles)
    note_id = note_id_of(seed, index, day)
    edited = posted + core.edit_s
    return dataclasses.replace(
        core.spec,
        note_id=note_id,
        xsec_token=_xsec("note", seed, note_id),
        time=posted * 1000,
        last_update_time=(edited if edited < day * DAY else posted) * 1000,
        interact=raw,
        interact_expected=expected,
        interact_exact=exact,
    )


# Hostile notes (issue 18's chaos run): a dataset can make some of its notes hostile.
HOSTILE_KINDS = ("many_images", "lone_surrogate", "huge_desc")
HOSTILE_IMAGES = 300  # many_images: entries in its image list (real notes: at most 18)
HOSTILE_DESC_BYTES = 1 << 20  # huge_desc: a megabyte of UTF-8 text


@lru_cache(maxsize=64)
def hostile_note(seed: int, index: int, day: int, kind: str, size: int) -> NoteSpec:
    """Note ``index`` of a dataset of ``size`` notes on ``day``, made hostile:

    - ``many_images``: its own pictures, then other notes' (all served by the CDN, each
      with its own drawn tag), ``HOSTILE_IMAGES`` entries in all, and says so in its title;
    - ``lone_surrogate``: half an emoji (a lone UTF-16 surrogate) in the title and the
      desc, as a broken client writes it; the state script carries it JSON-escaped;
    - ``huge_desc``: the desc repeated to ``HOSTILE_DESC_BYTES`` of UTF-8.
    """
    spec = generate_note(seed, index, day)
    if kind == "many_images":
        images = list(spec.images)
        donor = index
        while len(images) < HOSTILE_IMAGES and donor - index < size:
            donor += 1
            if donor % size not in (index, REFERENCE_INDEX):
                images += _core(seed, donor % size).spec.images
        title = f"{spec.title}（{HOSTILE_IMAGES} 张图）"
        return dataclasses.replace(spec, title=title, images=tuple(images[:HOSTILE_IMAGES]))
    if kind == "lone_surrogate":
        title = spec.title[:2] + "\ud83d" + spec.title[2:]
        return dataclasses.replace(spec, title=title, desc=spec.desc + " \ude00")
    if kind == "huge_desc":
        unit = spec.desc + "\n"
        repeat = HOSTILE_DESC_BYTES // len(unit.encode()) + 1
        desc = (unit * repeat).encode()[:HOSTILE_DESC_BYTES].decode(errors="ignore")
        return dataclasses.replace(spec, desc=desc)
    raise ValueError(f"unknown hostile kind {kind!r}; known: {', '.join(HOSTILE_KINDS)}")


def lookup_image_text(tag: int) -> str | None:
    """Ground-truth text drawn on the sandbox picture carrying ``tag`` (``""`` for a photo).

    Works without any shared state: the tag holds the seed and the indices.
    """
    parts = split_tag(tag)
    if parts is None:
        return None
    seed, index, image = parts
    note = _core(seed, index).spec
    if image >= len(note.images):
        return None
    return note.images[image].text


def _candidate_topics(keyword: str) -> list[str]:
    chars = set(keyword)
    return [t.key for t in TOPICS if chars <= t.charset]


def _matches(seed: int, index: int, keyword: str) -> bool:
    title, tags = note_headline(seed, index)
    return keyword in title or any(keyword in t for t in tags)


class Dataset:
    """The first ``size`` notes of ``seed``, with search, users and deleted notes.

    Everything dated is seen on a day: methods take ``day`` (days since 1970-01-01 UTC)
    and default to ``self.today()``, the current UTC day plus ``day_offset`` (the site's
    ``day_offset`` knob sets it, so a test can show "tomorrow" without faketime).
    """

    def __init__(self, seed: int = 1, size: int = 1000, day_offset: int = 0) -> None:
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be in 0..{MAX_SEED}")
        if not REFERENCE_INDEX < size <= MAX_NOTES:
            raise ValueError(f"size must be in {REFERENCE_INDEX + 1}..{MAX_NOTES}")
        self.seed = seed
        self.size = size
        self.day_offset = day_offset
        self.hostile: dict[int, str] = {}  # note index -> HOSTILE_KINDS entry (site knob)
        self.reference_index = REFERENCE_INDEX
        self._search_cache: dict[tuple[str, int], tuple[str, ...]] = {}

    def __len__(self) -> int:
        return self.size

    def today(self) -> int:
        """The day this dataset shows by default (UTC day number plus ``day_offset``)."""
        return today(self.day_offset)

    def _day(self, day: int | None) -> int:
        return self.today() if day is None else day

    def note(self, index: int, day: int | None = None) -> NoteSpec:
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self._spec(index, self._day(day))

    def _spec(self, index: int, day: int) -> NoteSpec:
        kind = self.hostile.get(index)
        if kind is None:
            return generate_note(self.seed, index, day)
        return hostile_note(self.seed, index, day, kind, self.size)

    def index_of(self, note_id: str, day: int | None = None) -> int | None:
        """Index of a note id of this dataset on ``day``, ``None`` if it is not one (an
        id of an earlier posting of a reposted note is not one any more)."""
        if note_id == REFERENCE_NOTE_ID:
            return REFERENCE_INDEX
        if len(note_id) != 24:
            return None
        try:
            index = int(note_id[16:], 16) ^ _index_mask(self.seed, "note")
        except ValueError:
            return None
        if not 0 <= index < self.size or index == REFERENCE_INDEX:
            return None
        return index if note_id_of(self.seed, index, self._day(day)) == note_id else None

    def note_by_id(self, note_id: str, day: int | None = None) -> NoteSpec | None:
        day = self._day(day)
        index = self.index_of(note_id, day)
        return None if index is None else self._spec(index, day)

    def reposted(self, index: int, day_a: int, day_b: int) -> bool:
        """Whether note ``index`` was posted again between ``day_a`` and ``day_b`` (its id,
        date and counts start over): pick notes for which this is false when a test
        compares two days."""
        return published_at(self.seed, index, day_a) != published_at(self.seed, index, day_b)

    def is_deleted(self, index: int) -> bool:
        """About 1 % of the notes are deleted (never the reference note)."""
        return index != REFERENCE_INDEX and _hash("gone", self.seed, index) % 100 == 0

    def deleted_ids(
        self, indices: Iterable[int] | None = None, day: int | None = None
    ) -> list[str]:
        """Ids of the deleted notes among ``indices`` (default: the whole dataset)."""
        chosen = range(self.size) if indices is None else indices
        day = self._day(day)
        return [note_id_of(self.seed, i, day) for i in chosen if self.is_deleted(i)]

    def search(self, keyword: str, day: int | None = None) -> list[str]:
        """Ids of the live notes whose title or a tag contains ``keyword``, in result
        order (dataset order). Deleted notes are not listed (only reachable by URL).
        Only the headlines of topics that can contain the keyword are generated."""
        keyword = keyword.strip()
        if not keyword:
            return []
        day = self._day(day)
        cached = self._search_cache.get((keyword, day))
        if cached is None:
            topics = set(_candidate_topics(keyword))
            cycle = _cycle(self.seed)
            positions = [p for p, key in enumerate(cycle) if key in topics]
            indices = sorted(
                {
                    i
                    for p in positions
                    for i in range(p, self.size, len(cycle))
                    if i != REFERENCE_INDEX
                }
                | {REFERENCE_INDEX}
            )
            cached = tuple(
                note_id_of(self.seed, i, day)
                for i in indices
                if _matches(self.seed, i, keyword) and not self.is_deleted(i)
            )
            if len(self._search_cache) > 512:
                self._search_cache.clear()
            self._search_cache[(keyword, day)] = cached
        return list(cached)

    def user_index(self, user_id: str) -> int | None:
        if len(user_id) != 24:
            return None
        try:
            index = int(user_id[16:], 16) ^ _index_mask(self.seed, "user")
        except ValueError:
            return None
        notes = [i for i in user_note_indices(self.seed, index) if i < self.size]
        if not notes or _user(self.seed, index).user_id != user_id:
            return None
        return index

    def user(self, user_id: str) -> NoteUserSpec | None:
        index = self.user_index(user_id)
        return None if index is None else _user(self.seed, index)

    def user_notes(self, user_id: str, day: int | None = None) -> list[str]:
        """Ids of a user's live notes, newest first (the profile's order)."""
        index = self.user_index(user_id)
        if index is None:
            return []
        day = self._day(day)
        owned = [
            i
            for i in user_note_indices(self.seed, index)
            if i < self.size and not self.is_deleted(i)
        ]
        owned.sort(key=lambda i: (-published_at(self.seed, i, day), i))
        return [note_id_of(self.seed, i, day) for i in owned]

    def users(self) -> list[str]:
        """Ids of every user with at least one note in this dataset."""
        blocks = (self.size + BLOCK - 1) // BLOCK
        table = _slot_table(self.seed)
        out = []
        for block in range(blocks):
            for slot in range(len(USER_SLOTS)):
                first = block * BLOCK + table.index(slot)
                if first < self.size:
                    out.append(_user(self.seed, block * len(USER_SLOTS) + slot).user_id)
        return out

    # -- comments, profiles, short links ------------------------------------------------
    def comments(self, note_id: str, day: int | None = None) -> list[CommentSpec]:
        """The thread of a note on ``day``: its top-level comments in the order the
        comment API pages them (most liked first), each with ``.replies`` (oldest first).
        Every status is included (see ``sandbox.threads``); ``[]`` for an unknown id."""
        from sandbox import threads

        day = self._day(day)
        index = self.index_of(note_id, day)
        if index is None:
            return []
        return threads.thread_on(self.seed, index, day)

    def profile(self, user_id: str, day: int | None = None) -> ProfileSpec | None:
        """A creator's profile with its counts on ``day`` (see ``sandbox.profiles``)."""
        from sandbox import profiles

        index = self.user_index(user_id)
        if index is None:
            return None
        return profiles.profile_on(self, index, self._day(day))

    def short_link(self, note_id: str) -> str | None:
        """Code of a note's share link (``{short_url}/a/{code}``), ``None`` if unknown.
        Codes name the note index, so a reposted note keeps its code."""
        index = self.index_of(note_id)
        if index is None:
            return None
        value = ((index ^ _short_mask(self.seed)) << 12) | (
            _hash("short", self.seed, index) & 0xFFF
        )
        return "".join(_B62[(value // 62**k) % 62] for k in range(7))

    def resolve_short(self, code: str, day: int | None = None) -> NoteSpec | None:
        """The note a share-link code points at on ``day``, ``None`` for an unknown code."""
        if len(code) != 7 or any(ch not in _B62 for ch in code):
            return None
        value = sum(_B62.index(ch) * 62**k for k, ch in enumerate(code))
        index = (value >> 12) ^ _short_mask(self.seed)
        if (
            not 0 <= index < self.size
            or (value & 0xFFF) != _hash("short", self.seed, index) & 0xFFF
        ):
            return None
        return generate_note(self.seed, index, self._day(day))
