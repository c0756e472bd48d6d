"""Image tokens and original-image candidate URLs.

A displayed note image lives at ``{cdn}/{YYYYMMDDHHmm}/{32hex}/{token}!{style}``: the
timestamp/signature prefix expires, the style suffix picks a watermarked rendition.
The token (which may itself contain ``/``, e.g. ``notes_pre_post/…`` or
``spectrum/…``) names the original, reachable through stable hosts given as
templates with a ``{token}`` placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

DEFAULT_ORIGINAL_TEMPLATES: tuple[str, ...] = (
    "https://sns-img-bd.xhscdn.com/{token}",
    "https://ci.xiaohongshu.com/{token}",
)
TOKEN_PLACEHOLDER = "{token}"

# The expiring `{YYYYMMDDHHmm}/{signature}/` prefix of sns-webpic-style URLs.
_STAMP = re.compile(r"\d{8,14}")
_TOKEN = re.compile(r"[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*")

# Display-URL preference for an image: scene of an `infoList` entry, or a plain field.
# WB_* scenes are 2024+; CRD_* scenes are 2023 (CRD_WM_* is the full-size rendition).
_SCENE_ORDER = ("WB_DFT", "urlDefault", "CRD_WM_", "urlPre", "WB_PRV", "CRD_PRV_", "*", "url")


def split_url(url: str) -> SplitResult:
    """``urlsplit`` that never raises: an unparsable URL (a stray ``[`` in the host, as
    page data can hold) splits into empty parts."""
    try:
        return urlsplit(url)
    except ValueError:
        return SplitResult("", "", "", "", "")


def image_token(url: str | None) -> str | None:
    """The image token of a CDN URL, or None when the URL carries none.

    ``http://host/202507162131/b675…/1040g…!nd_dft_wlteh_jpg_3`` → ``1040g…``; a URL
    without the timestamp/signature prefix (an original, or a 2023 cover such as
    ``https://sns-img-hw.xhscdn.net/87efa500-…``) gives its whole path. Style suffix and
    query are dropped.
    """
    if not url:
        return None
    path = split_url(url.strip()).path.split("!", 1)[0]
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) >= 3 and _STAMP.fullmatch(segments[0]):
        segments = segments[2:]
    token = "/".join(segments)
    if not _TOKEN.fullmatch(token) or any(segment in (".", "..") for segment in segments):
        return None
    return token


def original_candidates(
    url: str | None, templates: Iterable[str] = DEFAULT_ORIGINAL_TEMPLATES
) -> list[str]:
    """Original-image URLs for a displayed image URL, in template order (deduplicated)."""
    token = image_token(url)
    if token is None:
        return []
    return _unique(template.replace(TOKEN_PLACEHOLDER, token) for template in templates)


def display_url(image: Mapping[str, Any]) -> str | None:
    """The URL to show for an image entry of a note (page camelCase or API snake_case).

    The ``WB_DFT`` rendition first, then ``urlDefault``, the 2023 ``CRD_WM_*`` scene,
    ``urlPre``, the preview scenes, any other scene, and finally a bare ``url``.
    """
    by_scene: dict[str, str] = {}
    for info in _info_list(image):
        scene = info.get("imageScene") or info.get("image_scene")
        link = info.get("url")
        if isinstance(scene, str) and isinstance(link, str) and link:
            by_scene.setdefault(scene, link)
    fields = {
        "urlDefault": image.get("urlDefault") or image.get("url_default"),
        "urlPre": image.get("urlPre") or image.get("url_pre"),
        "url": image.get("url"),
    }
    for choice in _SCENE_ORDER:
        if choice in fields:
            value = fields[choice]
            if isinstance(value, str) and value:
                return value
        elif choice == "*":
            if by_scene:
                return next(iter(by_scene.values()))
        else:
            for scene, link in by_scene.items():
                if scene == choice or (choice.endswith("_") and scene.startswith(choice)):
                    return link
    return None


def image_urls(image: Mapping[str, Any]) -> list[str]:
    """Every URL an image entry names (to find a token when the display URL has none)."""
    urls = [info.get("url") for info in _info_list(image)]
    urls += [image.get(key) for key in ("urlDefault", "url_default", "urlPre", "url_pre", "url")]
    return _unique(url for url in urls if isinstance(url, str) and url)


def _info_list(image: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    infos = image.get("infoList") or image.get("info_list") or []
    return [info for info in infos if isinstance(info, Mapping)] if isinstance(infos, list) else []


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
