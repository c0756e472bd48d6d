"""The sandbox site: an aiohttp app for the site and a second one for the CDN origin.

``SiteServer`` runs both in their own event loop on a background thread, so tests and
tools use it from synchronous code::

    with SiteServer(seed=1, notes=200, port=0) as site:
        site.url, site.cdn_url, site.dataset
        site.control(captcha_threshold=5, captcha_window=60)
        site.stats()  # {"note_200": 3, "note_ok": 3, "note_302": 1, "cdn_ok": 9, ...}

Fault knobs are the same through ``control()``, ``POST /_sandbox/control`` and the CLI.

A third origin, ``site.short_url``, is the share-link host (xhslink.com's role):
``GET /a/<code>`` answers 302 to the note's ``/discovery/item/<id>`` URL with its
``xsec_token`` and ``xsec_source=app_share``; an unknown code answers 404.
``site.short_link_url(note_id)`` and ``site.share_text(note_id)`` give a note's link and
the app's share text around it.

Why one module of ~800 lines: every route of the three origins goes through the same
knobs, counters and fault middleware of :class:`SandboxSite`, and each route is a few
lines over the builders of pages.py, shapes.py, signing.py and pictures.py; the
sections (knobs and stats, faults, site and API routes, comments, short links, CDN,
apps) stay apart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import secrets
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from sandbox.dataset import (
    HOSTILE_KINDS,
    Dataset,
    NoteSpec,
    parse_image_token,
    parse_video_key,
)
from sandbox.serving import LoopThread
from sandbox.site import pages, pictures, shapes, signing
from sandbox.site.jsliteral import escape_lone_surrogates
from sandbox.threads import CommentSpec

DEFAULT_COOKIE = {"a1": "sandbox", "web_session": "sandbox"}
SIGNATURE_REJECTED = {"code": -1, "success": False}
LOGIN_EXPIRED = {"code": -100, "success": False, "msg": "登录已过期"}
XSEC_INVALID = {"code": 300017, "success": False, "msg": "访问链接异常", "data": {}}
NOTE_GONE = (-510000, "笔记不存在")
NOTE_UNKNOWN = (-510001, "当前内容无法展示")
# Routes that count towards the per-cookie captcha threshold.
_GUARDED = {"note", "search_page", "search_api", "profile", "user_posted_api", "feed_api",
            "comment_page_api", "comment_sub_api"}  # fmt: skip
_SIGNED_API = {"search_api", "user_posted_api", "feed_api", "comment_page_api", "comment_sub_api"}
_PAGE_SIZE = 20
_POSTED_PAGE = 30
_COMMENT_PAGE = 10  # top-level comments per /comment/page answer
_REPLY_PAGE = 10  # most replies per /comment/sub/page answer (``num``)
VIEWER_ID = "5f0a1b2c000000000101d3e4"  # the logged-in sandbox user (``data.user_id``)

Clock = Callable[[], float]
# Request key holding the outcome label counted in stats when the status alone is not
# enough (a 200 page for a deleted note is "gone", a 200 JSON -100 is "login_required").
OUTCOME = web.RequestKey("sandbox_outcome", str)


def _default_outcome(status: int) -> str:
    if status == 461:
        return "captcha"
    if status == 406:
        return "signature_rejected"
    if status >= 500:
        return "error"
    if status >= 400:
        return "not_found" if status == 404 else "bad_request"
    return "redirect" if status >= 300 else "ok"


@dataclasses.dataclass(frozen=True)
class Knobs:
    """Fault knobs. ``captcha_threshold`` 0 means off."""

    error_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    truncated_image_rate: float = 0.0
    captcha_threshold: int = 0
    captcha_window: float = 60.0
    signature_version: int = 1
    # Rotate the signature right after this many more answered listing calls (0: off):
    # the page's next call, signed by the script it already has, is then rejected.
    rotate_after_calls: int = 0
    expire_cookies: bool = False
    deleted: frozenset[str] = frozenset()
    # Days added to the current UTC day for everything dated (note dates, counts,
    # threads, profiles): 1 shows tomorrow's site without faketime.
    day_offset: int = 0
    # Hostile notes (issue 18): (note index, kind) pairs, kinds in dataset.HOSTILE_KINDS.
    hostile: tuple[tuple[int, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["deleted"] = sorted(self.deleted)
        out["hostile"] = {str(index): kind for index, kind in self.hostile}
        return out


def apply_knobs(knobs: Knobs, changes: dict[str, Any]) -> Knobs:
    """Validated update. ``rotate_signature=True`` bumps the signature version (an int sets
    it); ``deleted`` replaces the set of extra deleted note ids."""
    updates: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "rotate_signature":
            if value is True:
                updates["signature_version"] = (
                    updates.get("signature_version", knobs.signature_version) + 1
                )
            elif isinstance(value, int) and not isinstance(value, bool) and value > 0:
                updates["signature_version"] = value
            elif value not in (False, None):
                raise ValueError("rotate_signature takes true or a version number")
        elif name == "deleted":
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError("deleted takes a list of note ids")
            updates["deleted"] = frozenset(value)
        elif name in ("error_rate", "slow_rate", "truncated_image_rate"):
            rate = float(value)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
            updates[name] = rate
        elif name in ("slow_seconds", "captcha_window"):
            if float(value) < 0:
                raise ValueError(f"{name} must be >= 0")
            updates[name] = float(value)
        elif name in ("captcha_threshold", "signature_version", "rotate_after_calls"):
            floor = 1 if name == "signature_version" else 0
            if int(value) < floor:
                raise ValueError(f"{name} must be >= {floor}")
            updates[name] = int(value)
        elif name == "expire_cookies":
            updates[name] = bool(value)
        elif name == "hostile":
            pairs = sorted((int(index), str(kind)) for index, kind in dict(value).items())
            unknown = {kind for _, kind in pairs} - set(HOSTILE_KINDS)
            if unknown:
                raise ValueError(f"hostile kinds are {', '.join(HOSTILE_KINDS)}, not {unknown}")
            updates[name] = tuple(pairs)
        elif name == "day_offset":
            if isinstance(value, bool) or int(value) != value:
                raise ValueError("day_offset takes a whole number of days")
            updates[name] = int(value)
        else:
            raise ValueError(f"unknown knob {name!r}")
    return dataclasses.replace(knobs, **updates)


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=escape_lone_surrogates(json.dumps(body, ensure_ascii=False)),
        content_type="application/json",
    )


def _html(text: str, status: int = 200) -> web.Response:
    # A lone surrogate (a hostile note's half emoji) has no UTF-8 form: "?" in the markup
    # (the state script carries it JSON-escaped, see jsliteral).
    body = text.encode("utf-8", "replace")
    return web.Response(status=status, body=body, content_type="text/html", charset="utf-8")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


class SandboxSite:
    """Handlers and shared state of both origins (one instance per server)."""

    def __init__(self, dataset: Dataset, knobs: Knobs, clock: Clock) -> None:
        self.dataset = dataset
        self.clock = clock
        self.urls = shapes.Urls("", "")
        self.pictures = pictures.PictureCache()
        self._knobs = knobs
        self._lock = threading.Lock()
        self._rng = random.Random(dataset.seed)
        self._stats: Counter[str] = Counter()
        self._windows: dict[str, deque[float]] = {}
        dataset.day_offset = knobs.day_offset
        dataset.hostile = dict(knobs.hostile)

    # -- knobs and stats -------------------------------------------------------------
    @property
    def knobs(self) -> Knobs:
        return self._knobs

    def control(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._knobs = apply_knobs(self._knobs, changes)
            self.dataset.day_offset = self._knobs.day_offset
            self.dataset.hostile = dict(self._knobs.hostile)
            if "captcha_threshold" in changes or "captcha_window" in changes:
                self._windows.clear()
            return self._knobs.as_dict()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def _listing_answered(self) -> None:
        """Counts an answered listing call down toward a pending rotation."""
        with self._lock:
            left = self._knobs.rotate_after_calls
            if left:
                self._knobs = dataclasses.replace(
                    self._knobs,
                    rotate_after_calls=left - 1,
                    signature_version=self._knobs.signature_version + (left == 1),
                )

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.clear()

    def _count(self, request: web.Request, route: str, status: int) -> None:
        outcome = request.get(OUTCOME) or _default_outcome(status)
        with self._lock:
            self._stats[f"{route}_{status}"] += 1
            self._stats[f"{route}_{outcome}"] += 1
            self._stats[f"{route}_total"] += 1

    def _chance(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    # -- faults ------------------------------------------------------------------------
    def _captcha_key(self, request: web.Request) -> str:
        cookies = request.cookies
        return cookies.get("web_session") or cookies.get("a1") or f"ip:{request.remote}"

    def _captcha(self, request: web.Request) -> web.Response | None:
        knobs = self._knobs
        if knobs.captcha_threshold <= 0:
            return None
        now = self.clock()
        key = self._captcha_key(request)
        with self._lock:
            window = self._windows.setdefault(key, deque())
            while window and window[0] <= now - knobs.captcha_window:
                window.popleft()
            if len(window) >= knobs.captcha_threshold:
                blocked = True
            else:
                window.append(now)
                blocked = False
        if not blocked:
            return None
        headers = {
            "Verifytype": "102",
            "Verifyuuid": str(uuid.uuid4()),
        }
        body = {"code": 461, "success": False, "msg": "安全验证", "data": {}}
        return web.Response(
            status=461,
            headers=headers,
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
        )

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route = request.match_info.route.name or "unknown"
        if route.startswith("sandbox_"):  # the control plane is not site traffic
            return await handler(request)
        try:
            response = await self._with_faults(request, route, handler)
        except web.HTTPException as exc:
            self._count(request, route, exc.status)
            raise
        self._count(request, route, response.status)
        return response

    async def _with_faults(
        self,
        request: web.Request,
        route: str,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if route == "unknown":
            return await handler(request)
        if route in _SIGNED_API:
            body = await request.text() if request.method == "POST" else ""
            if not self._signed(request, body):
                # The gateway checks the signature before any backend can fail: a
                # stale signature gets its 406 whatever the random faults would do.
                return _json(SIGNATURE_REJECTED, status=406)
        knobs = self._knobs
        if self._chance(knobs.slow_rate):
            await asyncio.sleep(knobs.slow_seconds)
        if self._chance(knobs.error_rate):
            with self._lock:
                status = self._rng.choice((500, 502, 503))
            return web.Response(status=status, text="server error")
        if route in _GUARDED:
            blocked = self._captcha(request)
            if blocked is not None:
                return blocked
        return await handler(request)

    # -- helpers -----------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    def _logged_in(self, request: web.Request) -> bool:
        if self._knobs.expire_cookies:
            return False
        return all(request.cookies.get(k) == v for k, v in DEFAULT_COOKIE.items())

    def _signed(self, request: web.Request, body: str) -> bool:
        headers = {k.lower(): v for k, v in request.headers.items()}
        return signing.verify(
            self.dataset.seed, self._knobs.signature_version, request.raw_path, body, headers
        )

    def _is_deleted(self, note: NoteSpec) -> bool:
        return self.dataset.is_deleted(note.index) or note.note_id in self._knobs.deleted

    def _signing_script(self) -> str:
        return signing.signing_script(self.dataset.seed, self._knobs.signature_version)

    def _login_redirect(self, request: web.Request) -> web.Response:
        request[OUTCOME] = "login_required"
        return _redirect("/login?redirectPath=" + quote(self.urls.site + request.path_qs, safe=""))

    # -- site routes -------------------------------------------------------------------
    async def home(self, request: web.Request) -> web.Response:
        notes = [
            self.dataset.note(i)
            for i in range(min(len(self.dataset), 40))
            if not self._is_deleted(self.dataset.note(i))
        ][:20]
        return _html(pages.home_page(notes, self.urls, shapes.base_state(self._now_ms())))

    async def root(self, request: web.Request) -> web.Response:
        return _redirect("/explore")

    async def login(self, request: web.Request) -> web.Response:
        state = shapes.base_state(self._now_ms())
        state["user"]["loggedIn"] = False
        state["login"]["showLogin"] = True
        return _html(pages.login_page(request.query.get("redirectPath", ""), state))

    async def note(self, request: web.Request) -> web.Response:
        note_id = request.match_info["note_id"]
        note = self.dataset.note_by_id(note_id)
        now = self._now_ms()
        if note is None:
            state = shapes.gone_page_state(note_id, *NOTE_UNKNOWN, now)
            return _html(pages.gone_page(state), status=404)
        if request.query.get("xsec_token") != note.xsec_token:
            request[OUTCOME] = "xsec_invalid"
            return _redirect("/explore")
        if self._is_deleted(note):
            request[OUTCOME] = "gone"
            return _html(pages.gone_page(shapes.gone_page_state(note_id, *NOTE_GONE, now)))
        state = shapes.note_page_state(note, self.urls, now)
        return _html(pages.note_page(note, state, self.urls, self._signing_script()))

    async def search_page(self, request: web.Request) -> web.Response:
        if not self._logged_in(request):
            return self._login_redirect(request)
        keyword = request.query.get("keyword", "")
        state = shapes.search_page_state(keyword, self._now_ms())
        search_id = secrets.token_hex(10)
        return _html(pages.search_page(keyword, state, self._signing_script(), search_id))

    async def profile(self, request: web.Request) -> web.Response:
        if not self._logged_in(request):
            return self._login_redirect(request)
        user_id = request.match_info["user_id"]
        user = self.dataset.user(user_id)
        now = self._now_ms()
        if user is None:
            state = shapes.base_state(now)
            state["user"]["userPageData"] = {
                "result": {"code": -1, "message": "用户不存在", "success": False}
            }
            return _html(pages.profile_page(user_id, "", state, self._signing_script()), status=404)
        day = self.dataset.today()
        ids = [i for i in self.dataset.user_notes(user_id, day) if i not in self._knobs.deleted]
        first = [self.dataset.note_by_id(i, day) for i in ids[:_POSTED_PAGE]]
        profile = self.dataset.profile(user_id, day)
        assert profile is not None  # the user exists
        state = shapes.profile_state(
            profile, [n for n in first if n], len(ids) > _POSTED_PAGE, self.urls, now
        )
        return _html(pages.profile_page(user_id, user.nickname, state, self._signing_script()))

    def _session_refusal(self, request: web.Request) -> web.Response | None:
        """What the real API answers a signed call without a session (unsigned calls
        are refused before, in :meth:`_with_faults`)."""
        if not self._logged_in(request):
            request[OUTCOME] = "login_required"
            return _json(LOGIN_EXPIRED)
        return None

    async def search_api(self, request: web.Request) -> web.Response:
        body = await request.text()
        if (refusal := self._session_refusal(request)) is not None:
            return refusal
        try:
            query = json.loads(body)
            keyword = str(query["keyword"])
            page = max(1, int(query.get("page", 1)))
            size = min(_PAGE_SIZE, max(1, int(query.get("page_size", _PAGE_SIZE))))
        except (ValueError, KeyError, TypeError):
            return _json({"code": -1, "success": False, "msg": "参数错误"}, status=400)
        ids = self._search_order(
            keyword, str(query.get("sort", "general")), query.get("note_type", 0)
        )
        chunk = ids[(page - 1) * size : page * size]
        items = [shapes.search_item(self.dataset.note_by_id(i), self.urls) for i in chunk]
        if items:
            items.insert(min(5, len(items)), self._query_item(keyword, page))
        data = {"has_more": page * size < len(ids), "items": items}
        self._listing_answered()
        return _json({"code": 0, "success": True, "msg": "成功", "data": data})

    def _search_order(self, keyword: str, sort: str, note_type: object) -> list[str]:
        ids = [i for i in self.dataset.search(keyword) if i not in self._knobs.deleted]
        if note_type in (1, 2, "1", "2"):
            wanted = "video" if str(note_type) == "1" else "normal"
            ids = [i for i in ids if self.dataset.note_by_id(i).type == wanted]
        if sort == "popularity_descending":
            ids = sorted(ids, key=lambda i: -self.dataset.note_by_id(i).interact_exact["liked"])
        elif sort == "time_descending":
            ids = sorted(ids, key=lambda i: -self.dataset.note_by_id(i).time)
        return ids

    def _query_item(self, keyword: str, page: int) -> dict[str, Any]:
        kind = "rec_query" if page % 2 else "hot_query"
        rng = random.Random(f"{self.dataset.seed}:{keyword}:{page}")
        matches = self.dataset.search(keyword)[:10]
        words = sorted(
            {t for i in matches for t in self.dataset.note_by_id(i).tags if t != keyword}
        )
        picked = rng.sample(words, k=min(4, len(words))) if words else [keyword + "攻略"]
        request_id = f"{uuid.UUID(int=rng.getrandbits(128))}#{self._now_ms()}"
        return shapes.query_item(kind, request_id, picked, "AB" + secrets.token_urlsafe(48) + "=")

    async def user_posted_api(self, request: web.Request) -> web.Response:
        if (refusal := self._session_refusal(request)) is not None:
            return refusal
        user_id = request.query.get("user_id", "")
        cursor = request.query.get("cursor", "")
        try:
            num = min(_POSTED_PAGE, max(1, int(request.query.get("num", _POSTED_PAGE))))
        except ValueError:
            num = _POSTED_PAGE
        # The cursor is the last note id of the previous page; it is looked up among all
        # the user's notes so that a note deleted meanwhile does not restart the paging.
        owned = self.dataset.user_notes(user_id)
        start = len(owned)
        if not cursor:
            start = 0
        elif cursor in owned:
            start = owned.index(cursor) + 1
        rest = [i for i in owned[start:] if i not in self._knobs.deleted]
        chunk = rest[:num]
        data = {
            "cursor": chunk[-1] if chunk else cursor,
            "has_more": len(rest) > num,
            "notes": [shapes.posted_item(self.dataset.note_by_id(i), self.urls) for i in chunk],
        }
        self._listing_answered()
        return _json({"code": 0, "success": True, "msg": "成功", "data": data})

    async def feed_api(self, request: web.Request) -> web.Response:
        body = await request.text()
        if (refusal := self._session_refusal(request)) is not None:
            return refusal
        try:
            query = json.loads(body)
            note_id = str(query["source_note_id"])
        except (ValueError, KeyError, TypeError):
            return _json({"code": -1, "success": False, "msg": "参数错误"}, status=400)
        note = self.dataset.note_by_id(note_id)
        if note is None:
            request[OUTCOME] = "not_found"
            return _json({"code": NOTE_UNKNOWN[0], "success": False, "msg": NOTE_UNKNOWN[1]})
        if query.get("xsec_token") != note.xsec_token:
            request[OUTCOME] = "xsec_invalid"
            return _json(XSEC_INVALID)
        if self._is_deleted(note):
            request[OUTCOME] = "gone"
            return _json({"code": NOTE_GONE[0], "success": False, "msg": NOTE_GONE[1]})
        item = {
            "id": note.note_id,
            "model_type": "note",
            "note_card": shapes.feed_card(note, self.urls),
        }
        data = {"cursor_score": "", "items": [item], "current_time": self._now_ms()}
        return _json({"code": 0, "success": True, "msg": "成功", "data": data})

    # -- comments (fixtures 10 and 11) ----------------------------------------------------
    def _commented_note(self, request: web.Request) -> NoteSpec | web.Response:
        """The note a comment call names, or the refusal the real API answers."""
        if (refusal := self._session_refusal(request)) is not None:
            return refusal
        note = self.dataset.note_by_id(request.query.get("note_id", ""))
        if note is None:
            request[OUTCOME] = "not_found"
            return _json({"code": NOTE_UNKNOWN[0], "success": False, "msg": NOTE_UNKNOWN[1]})
        if request.query.get("xsec_token") != note.xsec_token:
            request[OUTCOME] = "xsec_invalid"
            return _json(XSEC_INVALID)
        if self._is_deleted(note):
            request[OUTCOME] = "gone"
            return _json({"code": NOTE_GONE[0], "success": False, "msg": NOTE_GONE[1]})
        return note

    async def comment_page_api(self, request: web.Request) -> web.Response:
        """``/api/sns/web/v2/comment/page``: 10 top-level comments after ``cursor`` (the
        last id of the previous page; an unknown cursor gives an empty last page)."""
        note = self._commented_note(request)
        if isinstance(note, web.Response):
            return note
        thread = self.dataset.comments(note.note_id)
        cursor = request.query.get("cursor", "")
        start = _after(thread, cursor)
        chunk = thread[start : start + _COMMENT_PAGE]
        data = {
            "comments": [shapes.comment_item(c, self.urls) for c in chunk],
            "cursor": chunk[-1].comment_id if chunk else "",
            "has_more": start + _COMMENT_PAGE < len(thread),
            "time": self._now_ms(),
            "user_id": VIEWER_ID,
            "xsec_token": note.xsec_token,
        }
        self._listing_answered()
        return _json({"code": 0, "success": True, "msg": "成功", "data": data})

    async def comment_sub_api(self, request: web.Request) -> web.Response:
        """``/api/sns/web/v2/comment/sub/page``: ``num`` (at most 10) replies of
        ``root_comment_id`` after ``cursor`` (start at the root's ``sub_comment_cursor``)."""
        note = self._commented_note(request)
        if isinstance(note, web.Response):
            return note
        root_id = request.query.get("root_comment_id", "")
        thread = self.dataset.comments(note.note_id)
        root = next((c for c in thread if c.comment_id == root_id), None)
        if root is None:
            request[OUTCOME] = "not_found"
            return _json({"code": -1, "success": False, "msg": "评论不存在"})
        try:
            num = min(_REPLY_PAGE, max(1, int(request.query.get("num", _REPLY_PAGE))))
        except ValueError:
            num = _REPLY_PAGE
        cursor = request.query.get("cursor", "")
        start = _after(root.replies, cursor)
        chunk = root.replies[start : start + num]
        data = {
            "comments": [shapes.reply_item(c, self.urls) for c in chunk],
            "cursor": chunk[-1].comment_id if chunk else "",
            "has_more": start + num < len(root.replies),
            "time": self._now_ms(),
            "user_id": VIEWER_ID,
        }
        self._listing_answered()
        return _json({"code": 0, "success": True, "msg": "成功", "data": data})

    # -- short links -------------------------------------------------------------------
    async def short_link(self, request: web.Request) -> web.Response:
        note = self.dataset.resolve_short(request.match_info["code"])
        if note is None:
            raise web.HTTPNotFound()
        return _redirect(shapes.share_target(note, self.urls, self._now_ms()))

    async def control_route(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                changes = await request.json()
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                return _json(self.control(changes))
            except (ValueError, TypeError) as exc:
                return _json({"error": str(exc)}, status=400)
        return _json(self._knobs.as_dict())

    async def stats_route(self, request: web.Request) -> web.Response:
        return _json(self.stats())

    # -- CDN routes ----------------------------------------------------------------------
    async def cdn(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path.startswith(("avatar/", "comment/", "icons/")):  # avatars, comment pictures
            bare = path.partition("!")[0]  # comment pictures come in styles (``!nc_n_…``)
            return web.Response(body=pictures.avatar(bare), content_type="image/jpeg")
        variant = "original"
        if "!" in path:
            head, _, style = path.partition("!")
            parts = head.split("/", 2)
            if len(parts) < 3 or not (parts[0].isdigit() and len(parts[0]) == 12):
                raise web.HTTPNotFound()
            path = parts[2]
            variant = "prv" if "prv" in style else "dft"
        video = parse_video_key(path)
        if video is not None:
            return await self._cdn_video(*video, key=path)
        parsed = parse_image_token(path)
        if parsed is None or parsed[0] != self.dataset.seed or parsed[1] >= len(self.dataset):
            raise web.HTTPNotFound()
        note = self.dataset.note(parsed[1])
        if parsed[2] >= len(note.images) or note.images[parsed[2]].token != path:
            raise web.HTTPNotFound()
        spec = note.images[parsed[2]]
        loop = asyncio.get_running_loop()
        body, mime = await loop.run_in_executor(None, self.pictures.get_or_render, spec, variant)
        if self._chance(self._knobs.truncated_image_rate):
            request[OUTCOME] = "truncated"
            body = body[: len(body) // 2]
        return web.Response(body=body, content_type=mime)

    async def _cdn_video(self, seed: int, index: int, key: str) -> web.Response:
        if (
            seed != self.dataset.seed
            or index >= len(self.dataset)
            or self.dataset.note(index).video is None
        ):
            raise web.HTTPNotFound()
        return web.Response(body=pictures.fake_mp4(key), content_type="video/mp4")

    # -- apps --------------------------------------------------------------------------
    def site_app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        r = app.router
        r.add_get("/", self.root, name="root")
        r.add_get("/explore", self.home, name="home")
        r.add_get("/login", self.login, name="login")
        r.add_get("/explore/{note_id}", self.note, name="note")
        r.add_get("/discovery/item/{note_id}", self.note, name="note_legacy")
        r.add_get("/search_result", self.search_page, name="search_page")
        r.add_get("/user/profile/{user_id}", self.profile, name="profile")
        r.add_post("/api/sns/web/v1/search/notes", self.search_api, name="search_api")
        r.add_get("/api/sns/web/v1/user_posted", self.user_posted_api, name="user_posted_api")
        r.add_post("/api/sns/web/v1/feed", self.feed_api, name="feed_api")
        r.add_get("/api/sns/web/v2/comment/page", self.comment_page_api, name="comment_page_api")
        r.add_get("/api/sns/web/v2/comment/sub/page", self.comment_sub_api, name="comment_sub_api")
        r.add_route("*", "/_sandbox/control", self.control_route, name="sandbox_control")
        r.add_get("/_sandbox/stats", self.stats_route, name="sandbox_stats")
        return app

    def cdn_app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get("/{path:.+}", self.cdn, name="cdn")
        return app

    def short_app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get("/a/{code}", self.short_link, name="short_link")
        return app


def _after(comments: list[CommentSpec] | tuple[CommentSpec, ...], cursor: str) -> int:
    """Where a page after ``cursor`` starts: 0 without one, the end for an unknown one."""
    if not cursor:
        return 0
    for k, c in enumerate(comments):
        if c.comment_id == cursor:
            return k + 1
    return len(comments)


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class SiteServer:
    """Both origins in a background thread with its own event loop (a context manager)."""

    def __init__(
        self,
        seed: int = 1,
        notes: int = 1000,
        port: int = 0,
        cdn_port: int = 0,
        host: str = "127.0.0.1",
        clock: Clock = time.monotonic,
        short_port: int = 0,
        **knobs: Any,
    ) -> None:
        self.dataset = Dataset(seed, notes)
        self.host = host
        self._ports = (port, cdn_port, short_port)
        self._site = SandboxSite(self.dataset, apply_knobs(Knobs(), knobs), clock)
        self._thread = LoopThread("sandbox-site")
        self._runners: list[web.AppRunner] = []
        self.port = 0
        self.cdn_port = 0
        self.short_port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def cdn_url(self) -> str:
        return f"http://{self.host}:{self.cdn_port}"

    @property
    def short_url(self) -> str:
        """Origin of the share-link host (``GET /a/<code>`` -> 302 to the note)."""
        return f"http://{self.host}:{self.short_port}"

    def short_link_url(self, note_id: str) -> str | None:
        """A note's share link, ``{short_url}/a/{code}`` (``None`` for an unknown id)."""
        code = self.dataset.short_link(note_id)
        return None if code is None else f"{self.short_url}/a/{code}"

    def share_text(self, note_id: str) -> str | None:
        """What the app's "copy link" puts on the clipboard for a note, short link inside."""
        note = self.dataset.note_by_id(note_id)
        link = self.short_link_url(note_id)
        return None if note is None or link is None else shapes.share_text(note, link)

    def control(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs (same names as ``POST /_sandbox/control``); returns them all."""
        return self._site.control(knobs)

    @property
    def knobs(self) -> Knobs:
        return self._site.knobs

    def stats(self) -> dict[str, int]:
        """Request counts: ``{route}_{status}``, ``{route}_{outcome}`` and ``{route}_total``
        (e.g. ``note_200``, ``note_ok``, ``note_gone``, ``search_api_signature_rejected``,
        ``cdn_ok``). Outcomes: ok, redirect, gone, xsec_invalid, login_required, captcha,
        signature_rejected, error, not_found, bad_request, truncated."""
        return self._site.stats()

    def reset_stats(self) -> None:
        self._site.reset_stats()

    def start(self) -> SiteServer:
        if self._thread.running:
            raise RuntimeError("already started")
        socks: list[socket.socket] = []
        try:
            for port in self._ports:
                socks.append(_bind(self.host, port))
        except OSError:
            for sock in socks:
                sock.close()
            raise
        site_sock, cdn_sock, short_sock = socks
        self.port = site_sock.getsockname()[1]
        self.cdn_port = cdn_sock.getsockname()[1]
        self.short_port = short_sock.getsockname()[1]
        self._site.urls = shapes.Urls(self.url, self.cdn_url)

        async def startup() -> None:
            apps = (
                (self._site.site_app(), site_sock),
                (self._site.cdn_app(), cdn_sock),
                (self._site.short_app(), short_sock),
            )
            for app, sock in apps:
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                self._runners.append(runner)
                await web.SockSite(runner, sock).start()

        async def cleanup() -> None:
            for runner in self._runners:
                await runner.cleanup()
            self._runners.clear()

        try:
            self._thread.start(startup, cleanup)
        except BaseException:
            for sock in socks:
                sock.close()
            raise
        return self

    def stop(self) -> None:
        """Close the three servers and end the thread (idempotent)."""
        self._thread.stop(timeout=30)

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
