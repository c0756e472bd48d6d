"""Offline Xiaohongshu-style site for tests, demos and benchmarks (`python -m sandbox.site`).

Two origins: the site (note pages, search and profile pages whose own JavaScript calls a
signed web API) and a CDN (pictures with image tags, fake videos). See ``SiteServer``.
"""

from sandbox.site.server import DEFAULT_COOKIE, Knobs, SiteServer

__all__ = ["DEFAULT_COOKIE", "Knobs", "SiteServer"]
