"""The Gemini requests of one note: an explicit, bounded loop over image batches.

The note's images are planned into batches (:func:`plan_batches`); the first carries the
note text and asks for :class:`NoteEnrichment`, the others ask for :class:`ImageBatch`.
A work queue holds the batches still to send; each step sends ONE request and then:

- **accepts** the answer (its image entries checked against the images sent);
- **halves** the batch (a truncated answer, or a wrong number of image entries): the
  two halves go to the front of the queue, sent without thinking; a half that is
  truncated or miscounted again fails the note (``truncated``,
  ``image_count_mismatch``);
- **re-encodes** the batch once after ``BadInput`` (images that do not decode locally
  are dropped); a second ``BadInput`` fails the note (``bad_input``);
- **stops** on blocked content (``content_blocked``) and on an answer without
  candidates that the client already retried once (``no_candidates``, retryable).

Whatever happens, one note makes at most ``max_requests`` generate calls per attempt
(``ENRICH_MAX_REQUESTS_PER_NOTE``): when the queue is not empty and the budget is
spent, the note fails with ``request_budget``. ``QuotaDeferred`` (``RequestTimedOut``
among them), ``EnrichmentUnavailable`` and transport errors propagate to the pipeline.

Spend: ``Conversation.usage.requests`` is what the client really sent for the note:
``Generation.usage["requests"]`` of each answer and ``GeminiError.requests_spent`` of
each failed call (429s, retries and timed-out requests included), not one per call.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from crawler.core.enrichment_state import EnrichmentUsage
from pipelines.enrich_schema import ImageBatch, ImageReading, NoteEnrichment
from pipelines.enrichment.comments import render_comments
from pipelines.enrichment.failures import EnrichFailure
from pipelines.enrichment.inputs import (
    ModelImage,
    NoteInput,
    build_parts,
    image_label,
    plan_batches,
)
from pipelines.gemini import BadInput, ContentBlocked, EmptyAnswer, GeminiError, TruncatedOutput
from pipelines.imaging import ImageError, reencode_jpeg
from pipelines.prompts import PromptTemplate

logger = logging.getLogger(__name__)


class ImageCountMismatch(Exception):
    """The model did not return exactly one entry per image sent."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"expected {expected} image entries, got {got}")


def align_images(readings: Sequence[ImageReading], expected: Sequence[int]) -> list[ImageReading]:
    """Check the returned entries against the indices sent and return them in that order.

    Entries whose indices are exactly the ones sent are reordered by index; when the
    count matches but the model renumbered them (e.g. from 0 in a later part), they are
    taken in the order returned, which is the order the prompt asks for.
    """
    if len(readings) != len(expected):
        raise ImageCountMismatch(len(expected), len(readings))
    by_index = {r.index: r for r in readings}
    if sorted(by_index) == sorted(expected):
        return [by_index[i] for i in expected]
    return [r.model_copy(update={"index": i}) for r, i in zip(readings, expected, strict=True)]


def merge_batches(first: NoteEnrichment, rest: Sequence[ImageBatch]) -> NoteEnrichment:
    """The text answer with every batch's image entries, ordered by index."""
    images = [*first.images, *(img for batch in rest for img in batch.images)]
    return first.model_copy(update={"images": sorted(images, key=lambda r: r.index)})


@dataclass
class Conversation:
    """Requests spent on one note, who answered the last one, the images dropped.

    ``calls``: generate calls made (what ``ENRICH_MAX_REQUESTS_PER_NOTE`` bounds);
    ``usage.requests``: the requests those calls sent, as the client reports them.
    """

    usage: EnrichmentUsage = field(default_factory=EnrichmentUsage)
    model: str | None = None
    key_fp: str | None = None
    dropped: list[int] = field(default_factory=list)
    calls: int = 0

    def answered(self, generation: Any) -> None:
        self.calls += 1
        self.usage.add(
            EnrichmentUsage(
                requests=int(generation.usage.get("requests", 1)),
                prompt_tokens=int(generation.usage.get("prompt_tokens", 0)),
                output_tokens=int(generation.usage.get("output_tokens", 0)),
            )
        )
        self.model, self.key_fp = generation.model, generation.key_fp

    def failed(self, exc: GeminiError) -> None:
        """A generate call that raised: its requests are spent all the same."""
        self.calls += 1
        self.usage.requests += exc.requests_spent


@dataclass(frozen=True)
class _Batch:
    """One request still to send."""

    images: list[ModelImage]
    with_text: bool
    reencoded: bool = False
    halved: bool = False

    def halves(self) -> list[_Batch]:
        """Two smaller batches (the text, if any, goes with the first)."""
        middle = (len(self.images) + 1) // 2
        return [
            replace(self, images=self.images[:middle], halved=True),
            replace(self, images=self.images[middle:], halved=True, with_text=False),
        ]


def _reencode(images: Sequence[ModelImage], dropped: list[int]) -> list[ModelImage]:
    """Re-encoded copies of the images that decode locally; the others go to ``dropped``."""
    kept = []
    for img in images:
        try:
            data = reencode_jpeg(img.data)
        except ImageError as exc:
            logger.warning("dropping image %d: it does not decode locally (%s)", img.index, exc)
            dropped.append(img.index)
            continue
        kept.append(ModelImage(index=img.index, data=data, sha256=img.sha256, mime="image/jpeg"))
    return kept


def _instead_of(batch: _Batch, exc: GeminiError, conv: Conversation) -> list[_Batch]:
    """The batches to send after a failed call, or the note's failure; quota and
    availability errors go on to the pipeline."""
    if isinstance(exc, BadInput):
        if batch.reencoded:
            raise EnrichFailure("bad_input", str(exc)) from exc
        return [replace(batch, images=_reencode(batch.images, conv.dropped), reencoded=True)]
    if isinstance(exc, TruncatedOutput):
        if batch.halved:
            raise EnrichFailure("truncated", str(exc)) from exc
        return batch.halves()
    if isinstance(exc, ContentBlocked):
        raise EnrichFailure("content_blocked", str(exc)) from exc
    if isinstance(exc, EmptyAnswer):  # the client tried twice; nothing blames the note
        raise EnrichFailure(exc.reason, exc.message) from exc
    raise exc


class GeminiRunner:
    """Runs the requests of one note against a started :class:`GeminiClient`."""

    def __init__(
        self,
        client: Any,
        prompt: PromptTemplate,
        *,
        max_per_request: int,
        max_requests: int,
        thinking: bool,
    ) -> None:
        self.client = client
        self.prompt = prompt
        self.max_per_request = max_per_request
        self.max_requests = max_requests
        self.thinking = thinking

    async def enrich(self, note: NoteInput, conv: Conversation) -> NoteEnrichment:
        planned = plan_batches(note.images, self.max_per_request)
        queue = deque(_Batch(images, with_text=i == 0) for i, images in enumerate(planned))
        text_answer: NoteEnrichment | None = None
        image_answers: list[ImageBatch] = []
        while queue:
            batch = queue.popleft()
            if not batch.with_text and not batch.images:
                continue  # an image-only batch left without images: nothing to ask
            if conv.calls >= self.max_requests:
                left = sum(len(b.images) for b in (batch, *queue))
                raise EnrichFailure(
                    "request_budget",
                    f"{conv.calls} requests made (ENRICH_MAX_REQUESTS_PER_NOTE), "
                    f"{len(queue) + 1} batch(es) with {left} image(s) left",
                )
            step = await self._send(note, batch, conv)
            if isinstance(step, list):
                queue.extendleft(reversed(step))
            elif isinstance(step, NoteEnrichment) and batch.with_text:
                text_answer = step
            else:
                image_answers.append(step)
        assert text_answer is not None  # the text batch is always sent or the note failed
        return merge_batches(text_answer, image_answers)

    async def _send(
        self, note: NoteInput, batch: _Batch, conv: Conversation
    ) -> ImageBatch | list[_Batch]:
        """One request: the checked answer, or the batches to send instead."""
        labels = [image_label(img.index) for img in batch.images]
        schema: type[BaseModel]
        if batch.with_text:
            text = self.prompt.render_note(
                title=note.title,
                desc=note.desc,
                tags=list(note.tags),
                labels=labels,
                comments=render_comments(note.comments),
            )
            schema = NoteEnrichment
        else:
            text = self.prompt.render_images(title=note.title, labels=labels)
            schema = ImageBatch
        try:
            generation = await self.client.generate(
                build_parts(text, batch.images), schema, thinking=self.thinking and not batch.halved
            )
        except GeminiError as exc:
            conv.failed(exc)
            return _instead_of(batch, exc, conv)
        conv.answered(generation)
        try:
            answer = schema.model_validate(generation.parsed)
            aligned = align_images(answer.images, [img.index for img in batch.images])
        except (ValidationError, ImageCountMismatch) as exc:
            if batch.halved or len(batch.images) < 2:
                kind = "image_count_mismatch" if isinstance(exc, ImageCountMismatch) else "error"
                raise EnrichFailure(kind, str(exc)) from exc
            return batch.halves()
        return answer.model_copy(update={"images": aligned})
