"""The one NoteItem factory of the tests and benchmarks, with image and user helpers.

``make_note(i, **overrides)`` builds note number ``i``: a deterministic 24-hex note id,
a page URL with its xsec token, a Chinese title and body, a user out of seven, two CDN
images, interaction counts and timestamps before :data:`T0`. Any field can be
overridden; the parts have their own helpers:

- ``make_user(i, **overrides)`` → :class:`NoteUser`
- ``make_image(i, k, **overrides)`` → :class:`NoteImage` (the ``k``-th picture of note ``i``)
- ``make_images(i, count, **overrides)`` → that many
- ``note_from_spec(spec, **overrides)`` → the sandbox dataset's note ``spec`` as an item
  (content fields from the spec, no images unless given)
- ``enrichment(status, **overrides)`` → an :class:`EnrichmentState` (a done Gemini
  result unless told otherwise)
- ``make_comment(i, k, **overrides)`` → :class:`CommentItem` ``k`` of note ``i``: a
  top-level comment, or with ``root=`` a reply of that top-level comment id
- ``make_profile(i, **overrides)`` → :class:`UserItem`: the profile of ``make_user(i)``
  with fans ``1000 + i`` (shown "1.0万"-style above 10,000), two tags, fetched at ``T0``

``project_crawler(settings)`` is the one test crawler: the project's knobs at their
declared defaults with ``settings`` on top, none of the project's components.
``build_storage(uri, db, spool, clock)`` is a :class:`MongoStoragePipeline` on such a
crawler with an injected :class:`Clock` (wall and monotonic, advanced by hand) and no
sleeping; ``mongo_settings(**overrides)`` the project's MongoSettings with fields replaced;
``dead_pid()`` the pid of a process that has exited (a run killed hard).

Fields the pipelines fill later (``fetched_at``, ``change``, ``content_hash``,
``enrichment``) are ``None``, ``"new"``, ``None``, ``None`` by default.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.crawler import Crawler
from scrapy.utils.project import get_project_settings
from scrapy.utils.test import get_crawler

from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from crawler.core.items import (
    CommentItem,
    CommentTarget,
    CountText,
    NoteImage,
    NoteInteract,
    NoteItem,
    NoteUser,
    UserInteractions,
    UserItem,
    UserTag,
)
from crawler.settings import knob_defaults
from pipelines.mongo import MongoSettings
from pipelines.storage import MongoStoragePipeline

if TYPE_CHECKING:
    from sandbox.dataset import NoteSpec

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
USERS = 7  # notes share this many authors (note i is by user i % USERS)


def note_id(i: int) -> str:
    """The id of note ``i``: 24 hex digits, as XHS note ids are."""
    return f"{i:024x}"


def make_user(i: int = 0, **overrides: Any) -> NoteUser:
    """User ``i``: ``u<i>`` called ``用户<i>``, no avatar."""
    values: dict[str, Any] = {"user_id": f"u{i}", "nickname": f"用户{i}", "avatar": None}
    values.update(overrides)
    return NoteUser(**values)


def make_image(i: int = 0, k: int = 0, **overrides: Any) -> NoteImage:
    """Picture ``k`` of note ``i`` as parsing leaves it: a signed CDN URL, 1080x1440,
    no file yet (status ``pending``). Override ``status``, ``path``, ``sha256`` … for a
    stored one."""
    values: dict[str, Any] = {
        "url": f"http://sns-webpic-qc.xhscdn.com/202601050800/{i:032x}/spectrum/img{i}-{k}"
        "!nd_dft_wlteh_webp_3",
        "width": 1080,
        "height": 1440,
    }
    values.update(overrides)
    return NoteImage(**values)


def make_images(i: int = 0, count: int = 2, **overrides: Any) -> list[NoteImage]:
    """The first ``count`` pictures of note ``i`` (same ``overrides`` for each)."""
    return [make_image(i, k, **overrides) for k in range(count)]


def enrichment(status: str = "done", **overrides: Any) -> EnrichmentState:
    """An enrichment state; ``done`` comes with a Gemini model and a short result."""
    values: dict[str, Any] = {"status": EnrichmentStatus(status)}
    if status == "done":
        values |= {
            "backend": "gemini",
            "model": "gemini-2.5-flash-lite",
            "result": {"summary": "装备清单与检查要点。", "key_points": ["帐篷", "睡袋"]},
        }
    values.update(overrides)
    return EnrichmentState(**values)


def project_crawler(
    settings: Mapping[str, Any] | None = None, spidercls: type | None = None
) -> Crawler:
    """A test crawler with the project's knobs at their declared defaults
    (``crawler.settings.knob_defaults``, whatever the environment says) under
    ``settings``, but none of the project's components (pipelines, extensions, add-ons,
    handlers): the unit under test is built by hand. Scrapy's own settings stay at
    Scrapy's test defaults."""
    return get_crawler(spidercls, settings_dict={**knob_defaults, **(settings or {})})


class Clock:
    """Injectable wall clock and monotonic clock, advanced by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


async def no_sleep(_seconds: float) -> None:
    return None


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def mongo_settings(**overrides: Any) -> MongoSettings:
    """The project's MongoSettings with some fields replaced."""
    return dataclasses.replace(MongoSettings.from_settings(get_project_settings()), **overrides)


def build_storage(
    uri: str, db_name: str, spool: Path, clock: Clock | None = None, **settings: Any
) -> MongoStoragePipeline:
    """The storage pipeline on a :func:`project_crawler` (run id ``run-test``) writing to
    ``uri``/``db_name`` with its spool at ``spool``; ``settings`` go on top."""
    crawler = project_crawler(
        {
            "MONGO_URI": uri,
            "MONGO_DATABASE": db_name,
            "MONGO_SPOOL_PATH": str(spool),
            "CRAWL_RUN_ID": "run-test",
            **settings,
        }
    )
    clock = clock or Clock()
    return MongoStoragePipeline(
        crawler,
        MongoSettings.from_settings(crawler.settings),
        clock=clock,
        monotonic=clock.monotonic,
        sleep=no_sleep,
    )


def make_note(i: int = 0, **overrides: Any) -> NoteItem:
    """Note number ``i`` (see the module docstring); ``overrides`` replace fields (the
    default URL follows an overridden ``note_id``)."""
    nid = overrides.get("note_id") or note_id(i)
    values: dict[str, Any] = {
        "note_id": nid,
        "url": f"https://www.xiaohongshu.com/explore/{nid}?xsec_token=AB{i}",
        "xsec_token": f"AB{i}",
        "title": f"笔记 {i}",
        "desc": f"正文 {i} #露营[话题]#",
        "type": "normal",
        "user": make_user(i % USERS),
        "tags": ["露营", f"tag{i % 5}"],
        "published_at": T0 - timedelta(days=i),
        "updated_at": T0 - timedelta(days=i, hours=-1),
        "ip_location": "上海",
        "interact": NoteInteract(
            liked=i, collected=2 * i, comments=3, shares=1, raw={"liked": str(i)}
        ),
        "images": make_images(i),
        "video": None,
        "source": "page",
        "fetched_at": None,  # the storage pipeline's clock is the crawl time
        "found_via": "keyword:露营",
        "change": "new",
        "enrichment": None,
    }
    values.update(overrides)
    return NoteItem(**values)


def comment_id(i: int, k: int) -> str:
    """The id of comment ``k`` of note ``i``: 24 hex digits."""
    return f"c{i:011x}{k:012x}"


def make_comment(
    i: int = 0, k: int = 0, *, root: str | None = None, **overrides: Any
) -> CommentItem:
    """Comment ``k`` of note ``i`` by user ``c<k>``, ``k`` likes, written at ``T0``;
    with ``root`` a reply of that comment (answering it)."""
    values: dict[str, Any] = {
        "comment_id": comment_id(i, k),
        "note_id": note_id(i),
        "root_comment_id": root,
        "target_comment": None if root is None else CommentTarget(root, make_user(1)),
        "user": make_user(user_id=f"c{k}", nickname=f"读者{k}"),
        "content": f"评论 {k}",
        "at_users": [],
        "pictures": [],
        "like_count": CountText(k, str(k)),
        "created_at": T0 - timedelta(hours=k),
        "ip_location": "广东",
        "status": 0,
        "is_author": False,
        "show_tags": [],
        "reply_count": CountText(0, "0") if root is None else None,
        "found_via": "comment_page" if root is None else "reply_page",
    }
    values.update(overrides)
    return CommentItem(**values)


def note_from_spec(spec: NoteSpec, **overrides: Any) -> NoteItem:
    """Sandbox note ``spec`` (:mod:`sandbox.dataset`) as an item: its id, token, text,
    author, tags, times and place; no interaction counts, no images (pass ``images=``),
    no video; ``found_via`` and ``change`` unset."""
    values: dict[str, Any] = {
        "url": f"http://sandbox.invalid/explore/{spec.note_id}",
        "xsec_token": spec.xsec_token,
        "title": spec.title,
        "desc": spec.desc,
        "type": spec.type,
        "user": make_user(user_id=spec.user.user_id, nickname=spec.user.nickname),
        "tags": list(spec.tags),
        "published_at": datetime.fromtimestamp(spec.time / 1000, UTC),
        "updated_at": datetime.fromtimestamp(spec.last_update_time / 1000, UTC),
        "ip_location": spec.ip_location,
        "interact": NoteInteract(),
        "images": [],
        "found_via": None,
        "change": None,
        **overrides,
    }
    return make_note(note_id=spec.note_id, **values)


def make_profile(i: int = 0, *, fans: int | None = None, **overrides: Any) -> UserItem:
    """The profile of user ``i`` (``u<i>``) as the parser leaves it, fetched at ``T0``:
    ``fans`` (default ``1000 + i``) with its shown text, 20 follows, two tags."""
    count = 1000 + i if fans is None else fans
    shown = str(count) if count < 10000 else f"{count / 10000:.1f}万"
    values: dict[str, Any] = {
        "user_id": f"u{i}",
        "red_id": str(100000 + i),
        "nickname": f"用户{i}",
        "desc": "分享日常",
        "gender": "female",
        "ip_location": "上海",
        "avatar": None,
        "tags": [UserTag("location", "上海"), UserTag("profession", "设计师")],
        "interactions": UserInteractions(
            follows=CountText(20, "20"),
            fans=CountText(count, shown),
            likes_and_collects=CountText(5000 + i, str(5000 + i)),
        ),
        "fetched_at": T0,
        "notes_seen": 3,
    }
    values.update(overrides)
    return UserItem(**values)
