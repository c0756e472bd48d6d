"""Note enrichment: Gemini (or the local OCR backend) turns a stored note into a summary,
key points, advice, topics and per-image OCR text, kept as ``item.enrichment``
(:class:`crawler.core.enrichment_state.EnrichmentState`).

Modules, one concern each:

- :mod:`.settings`: :class:`EnrichSettings` (the knobs, read once and checked),
  :func:`resolve_backend`, :class:`EnrichSettingsError`;
- :mod:`.inputs`: :class:`NoteInput`/:class:`ModelImage` (images read through the media
  store), :func:`model_input_hash`, cache keys, :func:`plan_batches`, :func:`build_parts`;
- :mod:`.cache`: :class:`EnrichCache`, the ``enrich_cache`` collection;
- :mod:`.gemini_runner`: :class:`GeminiRunner`, the bounded request loop of one note;
- :mod:`.local_runner`: :class:`LocalRunner`, rapidocr + extractive summary;
- :mod:`.failures`: :class:`EnrichFailure` (``kind``, ``reason``), which kinds retry;
- :mod:`.pipeline`: :class:`EnrichmentPipeline`, the Scrapy item pipeline
  (``ITEM_PIPELINES`` path ``pipelines.enrichment.EnrichmentPipeline``).
"""

from pipelines.enrichment.cache import EnrichCache
from pipelines.enrichment.failures import RETRYABLE_FAILURES, EnrichFailure, clip_reason
from pipelines.enrichment.gemini_runner import (
    Conversation,
    GeminiRunner,
    ImageCountMismatch,
    align_images,
    merge_batches,
)
from pipelines.enrichment.inputs import (
    GEMINI_FAMILY,
    LOCAL_FAMILY,
    ModelImage,
    NoteInput,
    build_parts,
    image_label,
    make_cache_key,
    model_input_hash,
    note_input,
    plan_batches,
    split_cache_key,
)
from pipelines.enrichment.local_runner import LOCAL_MODEL, LocalRunner
from pipelines.enrichment.pipeline import EnrichmentPipeline, client_stats
from pipelines.enrichment.settings import (
    EnrichBackend,
    EnrichSettings,
    EnrichSettingsError,
    backend_of,
    resolve_backend,
)

__all__ = [
    "GEMINI_FAMILY",
    "LOCAL_FAMILY",
    "LOCAL_MODEL",
    "RETRYABLE_FAILURES",
    "Conversation",
    "EnrichBackend",
    "EnrichCache",
    "EnrichFailure",
    "EnrichSettings",
    "EnrichSettingsError",
    "EnrichmentPipeline",
    "GeminiRunner",
    "ImageCountMismatch",
    "LocalRunner",
    "ModelImage",
    "NoteInput",
    "align_images",
    "backend_of",
    "build_parts",
    "client_stats",
    "clip_reason",
    "image_label",
    "make_cache_key",
    "merge_batches",
    "model_input_hash",
    "note_input",
    "plan_batches",
    "resolve_backend",
    "split_cache_key",
]
