"""Deterministic answers: a JSON object that follows the request's schema, or plain text.

The emulator does not pretend to understand anything. Summaries are the first sentences
of the note text, key points its list lines and questions, advice its lines with advice
words, topics its tags; per-image entries carry the ground-truth text of each picture.
Reader comments are the prompt's lines ``<n>. [评论·赞<likes>] <text>`` (or ``回复``, the
client's comments block); the string lists of an object whose name says ``comment``
(``comment_insights``) come from them alone: questions are the comments ending in ？/?,
disagreements those with a word of dispute, agreements those with a word of assent, and
all three are empty without comments. A string field named ``opening`` is the first 16
characters of the body (else of the first comment), whitespace removed.
Both schema dialects the SDK sends are walked: the OpenAPI subset (``responseSchema``:
upper-case types, ``property_ordering``, ``nullable``, ``anyOf``) and JSON Schema
(``responseJsonSchema``: lower-case types, ``$defs``/``$ref``, type lists).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sandbox.gemini.content import ImageInfo, field, snake

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)\s+")
_LIST_LINE = re.compile(r"^\s*(?:[-*•·▪●○◆➤✅✔️]|\d{1,2}[.、)）]|[①-⑳]|[（(]\d{1,2}[)）])\s*")
_HASHTAG = re.compile(r"#([^#\[\s]{1,20})(?:\[话题\])?#?")
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_ADVICE_WORDS = (
    "建议",
    "推荐",
    "记得",
    "一定要",
    "不要",
    "别",
    "注意",
    "可以",
    "tip",
    "should",
    "recommend",
    "avoid",
    "remember",
)
_LABELS = {
    "title": ("标题", "title"),
    "body": ("正文", "内容", "desc", "text", "body", "content"),
    "tags": ("标签", "话题", "tags", "topics"),
}
_LABEL_LINE = re.compile(r"^\s*([^\s:：]{1,12})\s*[:：]\s*(.*)$")
_IMAGE_LABEL = re.compile(r"^\s*(?:image|图片|图)\s*\d+\s*[:：]?\s*$", re.IGNORECASE)
_NONE_MARKERS = {"", "（无）", "(无)", "无", "none", "(none)"}
_COMMENT_LINE = re.compile(r"^\s*\d{1,3}\.\s*\[(?:评论|回复)·赞\d+\]\s*(.+)$")
_DISPUTE_WORDS = ("不同意", "不认同", "不赞同", "不对", "质疑", "反对", "错了", "未必", "不一定")
_DISPUTE_WORDS += ("disagree", "wrong", "not true")
_ASSENT_WORDS = ("同意", "认同", "赞同", "确实", "有用", "有帮助", "收藏", "谢谢", "感谢", "支持")
_ASSENT_WORDS += ("说得对", "agree", "useful", "thanks", "helpful")
_QUESTION_ENDS = ("？", "?")
OPENING_CHARS = 16
MAX_INSIGHTS = 10


@dataclass(frozen=True)
class NoteText:
    """The note as far as the emulator can tell: labelled sections or the whole text."""

    title: str
    body: str
    tags: tuple[str, ...]
    comments: tuple[str, ...] = ()  # the reader comments' texts, in prompt order


def split_note(texts: Sequence[str]) -> NoteText:
    """Find ``标题：``/``正文：``/``标签：`` (or Title:/Text:/Tags:) sections in the prompt.

    Title and tags are one line each; the body runs, blank lines included, up to the next
    label. Without labels the whole text (minus "Image N:" label lines) is the body.
    """
    sections: dict[str, list[str]] = {}
    current: str | None = None
    unlabelled: list[str] = []
    comments: list[str] = []
    for line in "\n".join(texts).splitlines():
        if _IMAGE_LABEL.match(line):
            continue
        if comment := _COMMENT_LINE.match(line):
            comments.append(comment.group(1).strip())
            continue
        match = _LABEL_LINE.match(line)
        label = match.group(1).lower() if match else None
        section = next((name for name, names in _LABELS.items() if label in names), None)
        if match is not None and section is not None:
            current = section
            sections.setdefault(section, []).append(match.group(2))
        elif current == "body":
            sections["body"].append(line)
        else:
            current = None
            unlabelled.append(line)
    title = " ".join(sections.get("title", [])).strip()
    body = "\n".join(sections.get("body", [])).strip()
    if not body and not sections:
        body = "\n".join(unlabelled).strip()
    title = "" if title in _NONE_MARKERS else title
    body = "" if body in _NONE_MARKERS else body
    tag_text = " ".join(sections.get("tags", []))
    tags = [t.strip() for t in re.split(r"[、,，\s]+", tag_text) if t.strip() not in _NONE_MARKERS]
    tags += _HASHTAG.findall(body)
    return NoteText(
        title=title,
        body=body,
        tags=tuple(dict.fromkeys(t for t in tags if t)),
        comments=tuple(comments),
    )


def sentences(text: str) -> list[str]:
    """Sentences line by line (a line break ends one too), list markers removed."""
    out: list[str] = []
    for line in text.splitlines():
        line = _LIST_LINE.sub("", line.strip())
        out += [s.strip() for s in _SENTENCE_END.split(line) if s and s.strip()]
    return out


def summary(note: NoteText) -> str:
    """The title plus the first two sentences of the body (at most ~200 characters)."""
    body = _HASHTAG.sub("", note.body)
    parts = [note.title] if note.title else []
    parts += sentences(body)[:2]
    text = " ".join(p for p in parts if p).strip()
    return text[:200] if text else "(empty note)"


def key_points(note: NoteText, limit: int = 6) -> list[str]:
    """List lines and questions of the body, else its first sentences."""
    points: list[str] = []
    for line in note.body.splitlines():
        stripped = line.strip()
        if _LIST_LINE.match(stripped):
            points.append(_LIST_LINE.sub("", stripped))
        elif stripped.endswith(("?", "？")):
            points.append(stripped)
    points = [p for p in points if p]
    return (points or sentences(note.body))[:limit]


def advice(note: NoteText, limit: int = 5) -> list[str]:
    """Sentences of the body that contain an advice word."""
    found = [s for s in sentences(note.body) if any(w in s.lower() for w in _ADVICE_WORDS)]
    return found[:limit]


def topics(note: NoteText, limit: int = 8) -> list[str]:
    """The note's tags, else the first short words of its title."""
    if note.tags:
        return list(note.tags[:limit])
    words = [w for w in re.split(r"[\s,，。!！?？|｜/]+", note.title) if 1 < len(w) <= 12]
    return words[:limit]


def language(text: str) -> str:
    """``zh`` when CJK characters dominate the letters, else ``en``."""
    cjk, latin = len(_CJK.findall(text)), len(_LATIN.findall(text))
    return "zh" if cjk and cjk * 3 >= latin else "en"


def comment_insight(note: NoteText, name: str) -> list[str]:
    """The comments a ``comment_insights`` list named ``name`` gathers (see the module doc)."""
    lowered = name.lower()
    questions = [c for c in note.comments if c.rstrip().endswith(_QUESTION_ENDS)]
    disputes = [
        c
        for c in note.comments
        if c not in questions and any(w in c.lower() for w in _DISPUTE_WORDS)
    ]
    if "disagree" in lowered or "dispute" in lowered:
        return disputes[:MAX_INSIGHTS]
    if "agree" in lowered or "praise" in lowered:
        assent = [
            c
            for c in note.comments
            if c not in questions
            and c not in disputes
            and any(w in c.lower() for w in _ASSENT_WORDS)
        ]
        return assent[:MAX_INSIGHTS]
    return questions[:MAX_INSIGHTS]


def opening(note: NoteText) -> str:
    """The first characters of the body, else of the first comment (whitespace removed)."""
    source = note.body or (note.comments[0] if note.comments else "")
    return re.sub(r"\s+", "", source)[:OPENING_CHARS]


def caption(image: ImageInfo) -> str:
    first = next((line.strip() for line in image.text.splitlines() if line.strip()), "")
    if first.startswith("[emulator:"):
        first = ""
    described = f"：{first[:40]}" if first else ""
    return f"图片 {image.index}（{image.width}×{image.height}）{described}"


@dataclass(frozen=True)
class FillContext:
    note: NoteText
    images: Sequence[ImageInfo]
    root: Mapping[str, Any]
    note_id: str | None = None  # the note an entry of a packed answer is about
    in_comments: bool = False  # filling an object about the comments (comment_insights)


def resolve(schema: Mapping[str, Any], ctx: FillContext) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = ctx.root
        for step in ref[2:].split("/"):
            target = target.get(step, {}) if isinstance(target, Mapping) else {}
        return resolve(target, ctx) if isinstance(target, Mapping) else {}
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = field(schema, combinator)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if type_of(resolve(o, ctx)) != "null"), options[0])
            merged = {k: v for k, v in schema.items() if k not in (combinator, snake(combinator))}
            return {**merged, **resolve(chosen, ctx)}
    return schema


def type_of(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if kind is None:
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        if "enum" in schema:
            return "string"
        return "string"
    return str(kind).lower()


def _ordered_properties(schema: Mapping[str, Any]) -> list[str]:
    props = schema.get("properties") or {}
    order = field(schema, "propertyOrdering") or []
    return [p for p in order if p in props] + [p for p in props if p not in order]


_IMAGE_WORDS = ("image", "img", "picture", "photo", "pic")


def _is_per_image(name: str, item: Mapping[str, Any]) -> bool:
    """An array of objects is per image when its name or an item field says so."""
    words = (*_IMAGE_WORDS, "ocr")
    names = [name, *(item.get("properties") or {})]
    return any(w in n.lower() for n in names for w in words)


def _string(name: str, schema: Mapping[str, Any], ctx: FillContext, image: ImageInfo | None) -> str:
    lowered = name.lower()
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        if "lang" in lowered:
            wanted = language(ctx.note.body + ctx.note.title)
            return next((e for e in enum if str(e).lower().startswith(wanted)), enum[0])
        return enum[0]
    if ctx.note_id is not None and image is None and lowered in ("note_id", "noteid", "id"):
        return ctx.note_id
    if lowered == "opening" and image is None:
        return opening(ctx.note)
    if image is not None:
        if "ocr" in lowered or "text" in lowered:
            return image.text
        if any(w in lowered for w in ("caption", "desc", "alt", "label")):
            return caption(image)
    if "lang" in lowered:
        return language(ctx.note.body + ctx.note.title)
    if "summary" in lowered or "abstract" in lowered:
        return summary(ctx.note)
    if "title" in lowered:
        return ctx.note.title or summary(ctx.note)[:30]
    if image is not None:
        return caption(image)
    return summary(ctx.note)


def _string_list(name: str, ctx: FillContext) -> list[str]:
    if ctx.in_comments:
        return comment_insight(ctx.note, name)
    lowered = name.lower()
    if any(w in lowered for w in ("topic", "tag", "keyword", "hashtag")):
        return topics(ctx.note)
    if any(w in lowered for w in ("advice", "tip", "suggest", "recommend")):
        return advice(ctx.note)
    if "ocr" in lowered or "text" in lowered:
        return [image.text for image in ctx.images]
    return key_points(ctx.note)


def _bounded(items: list[Any], schema: Mapping[str, Any], make: Any) -> list[Any]:
    low = int(field(schema, "minItems") or 0)
    high = field(schema, "maxItems")
    while len(items) < low:
        items.append(make(len(items)))
    return items[: int(high)] if high is not None else items


def fill(
    schema: Mapping[str, Any],
    ctx: FillContext,
    name: str = "",
    image: ImageInfo | None = None,
) -> Any:
    """A value that validates against ``schema``; ``name`` is the property it fills."""
    schema = resolve(schema, ctx)
    kind = type_of(schema)
    if kind == "object":
        props = schema.get("properties") or {}
        if "comment" in name.lower() and not ctx.in_comments:
            ctx = replace(ctx, in_comments=True)
        return {p: fill(props[p], ctx, p, image) for p in _ordered_properties(schema)}
    if kind == "array":
        item = resolve(schema.get("items") or {"type": "string"}, ctx)
        if type_of(item) == "object" and _is_per_image(name, item):
            values = [fill(item, ctx, name, img) for img in ctx.images]
        elif type_of(item) == "string" and "enum" not in item:
            values = _string_list(name, ctx)
        else:
            values = []
        return _bounded(values, schema, lambda i: fill(item, ctx, name, image))
    if kind in ("integer", "number"):
        lowered = name.lower()
        if image is not None and ("index" in lowered or lowered in ("idx", "i")):
            return image.index
        if "count" in lowered and image is None:
            return len(ctx.images)
        minimum = field(schema, "minimum")
        value = minimum if isinstance(minimum, int | float) else 0
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _string(name, schema, ctx, image)


def json_answer(
    schema: Mapping[str, Any] | None, texts: Sequence[str], images: Sequence[ImageInfo]
) -> Any:
    """The JSON value for a JSON-mode request (without a schema: the summary object)."""
    note = split_note(texts)
    if schema is None:
        return {"summary": summary(note), "key_points": key_points(note)}
    return fill(schema, FillContext(note=note, images=images, root=schema))


def text_answer(texts: Sequence[str], images: Sequence[ImageInfo]) -> str:
    """The plain-text answer: the summary, then each image's text."""
    lines = [summary(split_note(texts))]
    lines += [f"Image {img.index}: {img.text}" for img in images]
    return "\n".join(lines) + "\n"
