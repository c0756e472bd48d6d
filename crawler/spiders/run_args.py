"""Distributed runs (``REDIS_URL``): the content options of a run are the run's, not a worker's.

Spider arguments belong to the process that was given them, so an extra worker started
with plain ``scrapy crawl xhs`` would crawl with ``authors`` off and ``comments=0``
while the seeding worker reads profiles and threads. Here:

- the *seeding* worker (one given discovery inputs: ``urls``, ``note_ids``,
  ``keywords`` or ``users``) publishes its content options (:data:`ADOPTED`) under
  the run's key, ``xhs:$REDIS_RUN:<spider>:run_args`` (beside the queue and the
  duplicate filter, ``crawler/addons.py``), replacing what an earlier seeder of that run
  published;
- every other worker of the run adopts them before it starts (it waits up to
  ``DISTRIBUTED_IDLE_TIMEOUT`` for a seeder that has not published yet) and logs one
  line, "adopted run arguments from <worker>";
- a worker's own ``-a`` for one of those options that differs from the run's value is
  refused (one line, exit status 2): one run reads every note the same way. An option
  the seeder did not give has its default for the run (``authors=0``, ``comments=0``,
  no ``since``); giving the same value again is fine.

The record is JSON: ``{"worker": "host:pid", "published_at": ISO time, "args": {…}}``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from scrapy_redis.connection import get_redis_from_settings

from crawler.spiders.flags import parse_flag

logger = logging.getLogger(__name__)

# The spider arguments that say how a note is read (not which notes): the run's.
ADOPTED = ("authors", "comments", "replies", "since", "max_age")
POLL_SECONDS = 0.2


def run_args_key(settings: Any, spider_name: str) -> str:
    """``xhs:$REDIS_RUN:<spider>:run_args``: named as the run's queue and dupefilter keys."""
    return f"xhs:{settings.get('REDIS_RUN')}:{spider_name}:run_args"


def content_args(args: Mapping[str, Any]) -> dict[str, str]:
    """The adopted options among a spider's arguments, as strings."""
    return {name: str(args[name]) for name in ADOPTED if args.get(name) not in (None, "")}


def _normal(name: str, value: str) -> str:
    """A value as compared: ``authors`` as 1/0, numbers without leading zeros, lower
    case; an option not given is its default (authors 0, comments and replies 0)."""
    text = value.strip().lower()
    if name == "authors":
        try:
            return "1" if parse_flag(name, text) else "0"
        except ValueError:  # refused where the worker's own arguments are parsed
            return text
    if name in ("comments", "replies") and not text:
        return "0"
    return str(int(text)) if text.isdigit() else text


@dataclass(frozen=True)
class Published:
    worker: str
    args: dict[str, str]

    def conflicts(self, own: Mapping[str, str]) -> list[str]:
        """``name=own`` for each of the worker's own options the run says otherwise."""
        return [
            f"{name}={value} (the run's: {name}={self.args.get(name, '(not given)')})"
            for name, value in sorted(own.items())
            if _normal(name, value) != _normal(name, self.args.get(name, ""))
        ]

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.args.items())) or "defaults"


class RunArgs:
    """The run's published content options in Redis (sync client: read before start)."""

    def __init__(self, server: Any, key: str) -> None:
        self.server = server
        self.key = key

    @classmethod
    def from_settings(cls, settings: Any, spider_name: str) -> RunArgs | None:
        """None without ``REDIS_URL`` (not a distributed run)."""
        if not settings.get("REDIS_URL"):
            return None
        return cls(get_redis_from_settings(settings), run_args_key(settings, spider_name))

    def publish(self, args: Mapping[str, str]) -> str:
        """Publish the seeder's options; returns this worker's name."""
        worker = f"{socket.gethostname()}:{os.getpid()}"
        record = {
            "worker": worker,
            "published_at": datetime.now(UTC).isoformat(),
            "args": dict(args),
        }
        self.server.set(self.key, json.dumps(record, ensure_ascii=False))
        return worker

    def read(self) -> Published | None:
        raw = self.server.get(self.key)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            args = {str(k): str(v) for k, v in dict(record["args"]).items() if k in ADOPTED}
            return Published(str(record["worker"]), args)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("xhs: unreadable run arguments at %s (%s): ignored", self.key, exc)
            return None

    def wait(self, timeout: float) -> Published | None:
        """The published options, waiting up to ``timeout`` seconds for a seeder."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.read()
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(POLL_SECONDS)


def check_run_args(
    settings: Any, spider_name: str, own: Mapping[str, Any], *, seeding: bool
) -> str | None:
    """The crawl command's check before start: the line refusing a worker whose own
    options conflict with the run's published ones (None: fine, or nothing to check)."""
    if seeding:
        return None
    try:
        store = RunArgs.from_settings(settings, spider_name)
        published = store.read() if store is not None else None
    except RedisError:
        return None  # the scheduler will say that Redis is down
    if published is None:
        return None
    return _refusal(published, content_args(own), settings)


def share_run_args(
    crawler: Any, spider_name: str, own: Mapping[str, Any], *, seeding: bool
) -> dict[str, str]:
    """At the spider's creation: publish (a seeder) or adopt (another worker) the run's
    content options. Returns the options this worker must take on (empty: its own).
    Raises ValueError with the refusal line on a conflict."""
    settings = crawler.settings
    store = RunArgs.from_settings(settings, spider_name)
    if store is None:
        return {}
    mine = content_args(own)
    try:
        if seeding:
            store.publish(mine)
            logger.info("xhs: published run arguments at %s: %s", store.key,
                        Published("", mine).describe())  # fmt: skip
            return {}
        published = store.wait(settings.getfloat("DISTRIBUTED_IDLE_TIMEOUT"))
    except RedisError as exc:
        logger.warning("xhs: run arguments not shared (Redis: %s): this worker's own", exc)
        return {}
    if published is None:
        logger.warning("xhs: no run arguments published at %s: this worker's own", store.key)
        return {}
    refusal = _refusal(published, mine, settings)
    if refusal:
        raise ValueError(refusal)
    logger.info("xhs: adopted run arguments from %s: %s", published.worker, published.describe())
    return {**published.args, **mine}


def _refusal(published: Published, mine: Mapping[str, str], settings: Any) -> str | None:
    conflicts = published.conflicts(mine)
    if not conflicts:
        return None
    return (
        f"{', '.join(conflicts)}: this worker's -a conflicts with the arguments of run "
        f"{settings.get('REDIS_RUN')!r} published by {published.worker}; drop it, or use "
        "another REDIS_RUN"
    )
