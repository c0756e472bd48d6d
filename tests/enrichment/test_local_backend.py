"""Local backend: reading order of OCR boxes, extractive summary, real rapidocr OCR."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from pipelines.local_backend import (
    LocalBackend,
    detect_language,
    extractive_enrichment,
    reading_order,
    split_sentences,
)

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


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


def _picture(lines: list[str]) -> bytes:
    font = ImageFont.truetype(FONT, 34)
    img = Image.new("RGB", (900, 80 + 70 * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 70 * i), line, font=font, fill="black")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


async def test_real_ocr_reads_lines_in_order_and_unreadable_images_do_not_sink_the_note() -> None:
    backend = LocalBackend()
    lines = ["三面：聊项目和职业规划", "反问环节问了团队方向"]
    result = await backend.enrich(
        title="面经", desc="", tags=[], images=[(0, _picture(lines)), (1, b"not an image")]
    )
    assert result.images[0].ocr_text.replace(" ", "").split("\n") == lines
    assert result.images[1].ocr_text == ""
