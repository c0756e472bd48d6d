"""Offline enrichment: rapidocr OCR plus an extractive summary (jieba keywords).

Used when Gemini is not configured (``ENRICH_BACKEND=auto`` without keys) or chosen with
``ENRICH_BACKEND=local``. No generative model ships in a package, so the "summary" is
made of the note's own sentences: the best-scored ones by jieba TF-IDF keyword weight,
numbered items and questions as key points, sentences with advice markers as advice.
Results are marked backend ``local`` so ``scrapy crawl enrich -a include_local=1`` can
upgrade them with Gemini later.

The OCR engine (rapidocr's bundled default models: any other model would trigger a
download, which fails offline) is created once per process, lazily, and every OCR or
jieba call runs in one dedicated worker thread: the event loop stays free and two
concurrent notes do not fight over the two cores.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipelines.enrich_schema import ImageReading, NoteEnrichment

logger = logging.getLogger(__name__)

LOCAL_VERSION = "local.v1"  # bump when the extraction rules change (cache key part)

_SUMMARY_SENTENCES = 3
_SUMMARY_MAX_CHARS = 240
_MAX_KEY_POINTS = 20
_MAX_ADVICE = 10
_MAX_TOPICS = 8
_SCORING_KEYWORDS = 40  # jieba TF-IDF keywords that score sentences
_CAPTION_MAX_CHARS = 40

_TOPIC_MARKUP = re.compile(r"#([^#\[\]\n]{1,40})\[话题\]#")
_SENTENCE_SPLIT = re.compile(r"(?<=[。！？!?；;])|\n+")
_NUMBERED = re.compile(
    r"^\s*(?:\d{1,2}\s*[.、．)）:：]|[（(]\d{1,2}[)）]|[①-⑳]|[一二三四五六七八九十]{1,3}\s*[、.．]"
    r"|[Qq]\d{0,2}\s*[:：.、]|[-•·*]\s)"
)
_QUESTION = re.compile(r"[？?]\s*$")
_ADVICE = re.compile(
    r"建议|推荐|一定要|记得|注意|最好|不要|别忘|千万|务必|技巧|小贴士|避坑|攻略|可以试试|\btips?\b",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")

_engine: Any = None
_engine_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _get_engine() -> Any:
    """The process-wide rapidocr engine, created on first use (worker thread only)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr import RapidOCR

            _engine = RapidOCR(params={"Global.log_level": "warning"})
            # RapidOCR logs through its own stderr handler, in ANSI colours, and warns
            # on every picture without text ("The text detection result is empty"):
            # its records go through the crawl's logging instead, errors only.
            ocr_logger = logging.getLogger("RapidOCR")
            for handler in list(ocr_logger.handlers):
                ocr_logger.removeHandler(handler)
            ocr_logger.propagate = True
            ocr_logger.setLevel(logging.ERROR)
        return _engine


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-ocr")
        return _executor


def reading_order(boxes: Sequence[Sequence[Sequence[float]]], texts: Sequence[str]) -> list[str]:
    """Arrange OCR boxes into text lines, top to bottom and left to right.

    A box joins a line when their vertical extents overlap by more than half of the
    smaller height (the detector returns one box per text run, and runs of one visual
    line may come back in any order); boxes within a line are joined by a space.
    """
    entries = []
    for box, text in zip(boxes, texts, strict=True):
        if not text.strip():
            continue
        ys = [float(point[1]) for point in box]
        xs = [float(point[0]) for point in box]
        entries.append((min(ys), max(ys), min(xs), text.strip()))
    entries.sort()
    lines: list[list[Any]] = []  # [top, bottom, [(left, text), ...]]
    for top, bottom, left, text in entries:
        for line in lines:
            overlap = min(bottom, line[1]) - max(top, line[0])
            if overlap > 0.5 * min(bottom - top, line[1] - line[0]):
                line[0], line[1] = min(top, line[0]), max(bottom, line[1])
                line[2].append((left, text))
                break
        else:
            lines.append([top, bottom, [(left, text)]])
    lines.sort(key=lambda line: line[0])
    return [" ".join(text for _, text in sorted(line[2])) for line in lines]


def _ocr_sync(data: bytes) -> str:
    result = _get_engine()(data)
    if result.boxes is None or not result.txts:
        return ""
    return "\n".join(reading_order(result.boxes.tolist(), result.txts))


def detect_language(text: str) -> str:
    """``zh`` when CJK characters are at least a fifth of (CJK characters + Latin words),
    ``en`` when there are Latin words, ``und`` when neither."""
    cjk = len(_CJK.findall(text))
    latin_words = len(_LATIN_WORD.findall(text))
    if cjk == 0 and latin_words == 0:
        return "und"
    return "zh" if cjk >= 0.2 * (cjk + latin_words) else "en"


def split_sentences(text: str) -> list[str]:
    """Sentences and list lines of a text, with XHS topic markup removed."""
    text = _TOPIC_MARKUP.sub("", text)
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s and s.strip()]


def _dedupe(values: Iterable[str], limit: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        key = re.sub(r"\s+", "", value).lower()
        if value and key not in seen:
            seen.add(key)
            out.append(value)
            if len(out) == limit:
                break
    return out


def _keywords(text: str, top_k: int) -> list[tuple[str, float]]:
    import jieba
    import jieba.analyse

    jieba.setLogLevel(logging.WARNING)
    return [
        (word, float(weight))
        for word, weight in jieba.analyse.extract_tags(text, topK=top_k, withWeight=True)
    ]


def extractive_enrichment(
    *, title: str, desc: str, tags: Sequence[str], ocr_texts: Sequence[tuple[int, str]]
) -> NoteEnrichment:
    """Build the enrichment result from the note's own sentences (no generation)."""
    body_sentences = split_sentences(desc)
    image_sentences = [s for _, text in ocr_texts for s in split_sentences(text)]
    sentences = body_sentences + image_sentences
    full_text = "\n".join([title, *sentences])
    keywords = _keywords(full_text, _SCORING_KEYWORDS) if full_text.strip() else []
    weights = dict(keywords)

    def score(sentence: str) -> float:
        hits = sum(weight for word, weight in weights.items() if word in sentence)
        return hits / math.sqrt(max(len(sentence), 8))

    ranked = sorted(range(len(sentences)), key=lambda i: score(sentences[i]), reverse=True)
    chosen = sorted(ranked[:_SUMMARY_SENTENCES])
    summary_parts = [title.strip()] if title.strip() else []
    summary_parts += [sentences[i] for i in chosen if sentences[i] != title.strip()]
    summary = "；".join(summary_parts)
    if len(summary) > _SUMMARY_MAX_CHARS:
        summary = summary[: _SUMMARY_MAX_CHARS - 1] + "…"

    listed = [s for s in sentences if _NUMBERED.match(s) or _QUESTION.search(s)]
    key_points = _dedupe(listed or [sentences[i] for i in chosen], _MAX_KEY_POINTS)
    advice = _dedupe((s for s in sentences if _ADVICE.search(s)), _MAX_ADVICE)
    topics = _dedupe([*tags, *(word for word, _ in keywords)], _MAX_TOPICS)

    images = []
    for index, text in ocr_texts:
        first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
        caption = (
            first_line
            if len(first_line) <= _CAPTION_MAX_CHARS
            else first_line[: _CAPTION_MAX_CHARS - 1] + "…"
        )
        images.append(ImageReading(index=index, ocr_text=text, caption=caption))
    return NoteEnrichment(
        images=images,
        summary=summary,
        key_points=key_points,
        advice=advice,
        topics=topics,
        language=detect_language(full_text),
    )


class LocalBackend:
    """Async front of the OCR engine and the extractive summarizer."""

    async def ocr(self, data: bytes) -> str:
        """Text of one image in reading order (lines separated by newlines)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_get_executor(), _ocr_sync, data)

    async def enrich(
        self, *, title: str, desc: str, tags: Sequence[str], images: Sequence[tuple[int, bytes]]
    ) -> NoteEnrichment:
        """OCR every ``(index, bytes)`` image, then summarize text and OCR extractively.

        An image the OCR engine cannot decode gets an empty text rather than failing
        the note: the media pipeline has already validated what it kept.
        """
        ocr_texts: list[tuple[int, str]] = []
        for index, data in images:
            try:
                text = await self.ocr(data)
            except Exception as exc:  # one unreadable image must not sink the note
                logger.warning("local OCR failed on image %d: %s", index, exc)
                text = ""
            ocr_texts.append((index, text))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            _get_executor(),
            lambda: extractive_enrichment(title=title, desc=desc, tags=tags, ocr_texts=ocr_texts),
        )
