"""Issue 18, defect 1: one hostile note cannot spend the day's quota.

Before the fix a note listing 5,000 pictures became 556 ``generateContent`` calls and
10,000 image fetches, and a 2,000,000-character ``desc`` went to Gemini whole. Now at
most ``MEDIA_MAX_IMAGES_PER_NOTE`` (18) pictures are fetched, the rest recorded as
``skipped`` with reason ``image_cap``; at most ``ENRICH_MAX_TEXT_CHARS`` (20,000) of
the note's text goes to the model; and a note spends at most
``ENRICH_MAX_REQUESTS_PER_NOTE`` requests per attempt (``request_budget``, engineer B's).
"""

from __future__ import annotations

import pytest

PICTURES = 60
LONG_DESC = "这是一段很长的正文 text " * 130_000  # about 2,000,000 characters


@pytest.mark.slow
def test_a_note_with_sixty_pictures_and_megabytes_of_text(
    hostile, scrapy_crawl, gemini_emulator, mongo_uri, mongo_db_name, mongo_sync
) -> None:
    ident = hostile.add_note(1, title="敌意笔记", desc=LONG_DESC, pictures=PICTURES)
    env = hostile.env(ENRICH_BACKEND="gemini", GEMINI_BASE_URL=gemini_emulator.base_url,
                      GEMINI_API_KEYS="p1:test-key-1", MONGO_URI=mongo_uri,
                      MONGO_DATABASE=mongo_db_name)  # fmt: skip
    result = scrapy_crawl("xhs", {"note_ids": hostile.note_ids()}, env)
    assert result.returncode == 0, result.log[-4000:]
    doc = mongo_sync.notes.find_one({"_id": ident})
    statuses = [image["status"] for image in doc["images"]]
    assert statuses == ["ok"] * 18 + ["skipped"] * (PICTURES - 18)
    assert all(image["error"].startswith("image_cap") for image in doc["images"][18:])
    fetched = [path for path in hostile.server.requests if path.startswith("/img/")]
    assert len(fetched) == 18, "pictures past the cap were fetched"
    assert result.stats.get("media/images_skipped/image_cap") == PICTURES - 18
    calls = [r for r in gemini_emulator.requests if r.method == "generateContent"]
    assert len(calls) >= 1  # 18 pictures: two requests of 9 (no fallback past 3)
    for call in calls:  # the emulator counts text tokens as characters / 4
        assert call.prompt_tokens < 20_000 / 4 + 9 * 1_300 + 2_000, call.prompt_tokens
    # Done, or failed with a reason within its budget (the emulator may cut a long
    # answer at the output limit): never a request past ENRICH_MAX_REQUESTS_PER_NOTE.
    state = doc["enrichment"]
    assert state["status"] == "done" or (state["status"] == "failed" and state["reason"]), state
    assert state["usage"]["requests"] == len(calls) <= 3


def test_text_sent_to_the_model_is_capped() -> None:
    from pipelines.enrichment.inputs import cap_text

    title, desc, tags, cut = cap_text("标题", "正" * 50_000, ("a", "b" * 30_000, "c"), 20_000)
    assert title == "标题" and cut
    assert len(title) + len(desc) + sum(len(t) for t in tags) <= 20_000
    assert desc.endswith("…") and tags == ()  # tags only when they fit, whole
    assert cap_text("t", "d", ("x",), 20_000) == ("t", "d", ("x",), False)
    title, desc, _, cut = cap_text("题" * 30_000, "正文", (), 20_000)
    assert len(title) == 20_000 and desc == "" and cut
