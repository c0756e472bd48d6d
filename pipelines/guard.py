"""The item-pipeline exception guard: an unexpected exception never drops an item.

Scrapy drops an item whose ``process_item`` raises: the note would vanish from the run
(never stored) with nothing on record but a log line. Every item pipeline of ours wraps
its ``process_item`` in :func:`guard_item` instead::

    class MediaPipeline:
        @guard_item("media")
        async def process_item(self, item): ...

An exception other than ``DropItem`` (a deliberate drop) then keeps the item: it goes
on to the next stage as it is, with an :class:`~crawler.core.items.ItemError` (stage,
reason ``internal_error``, the exception's type and clipped message) appended to its
``errors`` when it has that field; stats count ``pipeline/errors`` and
``pipeline/errors/<stage>``; the traceback goes to the log. Storage stores the note
with its ``errors``, so the record says which stage's work is missing and why.

Known failures stay each stage's own business (they are data: an image ``failed``
with a reason, an enrichment ``deferred``); the guard is for the bugs nobody foresaw.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from crawler.core.items import ItemError

__all__ = ["INTERNAL_ERROR", "guard_item", "record_error"]

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "internal_error"
MAX_MESSAGE_CHARS = 300

Method = TypeVar("Method", bound=Callable[..., Awaitable[Any]])


def record_error(item: Any, stage: str, exc: BaseException, stats: Any = None) -> ItemError:
    """Note ``exc`` on ``item`` (its ``errors`` list, when it has one) and in ``stats``."""
    message = f"{type(exc).__name__}: {exc}"
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    error = ItemError(stage=stage, reason=INTERNAL_ERROR, message=message)
    adapter = ItemAdapter(item) if ItemAdapter.is_item(item) else None
    if adapter is not None and "errors" in adapter.field_names():
        errors = adapter.get("errors")
        if errors is None:
            adapter["errors"] = errors = []
        errors.append(error)
    if stats is not None:
        stats.inc_value("pipeline/errors")
        stats.inc_value(f"pipeline/errors/{stage}")
    return error


def guard_item(stage: str) -> Callable[[Method], Method]:
    """Decorate an async ``process_item(self, item, ...)``: see the module docstring.

    The pipeline's stats are ``self.crawler.stats`` (every pipeline of ours keeps its
    crawler); without them only the item and the log record the error.
    """

    def decorate(method: Method) -> Method:
        @functools.wraps(method)
        async def guarded(self: Any, item: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await method(self, item, *args, **kwargs)
            except DropItem:
                raise
            except Exception as exc:
                crawler = getattr(self, "crawler", None)
                record_error(item, stage, exc, getattr(crawler, "stats", None))
                logger.exception(
                    "%s stage failed on %s %s: the item goes on without its %s work",
                    stage,
                    type(item).__name__,
                    _label(item),
                    stage,
                )
                return item

        return guarded  # type: ignore[return-value]

    return decorate


def _label(item: Any) -> str:
    for name in ("note_id", "comment_id", "user_id"):
        value = getattr(item, name, None)
        if isinstance(value, str):
            return value
    return "(no id)"
