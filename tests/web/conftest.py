"""The web app served by uvicorn on a free 127.0.0.1 port over the embedded Mongo-wire
server, a store of notes with real image files, and real Chromium."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
import uvicorn
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, sync_playwright
from pymongo import MongoClient
from scrapy.utils.project import get_project_settings

from crawler.web import WebConfig, create_app
from pipelines.mongo import MongoSettings
from sandbox.serving import LoopThread
from tests.export.factory import (
    comment_docs,
    note_doc,
    note_stats_docs,
    user_doc,
    user_stats_docs,
)

NOTES = 60
IMAGE_NOTE = 5  # done by the local backend: images on disk, OCR text, stats, comments
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


class Served:
    """The app under uvicorn on sandbox.serving's LoopThread (uvicorn's own ``serve``
    loop, on a socket bound here so the port is known before it starts)."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(
            uvicorn.Config(create_app(config), log_level="warning", lifespan="on")
        )
        self._serving: asyncio.Task[None] | None = None
        self._thread = LoopThread("web-app")

    async def _start(self) -> None:
        self._serving = asyncio.ensure_future(self._server.serve(sockets=[self._sock]))
        deadline = time.monotonic() + 20
        while not self._server.started:
            if self._serving.done():
                self._serving.result()  # uvicorn's own failure, if it raised one
                raise RuntimeError("the web app did not start")
            if time.monotonic() > deadline:
                raise RuntimeError("the web app did not start in 20 s")
            await asyncio.sleep(0.05)

    async def _stop(self) -> None:
        self._server.should_exit = True
        if self._serving is not None and not self._serving.done():
            await self._serving

    def __enter__(self) -> Served:
        self._thread.start(self._start, self._stop)
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.stop()
        self._sock.close()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, lower-cased headers and body of a GET (an error status is an answer too)."""
    try:
        with urlopen(Request(url, headers=headers or {}), timeout=20) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def write_image(path: Path, label: str, color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (480, 360), color)
    ImageDraw.Draw(img).text((20, 20), label, fill=(255, 255, 255))
    img.save(path, "JPEG", quality=80)


@pytest.fixture(scope="module")
def store(mongo_server, tmp_path_factory) -> Iterator[dict]:
    """A database with NOTES notes (images on disk for IMAGE_NOTE), stats, comments, users."""
    name = f"w_{uuid.uuid4().hex[:10]}"
    images = tmp_path_factory.mktemp("images")
    reports = tmp_path_factory.mktemp("reports")
    paths = [f"full/{k:02d}/note{IMAGE_NOTE}-{k}.jpg" for k in range(3)]
    for k, p in enumerate(paths):
        write_image(images / p, f"note {IMAGE_NOTE} image {k}", (40 + 60 * k, 90, 140))
    (tmp_path_factory.getbasetemp() / "secret.txt").write_text("outside the store")
    client: MongoClient = MongoClient(mongo_server.uri)
    db = client[name]
    db.notes.insert_many(
        [note_doc(i, image_paths=paths if i == IMAGE_NOTE else None) for i in range(NOTES)]
    )
    db.note_stats.insert_many(note_stats_docs(IMAGE_NOTE, points=6))
    db.comments.insert_many(comment_docs(IMAGE_NOTE))
    db.users.insert_many([user_doc(u) for u in range(5)])
    db.user_stats.insert_many([r for u in range(5) for r in user_stats_docs(u)])
    yield {"db": name, "images": images, "reports": reports, "client": client, "paths": paths}
    client.drop_database(name)
    client.close()


def config_for(mongo_server, store: dict, **changes) -> WebConfig:
    base = WebConfig(
        mongo=replace(
            MongoSettings.from_settings(get_project_settings()),
            uri=mongo_server.uri,
            database=store["db"],
        ),
        images_store=store["images"],
        report_dir=store["reports"],
        page_size=20,
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def app_url(mongo_server, store) -> Iterator[str]:
    with Served(config_for(mongo_server, store)) as served:
        yield served.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """WEB_SCREENSHOTS=DIR keeps them somewhere known; else a pytest tmp dir."""
    chosen = os.environ.get("WEB_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
