"""LocalRunner: the local backend for one note, its failures as EnrichFailure."""

from __future__ import annotations

import hashlib

import pytest

from pipelines.enrichment import EnrichFailure, LocalRunner, ModelImage, NoteInput
from tests.enrichment.support import model_jpeg, text_pictures


async def test_a_note_is_read_and_summarised_locally() -> None:
    picture = text_pictures(1)[0]
    data = model_jpeg(picture)
    note = NoteInput(
        title="面试复盘",
        desc="第一轮问了基础。建议多刷题。",
        tags=("面试",),
        images=(ModelImage(index=4, data=data, sha256=hashlib.sha256(data).hexdigest()),),
    )
    result = await LocalRunner().enrich(note)
    assert [r.index for r in result.images] == [4]
    assert result.images[0].ocr_text  # rapidocr read the picture's text
    assert result.summary.startswith("面试复盘") and result.language == "zh"
    assert any("建议多刷题" in advice for advice in result.advice)


async def test_an_internal_error_becomes_a_retryable_failure() -> None:
    # A malformed stored note (a tag that is not text) breaks the real summarizer.
    with pytest.raises(EnrichFailure) as caught:
        await LocalRunner().enrich(NoteInput("t", "d", (None,), ()))  # type: ignore[arg-type]
    assert caught.value.kind == "error" and caught.value.retryable
    assert caught.value.reason.startswith("error: TypeError: ")
