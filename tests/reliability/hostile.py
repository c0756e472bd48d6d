"""A site of hostile notes for the reliability tests (issue 18), over real HTTP.

:class:`HostileSite` serves note pages shaped like the real site's SSR pages (a
``window.__INITIAL_STATE__`` with ``note.noteDetailMap``) whose fields the test
chooses: a lone surrogate in the title, hundreds of pictures, megabytes of text. Its
pictures are real JPEGs served by the same server. Point a crawl at it with
:meth:`HostileSite.env` and ``-a note_ids=`` :meth:`HostileSite.note_ids`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandbox.crawlenv import isolated_environ
from sandbox.harness import ROOT
from tests.factories import note_id
from tests.media import samples
from tests.media.server import MediaServer

TOKEN = "hostiletoken"
PUBLISHED_MS = 1_767_600_000_000  # 2026-01-05


def state_script(state: dict[str, Any]) -> str:
    """The page's state script; ``json.dumps`` writes a lone surrogate as ``\\udXXX``,
    exactly as the real site's serializer does for half an emoji."""
    return f"<script>window.__INITIAL_STATE__={json.dumps(state)}</script>"


class HostileSite:
    """Note pages at ``/explore/<id>``, pictures at ``/img/<id>/<k>.jpg``."""

    def __init__(self, server: MediaServer) -> None:
        self.server = server
        self.ids: list[str] = []
        self._picture = samples.jpeg((320, 200))

    @property
    def url(self) -> str:
        return self.server.base_url

    def add_note(
        self,
        i: int,
        *,
        title: str = "一条笔记",
        desc: str = "正文",
        tags: tuple[str, ...] = ("标签",),
        nickname: str = "作者",
        ip_location: str = "上海",
        pictures: int = 1,
    ) -> str:
        """Serve note ``i`` with these fields and ``pictures`` distinct JPEGs; its id."""
        ident = note_id(0xF00000 + i)
        images = []
        for k in range(pictures):
            picture = samples.jpeg((64 + k % 200, 48 + k // 200)) if pictures > 1 else self._picture
            link = self.server.add(f"/img/{ident}/{k}.jpg", picture)
            images.append({"urlDefault": link, "width": 320, "height": 200})
        note = {
            "noteId": ident,
            "title": title,
            "desc": desc,
            "type": "normal",
            "time": PUBLISHED_MS,
            "lastUpdateTime": PUBLISHED_MS,
            "ipLocation": ip_location,
            "user": {"userId": f"u{i}", "nickname": nickname},
            "tagList": [{"name": tag} for tag in tags],
            "interactInfo": dict(
                likedCount="10", collectedCount="2", commentCount="1", shareCount="0"
            ),
            "imageList": images,
        }
        state = {"note": {"currentNoteId": ident, "noteDetailMap": {ident: {"note": note}}}}
        page = f"<html><head><title>{ident}</title></head><body>{state_script(state)}</body></html>"
        self.server.add(f"/explore/{ident}", page.encode(), content_type="text/html")
        self.ids.append(ident)
        return ident

    def note_ids(self) -> str:
        """The ``-a note_ids=`` value for every note served."""
        return ",".join(f"{ident}:{TOKEN}" for ident in self.ids)

    def env(self, **extra: str) -> dict[str, str]:
        """A crawl's environment pointed at this site, isolated from any real service."""
        return {
            **isolated_environ(),
            "PYTHONPATH": str(ROOT),
            "XHS_BASE_URL": self.url,
            "XHS_COOKIES": "a1=sandbox; web_session=sandbox",
            "XHS_IMAGE_ORIGIN_TEMPLATES": f"{self.url}/orig/{{token}}",
            **extra,
        }


@contextmanager
def hostile_site() -> Iterator[HostileSite]:
    with MediaServer().running() as server:
        yield HostileSite(server)
