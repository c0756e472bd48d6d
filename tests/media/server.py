"""A small real HTTP server (aiohttp on sandbox.serving's LoopThread) serving test media
and fixed pages.

Routes are registered before a crawl: fixed bodies with any status and content type,
redirects, and large bodies streamed with or without ``Content-Length``. Every
request path is logged, so a test can assert that a refused URL never arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiohttp import web

from sandbox.serving import LoopThread

_CHUNK = b"\0" * (1024 * 1024)


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "image/jpeg"
    charset: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream_bytes: int = 0  # > 0: stream that many zero bytes instead of ``body``
    declare_length: bool = True  # with stream_bytes: send Content-Length or go chunked


class MediaServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._thread = LoopThread("media-server")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def add(self, path: str, body: bytes = b"", **kwargs: object) -> str:
        self.routes[path] = Route(body=body, **kwargs)  # type: ignore[arg-type]
        return self.url(path)

    def hits(self, path: str) -> int:
        return self.requests.count(path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        route = self.routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="not found", content_type="text/plain")
        if not route.stream_bytes:
            return web.Response(
                status=route.status,
                body=route.body,
                content_type=route.content_type,
                charset=route.charset,
                headers=route.headers,
            )
        response = web.StreamResponse(status=route.status, headers=route.headers)
        response.content_type = route.content_type
        if route.declare_length:
            response.content_length = route.stream_bytes
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        try:
            while sent < route.stream_bytes:
                chunk = _CHUNK[: route.stream_bytes - sent]
                await response.write(chunk)
                sent += len(chunk)
        except (ConnectionError, asyncio.CancelledError):
            return response  # the client hung up, as it should over the size cap
        await response.write_eof()
        return response

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @contextmanager
    def running(self) -> Iterator[MediaServer]:
        self._thread.start(self._start, self._stop)
        try:
            yield self
        finally:
            self._thread.stop()
