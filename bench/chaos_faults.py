"""Fault drivers of the chaos run that reach outside the servers' own knobs.

- :class:`GeminiTap`: a recording HTTP proxy in front of the Gemini emulator, one
  listening port per crawl process. Each ``generateContent`` call is recorded with the
  notes it carried (read from the prompt), a digest of each note's images, when it
  started and ended on this process's monotonic clock, and whether the answer was a
  usable one (``STOP`` and parseable JSON). That is what the emulator's own request log
  cannot say: which note a billed request was for, and which requests were in flight
  when a crawl was killed.
- :class:`StoreVolume`: the image store on a tmpfs of its own that can be made to run
  out of space mid-run (``mount -o remount,size=``); without the right to mount, the
  fault is reported as not injected.
- :func:`seed_spool`: a spool left by an earlier run: valid records, structurally
  invalid ones and a torn last line.
- :func:`wait_for` and :class:`ProcessFault`: kill -9 or a forced stop once a crawl
  has stored a number of new notes.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from crawler.core.text import clean_text
from crawler.core.timeutil import utcnow
from crawler.parsing.notes import parse_note_page
from pipelines.storage.spool import dumps_record
from pipelines.storage.unit import prepare_unit
from sandbox.dataset import NoteSpec, split_tag
from sandbox.serving import LoopThread

# --- which notes a Gemini request carried --------------------------------------------------

_PACK_NOTE = re.compile(r"^Note ([0-9A-Za-z_-]+):", re.MULTILINE)
_TEXT_TITLE = re.compile(r"标题：(.*?)\n正文：(.*?)(?:\n标签：|$)", re.DOTALL)
_IMAGES_TITLE = re.compile(r"（标题：(.*?)）的其余")
_TEXT_TAGS = re.compile(r"\n标签：([^\n]*)")


@dataclass(frozen=True)
class Carried:
    """One note's share of a request: its id (``?a|b`` when the prompt could not tell
    two notes apart), whether its text went too, and a digest of its images' bytes."""

    note_id: str
    with_text: bool
    images_digest: str

    @property
    def key(self) -> tuple[str, bool, str]:
        """Same key, same content sent again: a second usable answer is a double spend."""
        return (self.note_id, self.with_text, self.images_digest)


def _parts(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [p for c in body.get("contents") or [] for p in c.get("parts") or []]


def _inline(part: Mapping[str, Any]) -> str | None:
    """An image part's base64 text (hashed as it is: decoding each picture would cost
    the proxy, which shares a process with the sandbox site, real time)."""
    data = part.get("inlineData") or part.get("inline_data")
    return str(data.get("data") or "") if data else None


def _decode(text: str) -> bytes:
    # The SDK writes bytes URL-safe; pad to a multiple of 4 for the decoder.
    return base64.urlsafe_b64decode(
        text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
    )


class NoteIndex:
    """The sandbox notes a request can be about, by title (as the crawler cleans it)."""

    def __init__(self, notes: Iterable[NoteSpec]) -> None:
        self.by_title: dict[str, list[NoteSpec]] = {}
        self.by_index: dict[int, NoteSpec] = {}
        for note in notes:
            self.by_title.setdefault(clean_text(note.title).strip(), []).append(note)
            self.by_index[note.index] = note

    def carried(self, body: Mapping[str, Any]) -> list[Carried]:
        """The notes of one ``generateContent`` body (packed or one note)."""
        parts = _parts(body)
        texts = [p.get("text") or "" for p in parts]
        if any(_PACK_NOTE.search(t) for t in texts):
            return self._packed(parts)
        images = [b for b in (_inline(p) for p in parts) if b is not None]
        text = "\n".join(texts)
        match = _TEXT_TITLE.search(text)
        with_text = match is not None
        if match is None:
            match = _IMAGES_TITLE.search(text)
        if match is None:
            return [Carried("?unknown", False, _digest(images))]
        desc = match.group(2).strip() if with_text else ""
        tags = _TEXT_TAGS.search(text) if with_text else None
        which = self._which(match.group(1).strip(), desc, tags.group(1) if tags else "", images)
        return [Carried(which, with_text, _digest(images))]

    def _packed(self, parts: Sequence[Mapping[str, Any]]) -> list[Carried]:
        members: list[tuple[str, list[str]]] = []
        for part in parts:
            found = _PACK_NOTE.search(part.get("text") or "")
            if found:
                members.append((found.group(1), []))
            elif members and (data := _inline(part)) is not None:
                members[-1][1].append(data)
        return [Carried(note_id, True, _digest(images)) for note_id, images in members]

    def _which(self, title: str, desc: str, tags: str, images: Sequence[str]) -> str:
        candidates = self.by_title.get(title, [])
        if len(candidates) > 1 and desc:
            head = desc[:40]
            narrowed = [n for n in candidates if clean_text(n.desc).strip().startswith(head)]
            candidates = narrowed or candidates
        if len(candidates) > 1 and tags:
            narrowed = [n for n in candidates if "、".join(n.tags) == tags.strip()]
            candidates = narrowed or candidates
        if len(candidates) > 1:
            tagged = {i for i in (_tag_index(_decode(b)) for b in images[:3]) if i is not None}
            narrowed = [n for n in candidates if n.index in tagged]
            candidates = narrowed or candidates
        if not candidates:
            return "?unknown"
        if len(candidates) > 1:
            return "?" + "|".join(sorted(n.note_id for n in candidates))
        return candidates[0].note_id

    def note_id_of(self, index: int) -> str | None:
        note = self.by_index.get(index)
        return note.note_id if note else None


def _tag_index(data: bytes) -> int | None:
    """The note index drawn into a sandbox picture (None: not readable)."""
    from PIL import Image

    from sandbox import imagetag

    try:
        tag = imagetag.decode(Image.open(io.BytesIO(data)).convert("RGB"))
    except Exception:  # an undecodable picture simply tells nothing
        return None
    parts = split_tag(tag) if tag is not None else None
    return parts[1] if parts else None


def _digest(images: Sequence[str]) -> str:
    h = hashlib.sha256()
    for data in images:
        h.update(hashlib.sha256(data.encode()).digest())
    return h.hexdigest()[:16]


def read_answer(status: int, payload: bytes) -> tuple[bool, list[str]]:
    """Whether a billed answer is one the crawler can store (first candidate ``STOP``
    with JSON text), and the summaries it gives (one per note; none for pictures only)."""
    if status != 200:
        return False, []
    try:
        answer = json.loads(payload)
        candidate = answer["candidates"][0]
        text = "".join(p.get("text", "") for p in candidate["content"]["parts"])
        parsed = json.loads(text)
    except (ValueError, KeyError, IndexError, TypeError):
        return False, []
    if candidate.get("finishReason") != "STOP" or not isinstance(parsed, dict):
        return False, []
    entries = parsed.get("notes") if isinstance(parsed.get("notes"), list) else [parsed]
    summaries = [e["summary"] for e in entries if isinstance(e, dict) and e.get("summary")]
    return True, summaries


def usable_answer(status: int, payload: bytes) -> bool:
    """See :func:`read_answer`."""
    return read_answer(status, payload)[0]


# --- the recording proxy ---------------------------------------------------------------------


# How late the tap may stamp a request the crawler had sent (see TapRecord.in_flight_at).
TAP_LAG_S = 0.05


@dataclass
class TapRecord:
    """One ``generateContent`` call through the tap (times: this process's monotonic)."""

    label: str  # the crawl process it came from
    started: float
    ended: float | None = None  # None: the upstream never answered
    status: int = 0
    carried: list[Carried] = field(default_factory=list)
    usable: bool = False
    text_chars: int = 0  # characters of text sent (the prompt with the note's text)
    summaries: list[str] = field(default_factory=list)  # of a usable answer

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label, "started": round(self.started, 3),
            "ended": None if self.ended is None else round(self.ended, 3),
            "status": self.status, "usable": self.usable, "text_chars": self.text_chars,
            "carried": [[c.note_id, c.with_text, c.images_digest] for c in self.carried],
        }  # fmt: skip

    @property
    def billed(self) -> bool:
        """The emulator admits (and counts) a request it answers with 200."""
        return self.status == 200

    def in_flight_at(self, fault: ProcessFault, grace_s: float) -> bool:
        """Whether this request was still in flight when ``fault`` killed its process:
        sent before, and its answer not yet durable (none of its summaries in the cache
        or in a stored note right after the kill). An answer without summaries (pictures
        only) counts as in flight when it came less than ``grace_s`` before the kill.

        "Sent before": a SIGKILLed process sends nothing after the kill, so every
        request of a killed crawl was sent before it, even one the tap stamps a few ms
        after the moment (the crawler's bytes wait in the socket while the tap's loop,
        which shares a process with the site, gets to them: in a short run of
        2026-12-02 run2 was killed at 11790.244-11790.248 s, as its lost answers' ages
        tell, and its last request, stamped 11790.247 s, answered and lost with it, was
        called a double spend when run3 paid for it). A forced stop is asked, not done: the process lives on between the two
        signals and must start no request then, so a request stamped more than
        :data:`TAP_LAG_S` after the first signal is not in flight at it."""
        moment = fault.moment
        if moment is None:
            return False
        if fault.kind != "kill" and self.started > moment + TAP_LAG_S:
            return False
        if self.usable and self.summaries and fault.durable is not None:
            return not set(self.summaries) <= fault.durable
        return self.ended is None or self.ended >= moment - grace_s


_LABEL = web.AppKey("label", str)  # the crawl process a tap port belongs to


class GeminiTap:
    """A proxy to ``upstream`` with one port per label: ``tap.url(label)``."""

    def __init__(self, upstream: str, labels: Sequence[str], index: NoteIndex) -> None:
        self.upstream = upstream.rstrip("/")
        self.labels = tuple(labels)
        self.index = index
        self.records: list[TapRecord] = []
        self.ports: dict[str, int] = {}
        self._lock = threading.Lock()
        self._thread = LoopThread("gemini-tap")
        self._runners: list[web.AppRunner] = []
        self._session: ClientSession | None = None

    def url(self, label: str) -> str:
        return f"http://127.0.0.1:{self.ports[label]}"

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        label = request.app[_LABEL]
        arrived = time.monotonic()  # the headers are in; the body (the pictures) follows
        body = await request.read()
        record = None
        if request.method == "POST" and request.path.endswith(":generateContent"):
            record = TapRecord(label, arrived)
            try:
                decoded = json.loads(body)
                record.carried = self.index.carried(decoded)
                record.text_chars = sum(len(p.get("text") or "") for p in _parts(decoded))
            except (ValueError, AttributeError, TypeError):
                record.carried = [Carried("?unreadable", False, "")]
            with self._lock:
                self.records.append(record)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "transfer-encoding")
        }
        assert self._session is not None
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            status = upstream.status
            content_type = upstream.headers.get("Content-Type", "application/json")
        if record is not None:
            record.ended, record.status = time.monotonic(), status
            record.usable, record.summaries = read_answer(status, payload)
        return web.Response(status=status, body=payload, headers={"Content-Type": content_type})

    def start(self) -> GeminiTap:
        async def startup() -> None:
            self._session = ClientSession(timeout=ClientTimeout(total=600))
            for label in self.labels:
                sub = web.Application(client_max_size=64 * 1024 * 1024)
                sub[_LABEL] = label
                sub.router.add_route("*", "/{path:.*}", self._forward)
                runner = web.AppRunner(sub, access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                self.ports[label] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                self._runners.append(runner)

        async def cleanup() -> None:
            for runner in self._runners:
                await runner.cleanup()
            if self._session is not None:
                await self._session.close()

        self._thread.start(startup, cleanup)
        return self

    def stop(self) -> None:
        self._thread.stop()

    def __enter__(self) -> GeminiTap:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def snapshot(self) -> list[TapRecord]:
        with self._lock:
            return list(self.records)

    def dump(self, path: Path) -> None:
        """Every record as JSON lines (what the spend figures were computed from)."""
        path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in self.snapshot()))


# --- an image store that runs out of space ---------------------------------------------------


FULL_MARKER = ".store-full"  # the fallback's switch, a file in the store's directory


class StoreVolume:
    """The image store at ``path``, made to run out of space on :meth:`fill_up`.

    With the right to mount (``tmpfs=True`` and root), ``path`` is a tmpfs of its own,
    shrunk to what it holds plus a margin: every later write fails with ENOSPC on the
    kernel's word. Otherwise (``mode`` says which) the crawls load :class:`FullDisk`,
    which makes the local files store refuse every write with ENOSPC once the marker
    file exists; ``crawl_settings()`` gives what a crawl needs for it.
    """

    def __init__(self, path: Path, size_bytes: int = 1 << 30, *, tmpfs: bool = True) -> None:
        self.path = Path(path)
        self.size_bytes = size_bytes
        self.tmpfs = tmpfs
        self.mounted = False
        self.why_not = ""
        self.filled_at_bytes: int | None = None

    @property
    def mode(self) -> str:
        return "tmpfs" if self.mounted else "enospc_extension"

    def __enter__(self) -> StoreVolume:
        self.path.mkdir(parents=True, exist_ok=True)
        if not self.tmpfs:
            self.why_not = "tmpfs not asked for"
            return self
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_bytes}", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
        )
        self.mounted = done.returncode == 0
        self.why_not = "" if self.mounted else (done.stderr.strip() or f"exit {done.returncode}")
        return self

    def crawl_settings(self, extensions: Mapping[str, int | None]) -> dict[str, str]:
        """Settings of a crawl writing to this store (``extensions``: the crawl's own)."""
        if self.mounted:
            return {}
        return {
            "EXTENSIONS": json.dumps({**extensions, f"{__name__}.FullDisk": 0}),
            "CHAOS_FULL_DISK_MARKER": str(self.path / FULL_MARKER),
        }

    def used_bytes(self) -> int:
        return sum(p.stat().st_blocks * 512 for p in self.path.rglob("*") if p.is_file())

    def fill_up(self, margin_bytes: int) -> bool:
        """Run out of space: the tmpfs shrunk to what it holds plus ``margin_bytes``,
        or the marker written. True once done."""
        used = self.used_bytes()
        if not self.mounted:
            (self.path / FULL_MARKER).write_text("full\n")
            self.filled_at_bytes = used
            return True
        size = used + margin_bytes
        done = subprocess.run(
            ["mount", "-o", f"remount,size={size}", str(self.path)], capture_output=True
        )
        if done.returncode == 0:
            self.filled_at_bytes = size
        return done.returncode == 0

    def __exit__(self, *exc_info: object) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


class FullDisk:
    """Scrapy extension, the chaos run's full disk where it may not mount one: once the
    file ``CHAOS_FULL_DISK_MARKER`` names exists, every write of the local files store
    fails with ``OSError(ENOSPC)``, as the kernel fails it on a full disk. Off without
    the setting (not a project knob: only the chaos run sets it, hence the default)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    @classmethod
    def from_crawler(cls, crawler: Any) -> FullDisk:
        from scrapy.exceptions import NotConfigured

        marker = crawler.settings.get("CHAOS_FULL_DISK_MARKER", "")
        if not marker:
            raise NotConfigured("CHAOS_FULL_DISK_MARKER not set")
        ext = cls(marker)
        ext.install()
        return ext

    def install(self) -> Callable[[], None]:
        """Wrap ``FSFilesStore.persist_file`` in this process; returns the undo."""
        from scrapy.pipelines.files import FSFilesStore

        original = FSFilesStore.persist_file
        marker = self.marker

        def persist_file(store: Any, path: str, buf: Any, info: Any, meta: Any = None,
                         headers: Any = None) -> Any:  # fmt: skip
            if os.path.exists(marker):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
            return original(store, path, buf, info, meta=meta, headers=headers)

        FSFilesStore.persist_file = persist_file  # type: ignore[method-assign]

        def undo() -> None:
            FSFilesStore.persist_file = original  # type: ignore[method-assign]

        return undo


# --- a spool left by an earlier run -----------------------------------------------------------


@dataclass(frozen=True)
class SeededSpool:
    good_ids: tuple[str, ...]  # notes only the spool holds: replayed exactly once
    bad_lines: int  # lines that must go aside to ``.bad``, once


def seed_spool(path: Path, site_url: str, notes: Sequence[NoteSpec]) -> SeededSpool:
    """Write ``notes`` (fetched from the site and parsed, deferred for quota) as a
    previous run's spool records, with three structurally invalid records among them
    (no ``note_id``, wrong types, not an object) and a torn last line."""
    units = []
    now = utcnow()
    for note in notes:
        url = f"{site_url}/explore/{note.note_id}?xsec_token={note.xsec_token}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            item = parse_note_page(answer.read(), url)
        item.enrichment = EnrichmentState(
            status=EnrichmentStatus.DEFERRED, reason="quota_per_day", next_attempt_at=now,
            updated_at=now,
        )  # fmt: skip
        units.append(prepare_unit(item, now=now, run_id="chaos-earlier-run", max_chars=10_000))
    no_id = {k: v for k, v in units[0].items() if k != "note_id"}
    wrong_types = {**units[0], "note_id": 12345, "fields": "not an object"}
    lines = [dumps_record(u) for u in units[:1]]
    lines += [dumps_record(no_id), dumps_record(wrong_types), json.dumps([1, 2, 3])]
    lines += [dumps_record(u) for u in units[1:]]
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = dumps_record(units[-1])[: len(dumps_record(units[-1])) // 2]
    path.write_text("\n".join(lines) + "\n" + torn)
    return SeededSpool(tuple(n.note_id for n in notes), bad_lines=4)


# --- killing crawls ----------------------------------------------------------------------------


def wait_for(
    progress: Callable[[], int], target: int, proc: subprocess.Popen[bytes], timeout: float = 600
) -> bool:
    """Block until ``progress()`` reaches ``target`` (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while progress() < target:
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@dataclass
class ProcessFault:
    """One fault on a crawl process: ``kill`` (SIGKILL) or ``forced_stop`` (``signal``
    twice, 0.3 s apart: Scrapy's forced, unclean shutdown), once the run's progress (the
    notes it newly stored) reaches ``at_notes``. ``moment`` and ``seen`` record when it
    fired."""

    kind: str
    at_notes: int
    signal: int = signal.SIGKILL
    moment: float | None = None
    seen: int = 0
    # Summaries in the cache or in stored notes right after the fault (what survived it).
    durable: frozenset[str] | None = None

    def fire(self, proc: subprocess.Popen[bytes], progress: Callable[[], int]) -> bool:
        if not wait_for(progress, self.at_notes, proc):
            return False
        self.seen = progress()
        self.moment = time.monotonic()
        if self.kind == "kill":
            proc.kill()
        else:
            proc.send_signal(self.signal)
            time.sleep(0.3)
            if proc.poll() is None:
                proc.send_signal(self.signal)
        return True

    def describe(self) -> dict[str, Any]:
        name = "SIGKILL" if self.kind == "kill" else f"{signal.Signals(self.signal).name} twice"
        return {"fault": name, "planned_at_new_notes": self.at_notes, "new_notes_seen": self.seen}
