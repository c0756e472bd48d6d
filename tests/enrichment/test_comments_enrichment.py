"""Comments in the note's one enrichment request (issue 14): the Gemini emulator through
the real SDK, the embedded Mongo, the local backend; and the pure selection rules."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from crawler.core.items import CountText
from pipelines.enrichment import NoteInput, model_input_hash
from pipelines.enrichment.comments import (
    COMMENTS_MARK,
    LINE_OVERHEAD,
    comments_mark,
    local_insights,
    render_comments,
    top_comments,
)
from pipelines.enrichment.local_runner import LocalRunner
from pipelines.prompts import load_prompt
from tests.enrichment.support import DATASET, generate_calls, note_item, pipeline_run
from tests.factories import make_comment


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {**settings, "ENRICH_PACK": "never"}


def thread(likes: int = 0) -> list:
    root = make_comment(1, 1, content="请问用的什么资料？", like_count=CountText(90 + likes, "x"))
    return [
        root,
        make_comment(1, 2, content="太有用了，收藏了", like_count=CountText(40 + likes, "x")),
        make_comment(1, 3, root=root.comment_id, content="同问", like_count=CountText(3, "3")),
        make_comment(1, 4, content="该评论已删除", status=1, like_count=CountText(999, "999")),
    ]


def test_top_comments_by_likes_within_the_budget() -> None:
    lines = top_comments(thread())
    assert [line.text for line in lines] == ["请问用的什么资料？", "太有用了，收藏了", "同问"]
    assert lines[2].reply and not lines[0].reply  # the deleted one (999 likes) is left out
    budget = len(lines[0].text) + LINE_OVERHEAD
    assert [line.text for line in top_comments(thread(), budget)] == ["请问用的什么资料？"]
    long = make_comment(1, 9, content="长" * 5000, like_count=CountText(1, "1"))
    assert len(top_comments([long])[0].text) == 200
    block = render_comments(lines)
    assert block.splitlines()[0] == "1. [评论·赞90] 请问用的什么资料？"
    assert "3. [回复·赞3] 同问" in block
    prompt = load_prompt().render_note(title="t", desc="d", tags=[], labels=[], comments=block)
    assert block in prompt and "comment_insights" in prompt


def test_the_mark_keeps_a_result_made_with_comments_while_the_content_is_the_same() -> None:
    assert comments_mark(True, "abc", None) == COMMENTS_MARK
    assert comments_mark(False, "abc", "note_zh.v2/gemini/abc" + COMMENTS_MARK) == COMMENTS_MARK
    assert comments_mark(False, "abc", "note_zh.v2/gemini/abd" + COMMENTS_MARK) == ""
    assert comments_mark(False, "abc", None) == ""
    note = NoteInput(title="t", desc="d", tags=(), images=())
    marked = dataclasses.replace(note, comments=top_comments(thread()), comments_mark="+c")
    assert model_input_hash(marked) == model_input_hash(note) + "+c"
    # The comments themselves (their likes, new replies) are not part of the hash.
    other = dataclasses.replace(marked, comments=top_comments(thread(likes=50)))
    assert model_input_hash(other) == model_input_hash(marked)


async def test_local_backend_fills_the_questions() -> None:
    note = NoteInput(
        title="面经", desc="三轮面试。", tags=(), images=(), comments=top_comments(thread())
    )
    result = await LocalRunner().enrich(note)
    assert result.comment_insights.questions == ["请问用的什么资料？"]
    assert result.comment_insights.agreements == [] and result.summary
    assert local_insights([]).questions == []


async def test_one_request_with_comments_then_none_while_the_note_is_unchanged(
    settings, gemini_emulator, tmp_path
) -> None:
    spec = DATASET.note(3)
    plain = note_item(spec, tmp_path)
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(plain)  # comments not asked for: no mark
    assert not plain.enrichment.cache_key.endswith(COMMENTS_MARK)
    without = generate_calls(gemini_emulator)[-1]

    item = note_item(spec, tmp_path)
    item.comments = thread()
    item.enrichment = plain.enrichment  # as the incremental check copies it
    async with pipeline_run(settings) as (pipeline, _):
        await pipeline.process_item(item)
    calls = generate_calls(gemini_emulator)
    assert len(calls) == 2  # one request, now with the comments
    assert calls[-1].prompt_tokens > without.prompt_tokens
    assert item.enrichment.status == "done" and item.enrichment.cache_key.endswith("+c")
    insights = item.enrichment.result["comment_insights"]
    assert set(insights) == {"questions", "agreements", "disagreements"}

    # The next crawls: the thread read again (likes moved), or not read (unchanged).
    for comments in (thread(likes=7), None):
        again = note_item(spec, tmp_path)
        again.comments = comments
        again.enrichment = item.enrichment
        async with pipeline_run(settings) as (pipeline, stats):
            await pipeline.process_item(again)
        assert len(generate_calls(gemini_emulator)) == 2, comments
        assert again.enrichment.cache_key == item.enrichment.cache_key
        assert stats.get_value("enrich/cache_hits") == 1
