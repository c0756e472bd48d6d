"""Offline Xiaohongshu-style site for tests, demos and benchmarks (`python -m sandbox.site`).

Three origins: the site (note pages with their comment lists, search and profile pages,
whose own JavaScript calls a signed web API), a CDN (pictures with image tags, fake
videos, avatars and comment pictures) and a share-link host (``/a/<code>`` -> 302 to the
note, like xhslink.com). See ``SiteServer``.
"""

from sandbox.site.server import DEFAULT_COOKIE, Knobs, SiteServer

__all__ = ["DEFAULT_COOKIE", "Knobs", "SiteServer"]
