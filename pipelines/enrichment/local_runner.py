"""The local backend for one note: rapidocr OCR and an extractive summary
(:mod:`pipelines.local_backend`), its failures turned into :class:`EnrichFailure`."""

from __future__ import annotations

import logging

from pipelines.enrich_schema import NoteEnrichment
from pipelines.enrichment.comments import local_insights
from pipelines.enrichment.failures import EnrichFailure
from pipelines.enrichment.inputs import NoteInput
from pipelines.local_backend import LOCAL_VERSION, LocalBackend

logger = logging.getLogger(__name__)

LOCAL_MODEL = "rapidocr"

__all__ = ["LOCAL_MODEL", "LOCAL_VERSION", "LocalRunner"]


class LocalRunner:
    def __init__(self, backend: LocalBackend | None = None) -> None:
        self.backend = backend or LocalBackend()

    async def enrich(self, note: NoteInput) -> NoteEnrichment:
        try:
            result = await self.backend.enrich(
                title=note.title,
                desc=note.desc,
                tags=note.tags,
                images=[(img.index, img.data) for img in note.images],
            )
        except Exception as exc:  # OCR/jieba internals: record it, keep crawling
            logger.warning("local enrichment failed: %s", exc)
            raise EnrichFailure("error", f"{type(exc).__name__}: {exc}") from exc
        # Without a model, the comments give their questions (issue 14).
        return result.model_copy(update={"comment_insights": local_insights(note.comments)})
