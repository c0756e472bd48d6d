"""Creator profiles → ``UserItem`` (pure; fixture 09 is a real page's state).

Two sources, one mapping (camelCase or snake_case, as in ``notes.py``):

- the profile page ``/user/profile/{user_id}``: its server state's
  ``user.userPageData{basicInfo, interactions[], tags[], verifyInfo?, result}`` (a Vue
  ref in some captures; refs are unwrapped by ``state``) → :func:`parse_profile_page`
  / :func:`user_from_state`;
- the API twin ``GET /api/sns/web/v1/user/otherinfo?target_user_id=`` →
  ``data{basic_info, interactions, tags, verify_info, result}`` →
  :func:`user_from_otherinfo`.

The profile's own id is not in ``userPageData``: it is the ``user_id`` asked for, the
one in the URL, or the state's ``noteQueries[].userId``; never ``user.userInfo``, which
is the logged-in viewer. Interactions are follows / fans / "interaction" (获赞与收藏,
likes and collects), each a :class:`CountText`. ``basicInfo.gender`` is 0 male, 1
female (the real page shows 0 with the male icon).

Typed errors: ``ProfileMissing`` (no ``userPageData``, ``undefined`` or empty where the
profile should be, another user's profile), ``ProfileMalformed`` (wrong types),
``ProfileUnavailable`` (the site's ``result`` failed, a banned account), plus the page
checks' and the signal table's errors. Tags are capped at ``MAX_TAGS`` and the bio at
``MAX_DESC_CHARS``: such a profile is kept (nothing fetched is lost), the cut field is
named in ``UserItem.truncated``, and :func:`profile_warnings` gives each cut as a typed
:class:`ProfileTruncated` (``.reason``: ``tags_truncated``, ``desc_truncated``) for the
crawl to count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crawler.core.items import (
    CountText,
    NoteSource,
    UserGender,
    UserInteractions,
    UserItem,
    UserTag,
)
from crawler.parsing.errors import (
    LoginRequired,
    ProfileMalformed,
    ProfileMissing,
    ProfileUnavailable,
    StateMissing,
)
from crawler.parsing.images import split_url
from crawler.parsing.signals import (
    CODE_SIGNALS,
    classify_page,
    classify_url,
    error_for_code,
    error_for_signal,
    is_login_url,
)
from crawler.parsing.state import (
    DEFAULT_MAX_PAGE_BYTES,
    STATE_MARKER,
    locate_state,
    page_text,
    parse_state_literal,
)
from crawler.parsing.values import (
    capped_text,
    count_text,
    data_object,
    get_field,
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
    "MAX_TAGS",
    "ProfileTruncated",
    "parse_profile_page",
    "profile_warnings",
    "user_from_otherinfo",
    "user_from_state",
    "user_id_from_url",
]

MAX_TAGS = 50
MAX_DESC_CHARS = 2_000  # the site allows a few hundred; longer is hostile
MAX_SHORT_TEXT = 200  # nickname, red id, location, tag names
GENDERS: Mapping[int, UserGender] = {0: "male", 1: "female"}
# interactions[].type → UserInteractions field.
INTERACTION_FIELDS: Mapping[str, str] = {
    "follows": "follows",
    "fans": "fans",
    "interaction": "likes_and_collects",
}

TRUNCATABLE = ("desc", "tags")  # the fields the parser may cut to their cap


@dataclass(frozen=True)
class ProfileTruncated:
    """A profile read in full but with one field cut to its cap: a warning, not an error
    (the profile is kept). ``reason`` is the stats key's last part."""

    field: str  # one of TRUNCATABLE

    @property
    def reason(self) -> str:
        return f"{self.field}_truncated"


def profile_warnings(user: UserItem) -> list[ProfileTruncated]:
    """The typed warnings of a parsed profile: one per field the parser cut."""
    return [ProfileTruncated(name) for name in TRUNCATABLE if name in user.truncated]


_PROFILE_PATH = re.compile(r"/user/profile/([0-9A-Za-z]{16,32})(?:/|$)")


def user_id_from_url(url: str | None) -> str | None:
    """The user id of a profile URL (``/user/profile/{id}``, also under a note), else None."""
    match = _PROFILE_PATH.search(split_url(url).path) if url else None
    return match.group(1) if match else None


def parse_profile_page(
    html: str | bytes,
    url: str,
    *,
    user_id: str | None = None,
    fetched_at: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_PAGE_BYTES,
) -> UserItem:
    """The profile of a page (full HTML or bare state text); ``url`` is its final URL.

    The user is ``user_id``, else the one in ``url``. Raises a ``ParseError`` subclass
    naming what was wrong.
    """
    wanted = user_id or user_id_from_url(url)
    label = _label(wanted, url)
    text = page_text(html, max_bytes=max_bytes)
    landed = classify_url(url)
    if landed is not None:
        raise error_for_signal(landed, label)
    if is_login_url(url):
        raise LoginRequired(f"{label}: landed on the login page")
    span = locate_state(text)
    if span is None:
        signal = classify_page(text)
        if signal is not None:
            raise error_for_signal(signal, label)
        raise StateMissing(
            f"{label}: no <script>{STATE_MARKER}=…</script> in a page of {len(text)} characters"
        )
    state = parse_state_literal(text[span[0] : span[1]])
    return user_from_state(state, user_id=wanted, fetched_at=fetched_at, label=label)


def user_from_state(
    state: Mapping[str, Any],
    *,
    user_id: str | None = None,
    fetched_at: datetime | None = None,
    label: str | None = None,
) -> UserItem:
    """The profile in a parsed page state (``user.userPageData``).

    Without ``user_id`` the owner is read from ``user.noteQueries[].userId``.
    """
    label = label or _label(user_id, "")
    store = mapping_value(state.get("user"), f"{label}: the state's user store", ProfileMalformed)
    if store is None:
        raise ProfileMissing(f"{label}: the state has no user store (stores: {keys_of(state)})")
    page_data = mapping_value(
        store.get("userPageData"), f"{label}: user.userPageData", ProfileMalformed
    )
    if not page_data:
        shown = "empty" if page_data is not None else "missing or undefined"
        raise ProfileMissing(f"{label}: user.userPageData is {shown} (no profile rendered)")
    _check_banned(store.get("bannedInfo"), label)
    owner = _owner(store, user_id, label)
    return _user_item(page_data, owner, "page", f"user {owner}", fetched_at)


def user_from_otherinfo(
    api_json: Mapping[str, Any] | str | bytes,
    *,
    user_id: str,
    fetched_at: datetime | None = None,
    http_status: int | None = None,
) -> UserItem:
    """The profile of a ``user/otherinfo`` answer for ``user_id`` (the request's target)."""
    label = f"user/otherinfo of {str(user_id)[:40]}"
    if safe_id(user_id) is None:
        raise ValueError(f"{label}: the user id is not an id")
    data = data_object(load_answer(api_json, label, http_status=http_status), label)
    return _user_item(data, user_id, "api", f"user {user_id}", fetched_at)


# --- the mapping shared by page state and API -----------------------------------------


def _user_item(
    data: Mapping[str, Any],
    user_id: str,
    source: NoteSource,
    label: str,
    fetched_at: datetime | None,
) -> UserItem:
    _check_result(get_field(data, "result"), label)
    basic = mapping_value(get_field(data, "basicInfo"), f"{label}: basicInfo", ProfileMalformed)
    if not basic:
        raise ProfileMissing(f"{label}: basicInfo is missing, undefined or empty")
    truncated: list[str] = []
    nickname = _short(basic, "nickname", label)
    red_id = _short(basic, "redId", label)
    if not nickname and not red_id:
        raise ProfileMissing(
            f"{label}: basicInfo has neither nickname nor redId (undefined values: the "
            "profile was not rendered)"
        )
    desc, cut = capped_text(
        get_field(basic, "desc"), f"{label}: basicInfo.desc", ProfileMalformed, MAX_DESC_CHARS
    )
    if cut:
        truncated.append("desc")
    tags = _tags(get_field(data, "tags"), label, truncated)
    verify_type = _verify_type(data, basic)
    verified_flag = get_field(basic, "redOfficialVerified")
    return UserItem(
        user_id=user_id,
        red_id=red_id or None,
        nickname=nickname or "",
        desc=desc or "",
        gender=_gender(get_field(basic, "gender")),
        ip_location=_short(basic, "ipLocation", label) or None,
        avatar=url_value(get_field(basic, "imageb")) or url_value(get_field(basic, "images")),
        tags=tags,
        interactions=_interactions(get_field(data, "interactions"), label),
        verified=(
            verified_flag
            if isinstance(verified_flag, bool)
            else (verify_type > 0 if verify_type is not None else None)
        ),
        verify_type=verify_type,
        source=source,
        truncated=truncated,
        fetched_at=fetched_at,
    )


def _interactions(value: Any, label: str) -> UserInteractions:
    if value is None:
        raise ProfileMissing(f"{label}: interactions are missing or undefined")
    entries = list_value(value, f"{label}: interactions", ProfileMalformed)
    counts: dict[str, CountText] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            continue
        name = (
            INTERACTION_FIELDS.get(entry.get("type"))
            if isinstance(entry.get("type"), str)
            else None
        )
        if name is not None and name not in counts:
            counts[name] = count_text(
                entry.get("count"), f"{label}: interactions[{index}].count", ProfileMalformed
            )
    return UserInteractions(**counts)


def _tags(value: Any, label: str, truncated: list[str]) -> list[UserTag]:
    tags: list[UserTag] = []
    for index, entry in enumerate(list_value(value, f"{label}: tags", ProfileMalformed)):
        if not isinstance(entry, Mapping):
            continue
        if len(tags) == MAX_TAGS:
            truncated.append("tags")
            break
        where = f"{label}: tags[{index}]"
        kind, _ = capped_text(get_field(entry, "tagType"), f"{where}.tagType", ProfileMalformed, 40)
        name, _ = capped_text(entry.get("name"), f"{where}.name", ProfileMalformed, MAX_SHORT_TEXT)
        icon = url_value(entry.get("icon"))
        if name or icon:
            tags.append(UserTag(kind=kind or "unknown", name=name or None, icon=icon))
    return tags


def _verify_type(data: Mapping[str, Any], basic: Mapping[str, Any]) -> int | None:
    """``verifyInfo.redOfficialVerifyType`` (or the same key in basicInfo), when given."""
    verify = get_field(data, "verifyInfo")
    for holder in (verify if isinstance(verify, Mapping) else {}, basic):
        found = int_value(get_field(holder, "redOfficialVerifyType"))
        if found is not None:
            return found
    return None


def _check_result(value: Any, label: str) -> None:
    """The site's own verdict on the profile (``result{code, success, message}``)."""
    result = mapping_value(value, f"{label}: result", ProfileMalformed)
    if not result:
        return
    code = result.get("code")
    message = str(result.get("message") or result.get("msg") or "")[:100]
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        if code in CODE_SIGNALS and code != -1:  # -1 is a signature verdict only on a 406
            raise error_for_code(code, message, label)
        raise ProfileUnavailable(
            f"{label}: the site's result is code {code} {message!r}", code=code
        )
    if result.get("success") is False:
        raise ProfileUnavailable(f"{label}: the site's result is success=false {message!r}")


def _check_banned(value: Any, label: str) -> None:
    if isinstance(value, Mapping) and value.get("serverBanned") is True:
        reason = str(value.get("reason") or "")[:100]
        raise ProfileUnavailable(f"{label}: the account is banned ({reason!r})")


def _owner(store: Mapping[str, Any], wanted: str | None, label: str) -> str:
    """The profile's user id: the one asked for, checked against ``noteQueries``."""
    queried = {
        found
        for query in (
            store.get("noteQueries") if isinstance(store.get("noteQueries"), list) else []
        )
        if isinstance(query, Mapping) and (found := safe_id(query.get("userId")))
    }
    owner = id_value(wanted, f"{label}: the user id asked for", ProfileMalformed)
    if owner is None:
        if len(queried) != 1:
            raise ProfileMissing(
                f"{label}: no user id (none asked for, none in the URL, "
                f"{len(queried)} in user.noteQueries)"
            )
        return next(iter(queried))
    if queried and owner not in queried:
        raise ProfileMissing(
            f"{label}: the page is the profile of {', '.join(sorted(queried))[:80]}, not {owner}"
        )
    return owner


def _gender(value: Any) -> UserGender | None:
    code = int_value(value)
    return GENDERS.get(code) if code is not None else None


def _short(obj: Mapping[str, Any], camel: str, label: str) -> str | None:
    text, _ = capped_text(
        get_field(obj, camel), f"{label}: {camel}", ProfileMalformed, MAX_SHORT_TEXT
    )
    return text


def _label(user_id: str | None, url: str) -> str:
    if user_id:
        return f"profile of user {str(user_id)[:40]}"
    return f"page {split_url(url).path[:100] or url[:100]}"
