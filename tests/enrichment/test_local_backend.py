"""Local backend: reading order of OCR boxes, extractive summary, robustness."""

from __future__ import annotations

from pipelines.local_backend import (
    LocalBackend,
    detect_language,
    extractive_enrichment,
    reading_order,
    split_sentences,
)


def box(left: float, top: float, right: float, bottom: float) -> list[list[float]]:
    return [[left, top], [right, top], [right, bottom], [left, bottom]]


def test_reading_order_groups_lines_and_sorts_left_to_right() -> None:
    boxes = [
        box(300, 102, 400, 130),
        box(10, 10, 200, 40),
        box(10, 100, 120, 128),
        box(220, 12, 300, 41),
    ]
    texts = ["右", "第一行左", "左", "第一行右"]
    assert reading_order(boxes, texts) == ["第一行左 第一行右", "左 右"]


def test_reading_order_keeps_close_but_separate_lines_apart() -> None:
    boxes = [box(10, 40, 200, 70), box(10, 0, 200, 32)]
    assert reading_order(boxes, ["second", "first"]) == ["first", "second"]
    assert reading_order([], []) == []


def test_split_sentences_drops_topic_markup() -> None:
    text = "第一句。第二句！\n1. 列表项\n#面经[话题]# #LLM[话题]#"
    assert split_sentences(text) == ["第一句。", "第二句！", "1. 列表项"]


def test_language() -> None:
    assert detect_language("今天分享一下字节的面经") == "zh"
    assert detect_language("Interview notes for the LLM team, round one") == "en"
    assert detect_language("LLM 面经：Transformer 结构") == "zh"
    assert detect_language("!!! 123") == "und"


def test_extractive_enrichment_picks_questions_items_advice_and_topics() -> None:
    result = extractive_enrichment(
        title="算法面经：字节豆包大模型",
        desc="一面主要问了项目和八股。建议大家提前准备手撕代码！#面经[话题]#",
        tags=["面经", "大模型"],
        ocr_texts=[(0, "1. 介绍一下Transformer的结构\n2. RLHF和DPO有什么区别？"), (2, "")],
    )
    assert result.summary.startswith("算法面经：字节豆包大模型")
    assert "1. 介绍一下Transformer的结构" in result.key_points
    assert "2. RLHF和DPO有什么区别？" in result.key_points
    assert result.advice == ["建议大家提前准备手撕代码！"]
    assert result.topics[:2] == ["面经", "大模型"]
    assert len(result.topics) <= 8
    assert result.language == "zh"
    assert [(img.index, img.caption) for img in result.images] == [
        (0, "1. 介绍一下Transformer的结构"),
        (2, ""),
    ]


def test_extractive_enrichment_of_an_empty_note() -> None:
    result = extractive_enrichment(title="", desc="", tags=[], ocr_texts=[])
    assert (result.summary, result.key_points, result.advice, result.images) == ("", [], [], [])


async def test_an_unreadable_image_does_not_sink_the_note() -> None:
    # (Real OCR quality and reading order: the reference-post test in test_pipeline_local.)
    result = await LocalBackend().enrich(
        title="面经", desc="一面问了项目。", tags=[], images=[(1, b"not an image")]
    )
    assert [(r.index, r.ocr_text) for r in result.images] == [(1, "")]
    assert result.summary.startswith("面经")
