"""Gemini requests per enriched note: our pipeline vs the old script's strategy.

One run, one sandbox dataset, one Gemini emulator (the real google-genai SDK over HTTP):

1. ``scrapy crawl xhs -a note_ids=…`` with ``GEMINI_BASE_URL`` = the emulator: every
   note's images and text go in one ``generateContent`` request (a note with more than
   ``ENRICH_MAX_IMAGES_PER_REQUEST`` images would be split evenly, by design; sandbox
   notes have 1-9 images).
2. The old script's strategy over the same notes and the same downloaded images: one
   OCR request per image, then one summary request per note (:func:`old_strategy`).
3. The same crawl again (a re-crawl of unchanged notes): no request at all.

Requests are counted in the emulator's request log, not by the code under test.
``python -m bench.requests_per_note [--quick]``.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from google import genai
from google.genai import types

from bench.common import (
    Check,
    finish,
    note_refs,
    parse_args,
    run_crawl,
    tail,
)
from crawler import settings as project_settings
from crawler.core.enrichment_state import EnrichmentState, EnrichmentStatus
from sandbox.gemini import GeminiEmulator
from sandbox.harness import MongoServer, sandbox_env
from sandbox.site import SiteServer

NAME = "requests_per_note"
API_KEY = "bench-requests-key"
MODEL = "gemini-2.5-flash-lite"
# What the crawl below uses: the project's setting (an env var of the same name wins).
MAX_IMAGES_PER_REQUEST = int(project_settings.ENRICH_MAX_IMAGES_PER_REQUEST)
OLD_OCR_PROMPT = "请识别这张图片中的所有文字，按阅读顺序原样输出。"
OLD_SUMMARY_PROMPT = (
    "下面是一篇小红书笔记的标题、正文和图片中识别出的文字。请用中文总结要点，并给出建议。\n"
    "标题：{title}\n正文：{desc}\n图片文字：\n{ocr}"
)


def generate_calls(emulator: GeminiEmulator) -> int:
    return sum(1 for r in emulator.requests if r.method == "generateContent")


async def old_strategy(
    base_url: str, api_key: str, notes: Sequence[Mapping[str, Any]], images_store: Path
) -> int:
    """The old script's way: one OCR request per image, then one summary request per note.

    Same SDK, same model, same downloaded images (the stored originals). Returns the
    number of requests sent; answers are used the way the old script used them (the
    OCR texts feed the summary prompt).
    """
    client = genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(base_url=base_url, api_version="v1beta"),
    )
    sent = 0
    limit = asyncio.Semaphore(8)

    async def ask(contents: list[Any]) -> str:
        nonlocal sent
        async with limit:
            sent += 1
            response = await client.aio.models.generate_content(model=MODEL, contents=contents)
            return response.text or ""

    async def one_note(note: Mapping[str, Any]) -> None:
        texts = []
        for image in note.get("images") or []:
            if image.get("status") != "ok" or not image.get("path"):
                continue
            data = (images_store / image["path"]).read_bytes()
            part = types.Part.from_bytes(data=data, mime_type=image.get("mime") or "image/jpeg")
            texts.append(await ask([OLD_OCR_PROMPT, part]))
        prompt = OLD_SUMMARY_PROMPT.format(
            title=note.get("title") or "", desc=note.get("desc") or "", ocr="\n".join(texts)
        )
        await ask([prompt])

    try:
        await asyncio.gather(*(one_note(note) for note in notes))
    finally:
        await client.aio.aclose()
    return sent


def usable_images(note: Mapping[str, Any]) -> int:
    return sum(1 for image in note.get("images") or [] if image.get("status") == "ok")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    count = 20 if args.quick else 60
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="bench-rpn-") as tmp,
        SiteServer(seed=11, notes=max(200, count * 2), port=0) as site,
        GeminiEmulator(port=0) as emulator,
        MongoServer(Path(tmp) / "mongo", process=True) as mongo,
    ):
        work = Path(tmp)
        live = [
            site.dataset.note(i) for i in range(len(site.dataset)) if not site.dataset.is_deleted(i)
        ][:count]
        env = sandbox_env(
            site,
            MONGO_URI=mongo.uri,
            GEMINI_BASE_URL=emulator.base_url,
            GEMINI_API_KEYS=f"bench:{API_KEY}",
            ENRICH_BACKEND="gemini",
        )
        crawl_args = {"note_ids": note_refs(live)}
        first = run_crawl("xhs", crawl_args, env, workdir=work, label="first")
        if first.returncode != 0 or len(first.items) != len(live):
            print(tail(first.log))
        ours = generate_calls(emulator)
        states = [EnrichmentState.from_document(n.get("enrichment")) for n in first.items]
        kept = [
            (n, state)
            for n, state in zip(first.items, states, strict=True)
            if state is not None and state.status is EnrichmentStatus.DONE
        ]
        done = [n for n, _ in kept]
        images = [usable_images(n) for n in done]
        per_note = [state.usage.requests for _, state in kept]
        small = [r for r, k in zip(per_note, images, strict=True) if k <= MAX_IMAGES_PER_REQUEST]
        split_expected = sum(max(1, math.ceil(k / MAX_IMAGES_PER_REQUEST)) for k in images)

        before_old = generate_calls(emulator)
        sent = asyncio.run(old_strategy(emulator.base_url, API_KEY, done, work / "images"))
        old = generate_calls(emulator) - before_old

        before_recrawl = generate_calls(emulator)
        second = run_crawl("xhs", crawl_args, env, workdir=work, label="second")
        if second.returncode != 0:
            print(tail(second.log))
        recrawl = generate_calls(emulator) - before_recrawl

    enriched = len(done)
    ours_per_note = round(ours / enriched, 3) if enriched else float("inf")
    old_per_note = round(old / enriched, 3) if enriched else float("inf")
    mean_images = round(sum(images) / enriched, 3) if enriched else 0.0
    figures = {
        "notes_requested": len(live),
        "notes_stored": len(first.items),
        "notes_enriched": enriched,
        "images_sent_total": sum(images),
        "images_per_note_mean": mean_images,
        "max_images_per_request": MAX_IMAGES_PER_REQUEST,
        "notes_over_limit": sum(1 for k in images if k > MAX_IMAGES_PER_REQUEST),
        "ours_requests": ours,
        "ours_requests_per_note": ours_per_note,
        "ours_requests_per_note_within_limit": (
            round(sum(small) / len(small), 3) if small else None
        ),
        "ours_requests_expected_with_split": split_expected,
        "old_requests": old,
        "old_requests_counted_by_client": sent,
        "old_requests_per_note": old_per_note,
        "recrawl_requests": recrawl,
        "recrawl_exit_status": second.returncode,
        "crawl_exit_status": first.returncode,
    }
    checks = [
        Check(
            "Gemini requests per enriched note (our pipeline)",
            f"≤ 1.0 (notes over {MAX_IMAGES_PER_REQUEST} images: split by design)",
            f"{ours_per_note} ({ours} requests for {enriched} notes)",
            enriched == len(live)
            and all(r == 1 for r in small)
            and ours == split_expected
            and (ours_per_note <= 1.0 or figures["notes_over_limit"] > 0),
        ),
        Check(
            "Gemini requests per note (old strategy)",
            f"≥ 1 + images per note = {round(1 + mean_images, 3)}",
            str(old_per_note),
            enriched > 0 and old == enriched + sum(images),
        ),
        Check("Gemini requests on a re-crawl", "0", str(recrawl), recrawl == 0),
    ]
    notes = []
    if figures["notes_over_limit"]:
        notes.append(
            f"{figures['notes_over_limit']} note(s) had more than {MAX_IMAGES_PER_REQUEST} "
            "images and were split over several requests (ENRICH_MAX_IMAGES_PER_REQUEST keeps "
            "answers below the output limit); every other note took exactly one request."
        )
    return finish(
        NAME, quick=args.quick, started=started, figures=figures, checks=checks, notes=notes
    )


if __name__ == "__main__":
    raise SystemExit(main())
