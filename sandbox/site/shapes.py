"""Page states and API bodies in the real site's shapes, built from dataset notes.

Store layouts follow the captured pages (tests/data/xhs-real/01, 02b and 09): the same
stores around the note, with ``undefined`` where the real page has it. Page state is
camelCase; API JSON is snake_case.

Why one module of ~650 lines: it is the one place that knows the real site's shapes,
to be read beside the captured pages; most of it is the literal store layout of a
page (``base_state`` alone is ~175 lines), one small builder per body otherwise.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from sandbox.dataset import NoteImageSpec, NoteSpec, NoteUserSpec
from sandbox.profiles import ProfileSpec
from sandbox.site.jsliteral import UNDEFINED
from sandbox.threads import CommentSpec

U = UNDEFINED


class Urls:
    """Absolute URLs of the two origins (site and CDN)."""

    def __init__(self, site: str, cdn: str) -> None:
        self.site = site
        self.cdn = cdn

    def styled(self, token: str, style: str, now: float | None = None) -> str:
        """``{cdn}/{YYYYMMDDHHmm}/{32hex}/{token}!{style}`` like sns-webpic URLs."""
        stamp = time.strftime("%Y%m%d%H%M", time.gmtime(time.time() if now is None else now))
        sig = hashlib.md5(f"{stamp}/{token}!{style}".encode()).hexdigest()
        return f"{self.cdn}/{stamp}/{sig}/{token}!{style}"

    def original(self, token: str) -> str:
        return f"{self.cdn}/{token}"

    def avatar(self, user: NoteUserSpec, width: int = 120) -> str:
        return f"{self.cdn}/{user.avatar_token}?imageView2/2/w/{width}/format/jpg"

    def note(self, note: NoteSpec, source: str) -> str:
        return (
            f"{self.site}/explore/{note.note_id}?xsec_token={note.xsec_token}&xsec_source={source}"
        )


def image_state(image: NoteImageSpec, urls: Urls) -> dict[str, Any]:
    dft = urls.styled(image.token, "nd_dft_wlteh_webp_3")
    prv = urls.styled(image.token, "nd_prv_wlteh_webp_3")
    return {
        "fileId": "",
        "height": image.height,
        "traceId": "",
        "urlDefault": dft,
        "livePhoto": False,
        "width": image.width,
        "url": "",
        "infoList": [{"imageScene": "WB_PRV", "url": prv}, {"imageScene": "WB_DFT", "url": dft}],
        "urlPre": prv,
        "stream": {},
    }


def user_state(user: NoteUserSpec, urls: Urls) -> dict[str, Any]:
    return {
        "avatar": urls.avatar(user),
        "xsecToken": user.xsec_token,
        "userId": user.user_id,
        "nickname": user.nickname,
    }


def note_state(note: NoteSpec, urls: Urls) -> dict[str, Any]:
    """``note.noteDetailMap[noteId].note`` of the real page."""
    out: dict[str, Any] = {
        "xsecToken": note.xsec_token,
        "time": note.time,
        "type": note.type,
        "desc": note.desc,
        "user": user_state(note.user, urls),
        "tagList": [
            {"id": tid, "name": name, "type": "topic"}
            for tid, name in zip(note.tag_ids, note.tags, strict=True)
        ],
        "atUserList": [],
        "ipLocation": note.ip_location,
        "shareInfo": {"unShare": False},
        "noteId": note.note_id,
        "title": note.title,
        "interactInfo": {
            "liked": False,
            "likedCount": note.interact["liked"],
            "collected": False,
            "collectedCount": note.interact["collected"],
            "commentCount": note.interact["comments"],
            "shareCount": note.interact["shares"],
            "followed": False,
            "relation": "none",
        },
        "imageList": [image_state(img, urls) for img in note.images],
        "lastUpdateTime": note.last_update_time,
    }
    if note.video is not None:
        v = note.video
        stream_url = urls.original(v.stream_key)
        out["video"] = {
            "media": {
                "videoId": int(hashlib.sha1(v.stream_key.encode()).hexdigest()[:15], 16),
                "video": {
                    "bizName": 110,
                    "duration": v.duration,
                    "hdrType": 0,
                    "drmType": 0,
                    "streamTypes": [258],
                },
                "stream": {
                    "h264": [
                        {
                            "masterUrl": stream_url,
                            "backupUrls": [stream_url],
                            "width": v.width,
                            "height": v.height,
                            "format": "mp4",
                            "videoCodec": "h264",
                            "duration": v.duration * 1000,
                            "streamType": 258,
                        }
                    ],
                    "h265": [],
                    "av1": [],
                    "h266": [],
                },
            },
            "capa": {"duration": v.duration},
            "consumer": {"originVideoKey": v.origin_video_key},
        }
    return out


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def snake(value: Any) -> Any:
    """Recursively rename camelCase keys to the API's snake_case."""
    if isinstance(value, dict):
        return {_camel_to_snake(k): snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(v) for v in value]
    return value


def feed_card(note: NoteSpec, urls: Urls) -> dict[str, Any]:
    """``data.items[0].note_card`` of ``/api/sns/web/v1/feed``: the page note in snake_case
    without its ``xsec_token``."""
    card = snake(note_state(note, urls))
    card.pop("xsec_token", None)
    return card


def cover(note: NoteSpec, urls: Urls) -> dict[str, Any]:
    img = note.images[0]
    prv = urls.styled(img.token, "nc_n_webp_prv_1")
    dft = urls.styled(img.token, "nc_n_webp_mw_1")
    return {
        "url_pre": prv,
        "url_default": dft,
        "height": img.height,
        "width": img.width,
        "info_list": [{"image_scene": "WB_PRV", "url": prv}, {"image_scene": "WB_DFT", "url": dft}],
    }


def api_user(user: NoteUserSpec, urls: Urls) -> dict[str, Any]:
    return {
        "nick_name": user.nickname,
        "avatar": urls.avatar(user, 80),
        "user_id": user.user_id,
        "nickname": user.nickname,
        "xsec_token": user.xsec_token,
    }


def search_item(note: NoteSpec, urls: Urls) -> dict[str, Any]:
    return {
        "model_type": "note",
        "note_card": {
            "interact_info": {
                "liked": False,
                "liked_count": note.interact["liked"],
                "collected": False,
                "collected_count": note.interact["collected"],
                "comment_count": note.interact["comments"],
                "shared_count": note.interact["shares"],
            },
            "cover": cover(note, urls),
            "image_list": [
                {
                    "height": img.height,
                    "width": img.width,
                    "info_list": [
                        {
                            "image_scene": "WB_PRV",
                            "url": urls.styled(img.token, "nd_prv_wlteh_webp_3"),
                        },
                        {
                            "image_scene": "WB_DFT",
                            "url": urls.styled(img.token, "nd_dft_wlteh_webp_3"),
                        },
                    ],
                }
                for img in note.images
            ],
            "type": note.type,
            "display_title": note.title,
            "user": api_user(note.user, urls),
        },
        "xsec_token": note.xsec_token,
        "id": note.note_id,
    }


def query_item(
    kind: str, word_request_id: str, words: list[str], xsec_token: str
) -> dict[str, Any]:
    """A ``rec_query`` ("相关搜索") or ``hot_query`` ("大家都在搜") item of a search page."""
    title = "相关搜索" if kind == "rec_query" else "大家都在搜"
    return {
        "id": word_request_id,
        "model_type": kind,
        kind: {
            "title": title,
            "source": 1 if kind == "rec_query" else 2,
            "word_request_id": word_request_id,
            "queries": [{"id": w, "name": w, "search_word": w} for w in words],
        },
        "xsec_token": xsec_token,
    }


def posted_item(note: NoteSpec, urls: Urls) -> dict[str, Any]:
    """An item of ``/api/sns/web/v1/user_posted``."""
    return {
        "interact_info": {"liked": False, "liked_count": note.interact["liked"], "sticky": False},
        "xsec_token": note.xsec_token,
        "note_id": note.note_id,
        "display_title": note.title,
        "type": note.type,
        "cover": cover(note, urls),
        "user": api_user(note.user, urls),
    }


def profile_note(note: NoteSpec, urls: Urls, index: int) -> dict[str, Any]:
    """An entry of ``user.notes[tab]`` on a profile page."""
    card = posted_item(note, urls)
    return {
        "id": note.note_id,
        "noteCard": {
            "xsecToken": note.xsec_token,
            "noteId": note.note_id,
            "displayTitle": note.title,
            "type": note.type,
            "cover": {
                "height": card["cover"]["height"],
                "width": card["cover"]["width"],
                "infoList": [
                    {"url": i["url"], "imageScene": i["image_scene"]}
                    for i in card["cover"]["info_list"]
                ],
                "urlPre": card["cover"]["url_pre"],
                "urlDefault": card["cover"]["url_default"],
            },
            "user": {
                "avatar": urls.avatar(note.user),
                "userId": note.user.user_id,
                "nickname": note.user.nickname,
            },
            "interactInfo": {"liked": False, "likedCount": note.interact["liked"]},
        },
        "index": index,
        "exposed": False,
        "ssrRendered": True,
        "xsecToken": note.xsec_token,
    }


def _comments() -> dict[str, Any]:
    return {
        "list": [],
        "cursor": "",
        "hasMore": True,
        "loading": False,
        "firstRequestFinish": False,
    }


def base_state(now_ms: int) -> dict[str, Any]:
    """Every store of the real page, empty, with ``undefined`` where the real page has it."""
    queries = [
        {"num": 30, "cursor": "", "userId": "", "hasMore": True, "page": 1} for _ in range(4)
    ]
    return {
        "global": {
            "appSettings": {
                "notificationInterval": 30,
                "prefetchTimeout": 3001,
                "retryFeeds": True,
                "NIO": True,
            },
            "supportWebp": False,
            "serverTime": now_ms,
            "grayMode": False,
            "referer": "",
            "pwaAddDesktopPrompt": U,
            "firstVisitUrl": U,
            "easyAccessModalVisible": {
                "addDesktopGuide": False,
                "collectGuide": False,
                "keyboardList": False,
            },
            "currentLayout": "default",
            "fullscreenLocking": False,
            "feedbackPopupVisible": False,
            "trackFps": False,
            "supportAVIF": False,
            "imgFormatCollect": {"ssr": ["jpg"], "csr": ["jpg"]},
            "isUndertake": False,
        },
        "user": {
            "loggedIn": True,
            "activated": False,
            "userInfo": {"guest": False},
            "follow": [],
            "userPageData": {},
            "activeTab": {
                "key": 0,
                "index": 0,
                "query": "note",
                "label": "笔记",
                "lock": False,
                "subTabs": None,
                "feedType": 0,
            },
            "notes": [[], [], [], []],
            "isFetchingNotes": [False, False, False, False],
            "tabScrollTop": [0, 0, 0, 0],
            "userFetchingStatus": U,
            "userNoteFetchingStatus": ["", "", "", ""],
            "bannedInfo": {
                "userId": "",
                "serverBanned": False,
                "code": 0,
                "showAlert": False,
                "reason": "",
                "api": "",
            },
            "firstFetchNote": True,
            "noteQueries": queries,
            "pageScrolled": 0,
            "activeSubTab": U,
            "isOwnBoard": False,
        },
        "board": {
            "boardListData": {},
            "isLoadingBoardList": False,
            "boardDetails": {},
            "boardFeedsMap": {},
            "boardPageStatus": "pending",
            "userBoardList": [],
        },
        "login": {
            "loginMethod": U,
            "from": "",
            "showLogin": False,
            "agreed": False,
            "showTooltip": False,
            "loginData": {"phone": "", "authCode": ""},
            "errors": {"phone": "", "authCode": ""},
            "qrData": {"backend": {"qrId": "", "code": ""}, "image": "", "status": "un_scanned"},
            "counter": U,
            "inAntiSpamChecking": False,
            "obPageFillInProgress": None,
            "genderSelectValue": U,
            "loginTips": "登录后推荐更懂你的笔记",
        },
        "feed": {
            "query": {
                "cursorScore": "",
                "num": 30,
                "refreshType": 1,
                "noteIndex": 0,
                "category": "homefeed_recommend",
                "searchKey": "",
                "needNum": 20,
                "imageFormats": [],
            },
            "isFetching": False,
            "isError": False,
            "feedsWrapper": U,
            "undertakeNote": U,
            "feeds": [],
            "currentChannel": "homefeed_recommend",
            "channels": U,
            "prefetchId": U,
            "mfRequestMetaData": {"start": None, "lasting": None},
            "ssrRequestStatus": 5,
        },
        "layout": {
            "layoutInfoReady": False,
            "columns": 6,
            "columnsWithSidebar": 6,
            "gap": {"vertical": 12, "horizontal": 24},
            "columnWidth": 0,
            "bufferRow": 3,
        },
        "search": {
            "state": "auto",
            "searchContext": {
                "keyword": "",
                "page": 1,
                "pageSize": 20,
                "searchId": "",
                "sort": "general",
                "noteType": 0,
                "extFlags": [],
                "filters": [],
                "geo": "",
            },
            "feeds": [],
            "searchValue": "",
            "activeTagSearch": None,
            "searchFeedsWrapper": U,
            "currentSearchType": "all",
            "sugType": None,
            "queryTrendingInfo": U,
            "hasMore": True,
            "searchCplId": U,
            "wordRequestId": U,
            "filters": U,
            "activeFilters": [],
            "filterParams": U,
        },
        "activity": {"isOpen": False, "currentUrl": "", "entryList": []},
        "note": {
            "prevRouteData": {},
            "prevRoute": "Empty",
            "commentTarget": {},
            "isImgFullscreen": False,
            "gotoPage": "",
            "firstNoteId": "",
            "autoOpenNote": False,
            "topCommentId": "",
            "noteDetailMap": {"undefined": {"comments": _comments(), "currentTime": 0, "note": {}}},
            "serverRequestInfo": {"state": "success", "errorCode": 0, "errMsg": ""},
            "volume": 0,
            "recommendVideoMap": {},
            "videoFeedType": "note_source",
            "rate": 1,
            "currentNoteId": U,
            "mediaWidth": 450,
            "noteHeight": 800,
        },
        "nioStore": {"collectionListDataSource": U, "error": U},
        "notification": {
            "isFetching": False,
            "activeTabKey": -1,
            "notificationCount": {"unreadCount": 0, "mentions": 0, "likes": 0, "connections": 0},
        },
        "redMoji": {"mojiData": {"version": "", "redmojiTabs": [], "redmojiMap": {}}},
    }


def note_page_state(note: NoteSpec, urls: Urls, now_ms: int) -> dict[str, Any]:
    state = base_state(now_ms)
    store = state["note"]
    store["firstNoteId"] = note.note_id
    store["currentNoteId"] = note.note_id
    store["forceScrollToComment"] = False
    store["noteDetailMap"] = {
        note.note_id: {
            "comments": _comments(),
            "currentTime": now_ms,
            "note": note_state(note, urls),
        }
    }
    return state


def gone_page_state(note_id: str, code: int, message: str, now_ms: int) -> dict[str, Any]:
    """State of a deleted / unviewable note: no note, the error in ``serverRequestInfo``."""
    state = base_state(now_ms)
    store = state["note"]
    store["firstNoteId"] = note_id
    store["currentNoteId"] = note_id
    store["noteDetailMap"] = {}
    store["serverRequestInfo"] = {"state": "fail", "errorCode": code, "errMsg": message}
    return state


_GENDER_ICONS = ("gender-male-v1.png", "gender-female-v1.png")


def profile_state(
    profile: ProfileSpec, notes: list[NoteSpec], has_more: bool, urls: Urls, now_ms: int
) -> dict[str, Any]:
    """A profile page's state: ``user.userPageData`` in fixture 09's shape, first notes."""
    state = base_state(now_ms)
    store = state["user"]
    user = profile.user
    icon = f"{urls.cdn}/icons/user/{_GENDER_ICONS[profile.gender]}"
    store["userPageData"] = {
        "tags": [
            {"icon": icon, "name": name, "tagType": kind}
            if kind == "info"
            else {"name": name, "tagType": kind}
            for name, kind in profile.tags
        ],
        "tabPublic": {
            "collection": False,
            "collectionBoard": {"count": 0, "display": False, "lock": True},
            "collectionNote": {"display": False, "lock": True, "count": 0},
        },
        "result": {"code": 0, "message": "success", "success": True},
        "basicInfo": {
            "images": urls.avatar(user, 360),
            "redId": profile.red_id,
            "gender": profile.gender,
            "ipLocation": profile.ip_location,
            "desc": profile.desc,
            "imageb": urls.avatar(user, 540),
            "nickname": user.nickname,
        },
        "interactions": [
            {"type": "follows", "name": "关注", "count": profile.shown["follows"]},
            {"type": "fans", "name": "粉丝", "count": profile.shown["fans"]},
            {"type": "interaction", "name": "获赞与收藏", "count": profile.shown["interaction"]},
        ],
    }
    if profile.verify_type:
        store["userPageData"]["verifyInfo"] = {"redOfficialVerifyType": profile.verify_type}
    store["notes"] = [[profile_note(n, urls, k) for k, n in enumerate(notes)], [], [], []]
    store["userFetchingStatus"] = "resolved"
    store["userNoteFetchingStatus"] = ["resolved", "", "", ""]
    store["firstFetchNote"] = False
    store["noteQueries"][0] = {
        "num": 30,
        "cursor": notes[-1].note_id if notes else "",
        "userId": user.user_id,
        "hasMore": has_more,
        "page": 1,
    }
    return state


# -- comments (fixtures 10 and 11) ------------------------------------------------------
INLINE_REPLIES = 1  # replies carried inside a top-level comment of a comment page


def comment_user(user: NoteUserSpec, urls: Urls) -> dict[str, Any]:
    return {
        "nickname": user.nickname,
        "image": urls.avatar(user),
        "ai_agent": False,
        "xsec_token": user.xsec_token,
        "user_id": user.user_id,
    }


def _comment_base(c: CommentSpec, urls: Urls) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.comment_id,
        "note_id": c.note_id,
        "status": c.status,
        "content": c.content,
        "like_count": str(c.like_count),
        "liked": False,
        "create_time": c.create_time,
        "user_info": comment_user(c.user, urls),
        "show_tags": ["is_author"] if c.is_author else [],
        "at_users": [{"user_id": u.user_id, "nickname": u.nickname} for u in c.at_users],
    }
    if c.ip_location is not None:
        out["ip_location"] = c.ip_location
    if c.pictures:
        out["pictures"] = [
            {
                "height": p.height,
                "width": p.width,
                "url_pre": f"{urls.cdn}/{p.token}!nc_n_webp_prv_1",
                "url_default": f"{urls.cdn}/{p.token}!nc_n_webp_mw_1",
                "info_list": [
                    {"image_scene": "WB_PRV", "url": f"{urls.cdn}/{p.token}!nc_n_webp_prv_1"},
                    {"image_scene": "WB_DFT", "url": f"{urls.cdn}/{p.token}!nc_n_webp_mw_1"},
                ],
            }
            for p in c.pictures
        ]
    return out


def reply_item(c: CommentSpec, urls: Urls) -> dict[str, Any]:
    """A reply as in ``sub_comments`` and in ``/comment/sub/page``: with ``target_comment``."""
    out = _comment_base(c, urls)
    if c.target_id is not None and c.target_user is not None:
        out["target_comment"] = {"id": c.target_id, "user_info": comment_user(c.target_user, urls)}
    return out


def comment_item(c: CommentSpec, urls: Urls) -> dict[str, Any]:
    """A top-level comment of ``/comment/page``: its first replies inline, then a cursor."""
    out = _comment_base(c, urls)
    inline = c.replies[:INLINE_REPLIES]
    out["sub_comments"] = [reply_item(r, urls) for r in inline]
    out["sub_comment_count"] = str(c.reply_count)
    out["sub_comment_cursor"] = inline[-1].comment_id if inline else ""
    out["sub_comment_has_more"] = len(c.replies) > len(inline)
    return out


def search_page_state(keyword: str, now_ms: int) -> dict[str, Any]:
    state = base_state(now_ms)
    state["search"]["searchContext"]["keyword"] = keyword
    state["search"]["searchValue"] = keyword
    return state


# -- share links (issue 13) -------------------------------------------------------------
def share_target(note: NoteSpec, urls: Urls, now_ms: int) -> str:
    """Where a share link redirects: the note's ``/discovery/item/`` URL as the app shares
    it, with its ``xsec_token`` and ``xsec_source=app_share``."""
    share_id = hashlib.md5(f"share:{note.note_id}".encode()).hexdigest()
    return (
        f"{urls.site}/discovery/item/{note.note_id}?app_platform=android&ignoreEngage=true"
        f"&app_version=8.64.0&share_from_user_hidden=true&xsec_source=app_share"
        f"&type={note.type}&xsec_token={note.xsec_token}&author_share=1&xhsshare=CopyLink"
        f"&shareRedId={note.user.user_id[:12]}&apptime={now_ms // 1000}&share_id={share_id}"
    )


def share_text(note: NoteSpec, link: str) -> str:
    """The app's "copy link" text around a short link, as users paste it."""
    code = hashlib.md5(note.note_id.encode()).hexdigest()[:8]
    return (
        f"{note.title} {note.user.nickname}发布了一篇小红书笔记，快来看吧！ 😆 {code} 😆 "
        f"{link}，复制本条信息，打开【小红书】App查看精彩内容！"
    )
