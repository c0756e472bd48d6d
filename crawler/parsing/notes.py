"""Note pages and API note cards → ``NoteItem``.

The page state is camelCase (``noteId``, ``imageList``), the web API snake_case
(``note_id``, ``image_list``); one mapping reads both, so a note has the same item
whichever way it was fetched. A page without a state falls back to its ``og:*``
meta tags; a page without the note says why through a typed error.

This is the edge where note items are built: every text field (title, desc, tags, user
nickname, ip_location, URLs, count texts, ``og:*`` contents) is cleaned here, once, by
:func:`crawler.core.text.clean_text` (lone surrogates → U+FFFD), so no later stage
(content hash, model request, JSON spool, BSON) meets text it cannot encode.

(Over 400 lines: the state reader, the ``og:*`` fallback and the API-answer fallback
share the small lenient readers at the bottom and the one ``_note_item`` builder, and
each produces the same item; split apart, every part would import the others' privates.)
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from crawler.core.items import (
    NoteImage,
    NoteInteract,
    NoteItem,
    NoteSource,
    NoteType,
    NoteUser,
    NoteVideo,
)
from crawler.core.text import clean_text
from crawler.parsing.counts import parse_count
from crawler.parsing.errors import (
    LoginRequired,
    NoteNotFound,
    ResponseMalformed,
    StateMissing,
    XsecTokenInvalid,
)
from crawler.parsing.images import (
    DEFAULT_ORIGINAL_TEMPLATES,
    display_url,
    image_urls,
    original_candidates,
    split_url,
)
from crawler.parsing.signals import (
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
from crawler.parsing.values import get_field, keys_of
from crawler.urls import note_id_from_url, note_url, site_base

__all__ = [
    "DEFAULT_ORIGINAL_TEMPLATES",
    "note_from_api_card",
    "note_from_state",
    "parse_note_page",
]

VIDEO_ORIGIN_TEMPLATE = "https://sns-video-bd.xhscdn.com/{key}"
VIDEO_CODECS = ("h264", "h265", "av1")
OG_TITLE_SUFFIX = " - 小红书"

_INLINE_TOPIC = re.compile(r"#([^#\[\]\n]{1,64})\[话题\]#")
_META = re.compile(r"<meta\b([^>]*)>", re.I)
_ATTRIBUTE = re.compile(r"""([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.I | re.S)
# Note times are epoch milliseconds: this range is 2001-09-09 .. 2286-11-20.
_MS_RANGE = (10**12, 10**13)


def parse_note_page(
    html: str | bytes,
    url: str,
    *,
    note_id: str | None = None,
    original_templates: Iterable[str] = DEFAULT_ORIGINAL_TEMPLATES,
    max_bytes: int = DEFAULT_MAX_PAGE_BYTES,
) -> NoteItem:
    """The note of a page (full HTML, bare state text, or the JSON the URL answered).

    ``url`` is the page's final URL: it gives the note id when ``note_id`` is None,
    the base of the canonical URL, and the xsec_token when the note has none.
    Raises a ``ParseError`` subclass naming what was wrong.
    """
    templates = tuple(original_templates)
    wanted = note_id or note_id_from_url(url)
    text = page_text(html, max_bytes=max_bytes)
    landed = classify_url(url)
    if landed is not None:
        raise error_for_signal(landed, _page_label(wanted, url))
    if is_login_url(url):
        raise LoginRequired(f"{_page_label(wanted, url)}: landed on the login page")
    span = locate_state(text)
    if span is None:
        item = _note_from_meta(text, url, wanted, templates)
        if item is not None:
            return item
        signal = classify_page(text)
        if signal is not None:
            raise error_for_signal(signal, _page_label(wanted, url))
        raise StateMissing(
            f"{_page_label(wanted, url)}: no <script>{STATE_MARKER}=…</script> and no og:* note "
            f"meta tags in a page of {len(text)} characters (title {_page_title(text)!r})"
        )
    state = parse_state_literal(text[span[0] : span[1]])
    if _is_api_answer(state):
        return _note_from_api_answer(state, url, wanted, templates)
    return note_from_state(
        state,
        url,
        note_id=wanted,
        original_templates=templates,
        page_outside_state=text[: span[0]] + text[span[1] :],
    )


def note_from_state(
    state: Mapping[str, Any],
    url: str,
    *,
    note_id: str | None = None,
    original_templates: Iterable[str] = DEFAULT_ORIGINAL_TEMPLATES,
    page_outside_state: str = "",
) -> NoteItem:
    """The note in a parsed page state (``note.noteDetailMap[noteId].note``).

    The note id is ``note_id``, else the one in ``url``; without either the page's
    current note is taken (``currentNoteId``, ``firstNoteId``, else the first non-empty
    entry). ``page_outside_state`` is the rest of the HTML, searched for error-page
    markers when the note is missing.
    """
    note_id = note_id or note_id_from_url(url)
    label = _page_label(note_id, url)
    store = state.get("note")
    if isinstance(store, Mapping):
        info = store.get("serverRequestInfo")
        if isinstance(info, Mapping):
            code = info.get("errorCode")
            if isinstance(code, int) and not isinstance(code, bool) and code != 0:
                raise error_for_code(code, info.get("errMsg"), label)
        found = _find_note(store, note_id)
        if found is not None:
            found_id, note = found
            return _note_item(
                note,
                note_id=found_id,
                url=url,
                xsec_token=_text(get_field(note, "xsecToken")) or _url_token(url),
                templates=tuple(original_templates),
                source="page",
            )
    if page_outside_state:
        signal = classify_page(page_outside_state)
        if signal is not None:
            raise error_for_signal(signal, label)
    if note_id and note_id not in split_url(url).path:
        raise XsecTokenInvalid(
            f"{label}: the page at {split_url(url).path or '/'} is not the note (redirected "
            "away: missing or expired xsec_token)"
        )
    if not isinstance(store, Mapping):
        raise NoteNotFound(
            f"{label}: the state has no `note` store (stores: {keys_of(state)})", note_id=note_id
        )
    detail_map = store.get("noteDetailMap")
    raise NoteNotFound(
        f"{label}: note.noteDetailMap has no note {note_id or '(any)'} "
        f"(entries: {keys_of(detail_map) if isinstance(detail_map, Mapping) else 'none'})",
        note_id=note_id,
    )


def note_from_api_card(
    card: Mapping[str, Any],
    *,
    note_id: str,
    xsec_token: str | None,
    url: str,
    original_templates: Iterable[str] = DEFAULT_ORIGINAL_TEMPLATES,
) -> NoteItem:
    """A web-API ``note_card`` (``/feed`` ``data.items[0].note_card``) as a ``NoteItem``.

    The card has no token of its own: ``xsec_token`` is the one the note was found with.
    ``url`` gives the base of the canonical note URL.
    """
    if not isinstance(card, Mapping):
        raise ResponseMalformed(
            f"note {note_id}: note_card is a {type(card).__name__}, not an object"
        )
    card_id = _text(get_field(card, "noteId"))
    if card_id and card_id != note_id:
        raise NoteNotFound(f"note {note_id}: the card is note {card_id}", note_id=note_id)
    return _note_item(
        card,
        note_id=note_id,
        url=url,
        xsec_token=xsec_token or _text(get_field(card, "xsecToken")),
        templates=tuple(original_templates),
        source="api",
    )


# --- the mapping shared by page state and API cards ------------------------------------


def _note_item(
    note: Mapping[str, Any],
    *,
    note_id: str,
    url: str,
    xsec_token: str | None,
    templates: tuple[str, ...],
    source: NoteSource,
) -> NoteItem:
    desc = _text(get_field(note, "desc")) or ""
    note_type: NoteType = "video" if get_field(note, "type") == "video" else "normal"
    images = [
        image
        for entry in _list(get_field(note, "imageList"))
        if (image := _image(entry, templates)) is not None
    ]
    video_data = get_field(note, "video")
    video = _video(video_data) if note_type == "video" and isinstance(video_data, Mapping) else None
    return NoteItem(
        note_id=note_id,
        url=note_url(site_base(url), note_id, xsec_token),
        xsec_token=xsec_token,
        title=_text(get_field(note, "title")) or _text(get_field(note, "displayTitle")) or "",
        desc=desc,
        type=note_type,
        user=_user(get_field(note, "user")),
        tags=_tags(get_field(note, "tagList"), desc),
        published_at=_datetime_ms(get_field(note, "time")),
        updated_at=_datetime_ms(get_field(note, "lastUpdateTime")),
        ip_location=_text(get_field(note, "ipLocation")) or None,
        interact=_interact(get_field(note, "interactInfo")),
        images=images,
        video=video,
        source=source,
    )


def _image(entry: Any, templates: tuple[str, ...]) -> NoteImage | None:
    if not isinstance(entry, Mapping):
        return None
    shown = display_url(entry)
    if shown is None:
        return None  # search cards carry sizes only
    shown = clean_text(shown)
    originals = original_candidates(shown, templates)
    if not originals:
        for other in image_urls(entry):
            originals = original_candidates(other, templates)
            if originals:
                break
    return NoteImage(
        url=shown,
        original_urls=[clean_text(link) for link in originals],
        width=_int(get_field(entry, "width")),
        height=_int(get_field(entry, "height")),
        live_photo=get_field(entry, "livePhoto") is True,
    )


def _video(video: Mapping[str, Any]) -> NoteVideo:
    """Origin stream first, then every codec's master and backup URLs, in order."""
    candidates: list[str] = []
    consumer = get_field(video, "consumer")
    key = _text(get_field(consumer, "originVideoKey")) if isinstance(consumer, Mapping) else None
    if key:
        candidates.append(VIDEO_ORIGIN_TEMPLATE.format(key=key))
    media = get_field(video, "media")
    stream = get_field(media, "stream") if isinstance(media, Mapping) else None
    first: Mapping[str, Any] | None = None
    if isinstance(stream, Mapping):
        for codec in VIDEO_CODECS:
            for variant in _list(stream.get(codec)):
                if not isinstance(variant, Mapping):
                    continue
                first = first or variant
                master = _text(get_field(variant, "masterUrl"))
                if master:
                    candidates.append(master)
                candidates.extend(
                    clean_text(u)
                    for u in _list(get_field(variant, "backupUrls"))
                    if isinstance(u, str) and u
                )
    candidates = list(dict.fromkeys(candidates))
    return NoteVideo(
        url=candidates[0] if candidates else None,
        candidates=candidates,
        width=_int(get_field(first, "width")) if first else None,
        height=_int(get_field(first, "height")) if first else None,
        duration=_duration(video, first),
    )


def _duration(video: Mapping[str, Any], variant: Mapping[str, Any] | None) -> float | None:
    """Seconds: ``capa.duration``, else ``media.video.duration``, else the stream's ms."""
    media = get_field(video, "media")
    inner = get_field(media, "video") if isinstance(media, Mapping) else None
    for holder in (get_field(video, "capa"), inner):
        seconds = _number(get_field(holder, "duration")) if isinstance(holder, Mapping) else None
        if seconds is not None:
            return seconds
    milliseconds = _number(get_field(variant, "duration")) if variant else None
    return milliseconds / 1000 if milliseconds is not None else None


def _user(user: Any) -> NoteUser | None:
    if not isinstance(user, Mapping):
        return None
    user_id = _text(get_field(user, "userId"))
    if not user_id:
        return None
    return NoteUser(
        user_id=user_id,
        nickname=_text(get_field(user, "nickname")) or _text(get_field(user, "nickName")),
        avatar=_text(get_field(user, "avatar")) or _text(get_field(user, "images")),
    )


def _tags(tag_list: Any, desc: str) -> list[str]:
    """Names from ``tagList``; without one, the ``#名称[话题]#`` topics of the text."""
    names = [
        name
        for tag in _list(tag_list)
        if isinstance(tag, Mapping) and (name := _text(tag.get("name")))
    ]
    if not names:
        names = _INLINE_TOPIC.findall(desc)
    return list(dict.fromkeys(names))


def _interact(info: Any) -> NoteInteract:
    info = info if isinstance(info, Mapping) else {}
    return _counts(
        {
            name: _text(get_field(info, field))
            for name, field in (
                ("liked", "likedCount"),
                ("collected", "collectedCount"),
                ("comments", "commentCount"),
                ("shares", "shareCount"),
            )
        }
    )


def _counts(raw: dict[str, str | None]) -> NoteInteract:
    """Integers (lower bounds) from the raw count texts, which are kept alongside."""
    return NoteInteract(
        liked=parse_count(raw["liked"]),
        collected=parse_count(raw["collected"]),
        comments=parse_count(raw["comments"]),
        shares=parse_count(raw["shares"]),
        raw=raw,
    )


# --- og:* fallback ----------------------------------------------------------------------


def _note_from_meta(
    text: str, url: str, wanted: str | None, templates: tuple[str, ...]
) -> NoteItem | None:
    """The note from the page's ``og:*`` tags when the page is a note page, else None."""
    meta = _meta_tags(text)
    first = {name: value for name, value in reversed(meta)}
    og_id = note_id_from_url(first.get("og:url"))
    is_note = first.get("og:type") in ("article", "video") or any(
        name.startswith("og:xhs:note_") for name, _ in meta
    )
    if not (is_note or og_id) or not (first.get("og:title") or first.get("og:image")):
        return None
    if wanted and og_id and og_id != wanted:
        raise NoteNotFound(
            f"{_page_label(wanted, url)}: the page is note {og_id} (og:url), not {wanted}",
            note_id=wanted,
        )
    note_id = og_id or wanted
    if not note_id:
        return None
    title = first.get("og:title", "")
    if title.endswith(OG_TITLE_SUFFIX):
        title = title[: -len(OG_TITLE_SUFFIX)]
    images = [
        NoteImage(url=link, original_urls=original_candidates(link, templates))
        for name, link in meta
        if name == "og:image" and link
    ]
    video_url = first.get("og:video") or None
    raw = {
        "liked": first.get("og:xhs:note_like"),
        "collected": first.get("og:xhs:note_collect"),
        "comments": first.get("og:xhs:note_comment"),
        "shares": first.get("og:xhs:note_share"),
    }
    token = _url_token(url)
    return NoteItem(
        note_id=note_id,
        url=note_url(site_base(url), note_id, token),
        xsec_token=token,
        title=title,
        desc=first.get("description", ""),
        type="video" if video_url or first.get("og:type") == "video" else "normal",
        user=None,
        tags=list(
            dict.fromkeys(t.strip() for t in first.get("keywords", "").split(",") if t.strip())
        ),
        published_at=None,
        updated_at=None,
        ip_location=None,
        interact=_counts(raw),
        images=images,
        video=NoteVideo(url=video_url, candidates=[video_url]) if video_url else None,
        source="page",
    )


def _meta_tags(text: str) -> list[tuple[str, str]]:
    """(name or property, unescaped content) of every ``<meta>`` with both, in page order."""
    tags = []
    for match in _META.finditer(text):
        attributes = {
            name.lower(): clean_text(html_lib.unescape(next(v for v in values if v is not None)))
            for name, *values in _ATTRIBUTE.findall(match.group(1))
        }
        name = attributes.get("name") or attributes.get("property")
        if name and "content" in attributes:
            tags.append((name.lower(), attributes["content"]))
    return tags


# --- API answers given as a page ----------------------------------------------------------


def _is_api_answer(value: Mapping[str, Any]) -> bool:
    return "code" in value and ("msg" in value or "success" in value) and "note" not in value


def _note_from_api_answer(
    answer: Mapping[str, Any], url: str, wanted: str | None, templates: tuple[str, ...]
) -> NoteItem:
    label = _page_label(wanted, url)
    code = answer.get("code")
    if code != 0:
        if isinstance(code, int) and not isinstance(code, bool):
            raise error_for_code(code, answer.get("msg"), label)
        raise ResponseMalformed(f"{label}: the answer's code is {code!r}, not a number")
    data = answer.get("data")
    items = data.get("items") if isinstance(data, Mapping) else None
    for entry in _list(items):
        card = entry.get("note_card") if isinstance(entry, Mapping) else None
        if not isinstance(card, Mapping):
            continue
        card_id = _text(entry.get("id")) or _text(get_field(card, "noteId")) or wanted
        if card_id and (wanted is None or card_id == wanted):
            return note_from_api_card(
                card,
                note_id=card_id,
                xsec_token=_url_token(url),
                url=url,
                original_templates=templates,
            )
    raise NoteNotFound(f"{label}: the API answer has no note_card for it", note_id=wanted)


# --- small helpers ------------------------------------------------------------------------


def _find_note(
    store: Mapping[str, Any], wanted: str | None
) -> tuple[str, Mapping[str, Any]] | None:
    """(note id, note) for the wanted note, tolerating the ``{"undefined": …}`` key.

    An entry's id is its ``noteId``, else its map key; a key of ``"undefined"`` (the
    profile-page quirk) names nothing.
    """
    detail_map = store.get("noteDetailMap")
    if not isinstance(detail_map, Mapping):
        return None
    entries: list[tuple[str, Mapping[str, Any]]] = []
    for key, entry in detail_map.items():
        note = entry.get("note") if isinstance(entry, Mapping) else None
        if isinstance(note, Mapping) and note:
            ident = _text(get_field(note, "noteId")) or (None if key == "undefined" else str(key))
            if ident:
                entries.append((ident, note))
    if wanted:
        return next((entry for entry in entries if entry[0] == wanted), None)
    for preferred in (store.get("currentNoteId"), store.get("firstNoteId")):
        for entry in entries:
            if preferred and entry[0] == preferred:
                return entry
    return entries[0] if entries else None


def _text(value: Any) -> str | None:
    """A string field, cleaned (:func:`clean_text`): every text of the item is read here."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _datetime_ms(value: Any) -> datetime | None:
    milliseconds = _int(value)
    if milliseconds is None or not _MS_RANGE[0] <= milliseconds < _MS_RANGE[1]:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


def _url_token(url: str) -> str | None:
    tokens = parse_qs(split_url(url).query).get("xsec_token")
    return tokens[0] if tokens and tokens[0] else None


def _page_label(note_id: str | None, url: str) -> str:
    return f"note {note_id}" if note_id else f"page {split_url(url).path or url[:100]}"


def _page_title(text: str) -> str:
    match = _TITLE.search(text, 0, 65536)
    return html_lib.unescape(match.group(1)).strip()[:80] if match else ""
