"""Helpers for the enrichment tests: sandbox notes as media-processed items, a pipeline run."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from crawler.core.items import NoteImage, NoteItem
from crawler.core.run_context import RunContext
from pipelines.enrichment import EnrichmentPipeline, EnrichSettings
from pipelines.imaging import downscale_for_model
from pipelines.mongo import close_mongo
from sandbox.dataset import Dataset, NoteImageSpec, NoteSpec
from sandbox.site.pictures import encode, render
from tests.factories import make_image, note_from_spec, project_crawler

SEED = 1
DATASET = Dataset(seed=SEED, size=200)
_WHITESPACE = re.compile(r"\s+")


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(hypothesis: str, truth: str) -> float:
    """Character error rate: edit distance / length of the truth, whitespace removed."""
    hyp, ref = _WHITESPACE.sub("", hypothesis), _WHITESPACE.sub("", truth)
    return levenshtein(hyp, ref) / max(len(ref), 1)


@lru_cache(maxsize=256)
def model_jpeg(spec: NoteImageSpec) -> bytes:
    """The media pipeline's model copy of a sandbox picture (rendered once per session)."""
    return downscale_for_model(encode(render(spec), spec.format))


def store_image(store: Path, data: bytes, **fields: Any) -> NoteImage:
    """Write ``data`` under the store the way the media pipeline does; an ``ok`` image."""
    digest = hashlib.sha256(data).hexdigest()
    relative = f"model/{digest[:2]}/{digest}.jpg"
    (store / relative).parent.mkdir(parents=True, exist_ok=True)
    (store / relative).write_bytes(data)
    values = {
        "url": f"http://cdn.invalid/{digest[:12]}",
        "width": None,
        "height": None,
        "path": relative,
        "model_path": relative,
        "sha256": digest,
        "mime": "image/jpeg",
        "status": "ok",
        **fields,
    }
    return make_image(**values)


def note_item(spec: NoteSpec, store: Path, images: list[NoteImageSpec] | None = None) -> NoteItem:
    """A sandbox note as it leaves the media pipeline (every image stored, status ok)."""
    pictures = list(spec.images) if images is None else images
    return note_from_spec(spec, images=[store_image(store, model_jpeg(p)) for p in pictures])


def text_pictures(count: int) -> list[NoteImageSpec]:
    """``count`` text pictures from the sandbox notes (their ground truth is known)."""
    pictures = [img for i in range(60) for img in DATASET.note(i).images if img.lines]
    assert len(pictures) >= count
    return pictures[:count]


def generate_calls(emulator: Any) -> list[Any]:
    return [r for r in emulator.requests if r.method == "generateContent"]


@contextlib.asynccontextmanager
async def pipeline_run(
    settings: dict[str, Any],
    *,
    clock: Callable[[], datetime] | None = None,
    spider: Any = None,
    run: Mapping[str, Any] | None = None,
) -> AsyncIterator[tuple[EnrichmentPipeline, Any]]:
    """An opened pipeline on a test crawler (what one crawl does), closed afterwards;
    ``run`` sets fields of its ``RunContext`` (``backlog_due``, ``upgrade_local`` …) as
    the spider and extensions of a real run do."""
    crawler = project_crawler(settings)
    crawler.spider = spider
    context = RunContext.of(crawler)
    for name, value in (run or {}).items():
        assert hasattr(context, name), name
        setattr(context, name, value)
    pipeline = EnrichmentPipeline(
        crawler, EnrichSettings.from_settings(crawler.settings), clock=clock
    )
    await pipeline.open_spider()
    try:
        yield pipeline, crawler.stats
    finally:
        await pipeline.close_spider()
        await close_mongo(crawler)
