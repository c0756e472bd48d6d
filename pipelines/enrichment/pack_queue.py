"""PackQueue: notes wait a bounded time to share one Gemini request, then go as a pack.

``await queue.enrich(note_id, note, conv)`` has the contract of
:meth:`GeminiRunner.enrich`: the note's :class:`NoteEnrichment`, with ``conv`` holding
the requests it took part in, the tokens of its share, the model and the key; or the
runner's exceptions (``QuotaDeferred``, ``EnrichmentUnavailable``, ``EnrichFailure``).

- A pack goes as soon as it is full (:func:`packing.pick_pack` over the notes waiting:
  ``ENRICH_MAX_NOTES_PER_REQUEST``, the output cap, the output estimate; a note that an
  answer could not tell from one already in the pack waits for the next), or
  ``ENRICH_PACK_WAIT`` seconds after its first note arrived, whatever has come by then.
- Every answer is checked (:func:`packing.check_pack`). A note whose entry is missing,
  duplicated, carries another note's images, title or opening is sent again in a later pack;
  after ``retries`` such tries it goes alone (the one-note :class:`GeminiRunner`), as
  does a pack of one.
- A pack failing as a whole (``TruncatedOutput``: MAX_TOKENS; ``ContentBlocked``; a
  ``BadInput`` 400 on one image) is bisected: both halves are sent, down to a single
  note, which the one-note runner handles (re-encode, halving, ``content_blocked``).
- Anything else the client raises (the day's requests are gone: ``QuotaDeferred``;
  Gemini unavailable; a transport error) reaches every note of the pack, which the
  pipeline turns into its usual states (deferred as today).

Each note records every request its pack took (``usage.requests``), an even share of the
output tokens and its own estimated share of the input tokens; the output estimate
learns from each answer's ``usageMetadata``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crawler.core.enrichment_state import EnrichmentUsage
from pipelines.enrich_schema import NoteEnrichment
from pipelines.enrichment.gemini_runner import Conversation, GeminiRunner
from pipelines.enrichment.inputs import NoteInput
from pipelines.enrichment.packing import (
    OutputEstimate,
    PackedAnswer,
    PackMode,
    build_pack,
    check_pack,
    input_tokens,
    pick_pack,
)
from pipelines.enrichment.settings import EnrichSettingsError
from pipelines.gemini import BadInput, ContentBlocked, TruncatedOutput

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackSettings:
    """``ENRICH_PACK`` (auto|always|never), ``ENRICH_MAX_NOTES_PER_REQUEST`` and
    ``ENRICH_PACK_WAIT`` (seconds a note waits for its pack to fill)."""

    mode: PackMode
    max_notes: int
    wait: float

    @classmethod
    def from_settings(cls, settings: Any) -> PackSettings:
        raw = str(settings.get("ENRICH_PACK")).strip().lower()
        try:
            mode = PackMode(raw)
        except ValueError:
            raise EnrichSettingsError(
                "ENRICH_PACK", f"must be auto|always|never, not {raw!r}"
            ) from None
        try:
            max_notes = settings.getint("ENRICH_MAX_NOTES_PER_REQUEST")
            wait = settings.getfloat("ENRICH_PACK_WAIT")
        except (TypeError, ValueError):
            raise EnrichSettingsError(
                "ENRICH_MAX_NOTES_PER_REQUEST/ENRICH_PACK_WAIT", "must be numbers"
            ) from None
        if max_notes < 1:
            raise EnrichSettingsError(
                "ENRICH_MAX_NOTES_PER_REQUEST", f"must be at least 1, not {max_notes}"
            )
        if wait < 0:
            raise EnrichSettingsError("ENRICH_PACK_WAIT", f"must be at least 0, not {wait}")
        return cls(mode, max_notes, wait)


@dataclass(eq=False)
class _Waiter:
    key: str
    note: NoteInput
    conv: Conversation
    future: asyncio.Future[NoteEnrichment]
    tries: int = 0  # packs whose answer for this note could not be trusted


@dataclass
class PackStats:
    """Counters the pipeline copies under ``enrich/pack/``."""

    counts: dict[str, int] = field(default_factory=dict)

    def inc(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by


class PackQueue:
    def __init__(
        self,
        client: Any,
        settings: PackSettings,
        *,
        single: Callable[[], GeminiRunner],
        thinking: bool = False,
        retries: int = 2,
        estimate: OutputEstimate | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.single = single  # the one-note runner, for a note that has to go alone
        self.thinking = thinking
        self.retries = retries
        self.estimate = estimate or OutputEstimate()
        self.stats = PackStats()
        self._waiting: list[_Waiter] = []
        self._timer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def output_limit(self) -> int:
        return int(self.client.output_token_limit())

    async def enrich(self, key: str, note: NoteInput, conv: Conversation) -> NoteEnrichment:
        waiter = _Waiter(key, note, conv, asyncio.get_running_loop().create_future())
        self._enqueue(waiter)
        return await waiter.future

    # -- filling and flushing --

    def _enqueue(self, waiter: _Waiter, *, front: bool = False) -> None:
        """Add a note (a retried one goes first: it has waited longest) and send every
        pack that is full."""
        if front:
            self._waiting.insert(0, waiter)
        else:
            self._waiting.append(waiter)
        while self._waiting:
            positions, full = self._next_pack()
            if not full:
                break
            self._send(positions)
        if self._waiting and self._timer is None:
            self._timer = asyncio.get_running_loop().create_task(self._flush_later())

    def _next_pack(self) -> tuple[list[int], bool]:
        return pick_pack(
            [w.note for w in self._waiting],
            max_notes=self.settings.max_notes,
            output_limit=self.output_limit(),
            estimate=self.estimate,
            input_limit=int(self.client.input_token_limit()),
        )

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(self.settings.wait)
        finally:
            self._timer = None
        while self._waiting:
            self._send(self._next_pack()[0])

    def _send(self, positions: list[int]) -> None:
        """Take the waiting notes at ``positions`` out of the queue as one pack."""
        chosen = set(positions)
        batch = [w for i, w in enumerate(self._waiting) if i in chosen]
        self._waiting = [w for i, w in enumerate(self._waiting) if i not in chosen]
        self._spawn(self._run(batch))

    # -- one pack --

    async def _run(self, batch: list[_Waiter]) -> None:
        try:
            await self._request(batch)
        except Exception as exc:  # reaches every note still waiting on this pack
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)

    async def _request(self, batch: list[_Waiter]) -> None:
        if len(batch) == 1:  # a pack of one is a plain one-note request
            await self._alone(batch[0])
            return
        pack = build_pack([(w.key, w.note) for w in batch])
        self.stats.inc("requests")
        self.stats.inc("notes", len(batch))
        try:
            generation = await self.client.generate(
                list(pack.parts),
                PackedAnswer,
                thinking=self.thinking,
                max_output_tokens=self.output_limit(),
            )
        except (TruncatedOutput, ContentBlocked, BadInput) as exc:
            spent = max(getattr(exc, "requests_spent", 1) or 1, 1)
            for waiter in batch:
                waiter.conv.usage.requests += spent
            await self._bisect(batch, exc)
            return
        self.estimate.observe([w.note for w in batch], int(generation.usage["output_tokens"]))
        self._share(batch, generation)
        verdict = check_pack(pack, generation.parsed)
        if verdict.unknown:
            self.stats.inc("unknown_ids", len(verdict.unknown))
        for member, waiter in zip(pack.members, batch, strict=True):
            result = verdict.results.get(member.label)
            if result is not None:
                waiter.future.set_result(result)
                continue
            reason = verdict.retry[member.label]
            self.stats.inc(f"retried/{reason}")
            waiter.tries += 1
            if waiter.tries > self.retries:
                self._spawn(self._alone(waiter))
            else:
                self._enqueue(waiter, front=True)

    async def _bisect(self, batch: list[_Waiter], exc: Exception) -> None:
        if len(batch) == 1:
            await self._alone(batch[0])
            return
        self.stats.inc("bisected")
        logger.info("packed request of %d notes failed (%s): splitting it", len(batch), exc)
        middle = (len(batch) + 1) // 2
        await asyncio.gather(self._run(batch[:middle]), self._run(batch[middle:]))

    async def _alone(self, waiter: _Waiter) -> None:
        """The note by itself through the one-note runner (its own request budget)."""
        self.stats.inc("alone")
        conv = Conversation()
        try:
            result = await self.single().enrich(waiter.note, conv)
        except Exception as exc:  # EnrichFailure, QuotaDeferred …: the note's own verdict
            waiter.future.set_exception(exc)
            return
        finally:
            waiter.conv.usage.add(conv.usage)
            waiter.conv.dropped.extend(conv.dropped)
            if conv.model is not None:
                waiter.conv.model, waiter.conv.key_fp = conv.model, conv.key_fp
        waiter.future.set_result(result)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _share(batch: list[_Waiter], generation: Any) -> None:
        """Each note: the pack's requests, an even share of output, its input share."""
        weights = [max(input_tokens(w.note), 1) for w in batch]
        total = sum(weights)
        prompt = int(generation.usage.get("prompt_tokens", 0))
        output = int(generation.usage.get("output_tokens", 0))
        requests = int(generation.usage.get("requests", 1) or 1)
        for waiter, weight in zip(batch, weights, strict=True):
            waiter.conv.usage.add(
                EnrichmentUsage(
                    requests=requests,
                    prompt_tokens=prompt * weight // total,
                    output_tokens=output // len(batch),
                )
            )
            waiter.conv.model, waiter.conv.key_fp = generation.model, generation.key_fp
