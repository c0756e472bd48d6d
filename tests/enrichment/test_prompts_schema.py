"""Prompt templates (versioned files) and the structured output schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.enrich_schema import ImageBatch, NoteEnrichment
from pipelines.prompts import DEFAULT_PROMPT_PATH, PromptError, load_prompt, parse_prompt


def test_default_prompt_is_versioned_chinese_and_asks_what_the_old_script_asked() -> None:
    prompt = load_prompt()
    assert prompt.version == "note_zh.v2"
    assert DEFAULT_PROMPT_PATH.stem == prompt.version
    text = prompt.render_note(
        title="算法面经", desc="三轮面试", tags=["面经", "LLM"], labels=["Image 0", "Image 1"]
    )
    for asked in ("总结", "关键经验", "技巧和建议", "逐字"):
        assert asked in text
    assert "标题：算法面经" in text and "正文：三轮面试" in text and "标签：面经、LLM" in text
    assert "Image 0、Image 1" in text and "共 2 项" in text


def test_images_section_names_only_its_labels() -> None:
    text = load_prompt().render_images(title="T", labels=["Image 6", "Image 7"])
    assert "Image 6、Image 7" in text and "共 2 项" in text
    assert "summary" not in text


def test_braces_in_note_text_are_not_placeholders() -> None:
    text = load_prompt().render_note(title="{x}", desc="a {b} c", tags=[], labels=[])
    assert "a {b} c" in text


def test_header_version_wins_over_file_name(tmp_path: Path) -> None:
    path = tmp_path / "custom.txt"
    path.write_text("# version: mine.v3\n[note]\n{title}\n[images]\n{image_labels}\n", "utf-8")
    assert load_prompt(path).version == "mine.v3"
    path.write_text("[note]\n{title}\n[images]\n{image_labels}\n", "utf-8")
    assert load_prompt(path).version == "custom"


@pytest.mark.parametrize(
    "text",
    [
        "[note]\n{title}\n",  # no [images]
        "[note]\n{titel}\n[images]\nx\n",  # unknown placeholder
        "stray text\n[note]\nx\n[images]\ny\n",
    ],
)
def test_malformed_templates_fail_at_load(text: str) -> None:
    with pytest.raises(PromptError):
        parse_prompt(text, default_version="x")


def test_schemas_validate_the_documented_shape() -> None:
    answer = NoteEnrichment.model_validate(
        {
            "images": [{"index": 0, "ocr_text": "第一题", "caption": "题目卡片"}],
            "summary": "s",
            "key_points": ["k"],
            "advice": [],
            "topics": ["LLM"],
            "language": "zh",
        }
    )
    assert set(answer.model_dump()) == {
        "images",
        "summary",
        "key_points",
        "advice",
        "topics",
        "language",
        "comment_insights",  # issue 14: empty lists unless comments were sent
    }
    assert answer.comment_insights.model_dump() == {
        "questions": [],
        "agreements": [],
        "disagreements": [],
    }
    assert ImageBatch.model_validate({"images": []}).images == []
    with pytest.raises(ValueError):
        NoteEnrichment.model_validate({"images": []})
