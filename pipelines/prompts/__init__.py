"""Versioned prompt templates for note enrichment.

A template file holds a header (``# version: <name>`` and free comments, lines starting
with ``#``) and two sections: ``[note]`` (first request of a note: its text plus images)
and ``[images]`` (later requests of a note split for size: images only). Placeholders
use ``str.format`` syntax; only :data:`PLACEHOLDERS` are allowed, so a typo fails at
load time rather than on the first note. The version (header, else the file stem) goes
into the enrichment cache key: changing the wording without bumping it keeps serving
results of the old prompt.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PROMPT_PATH = Path(__file__).with_name("note_zh.v2.txt")
PLACEHOLDERS = frozenset({"title", "desc", "tags", "image_count", "image_labels", "comments"})
_SECTIONS = ("note", "images")


class PromptError(ValueError):
    """The template file is malformed (missing section, unknown placeholder …)."""


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    note: str
    images: str

    def render_note(
        self, *, title: str, desc: str, tags: list[str], labels: list[str], comments: str = ""
    ) -> str:
        """The first request's text; ``comments`` is the readers' comments block (issue 14;
        a template without ``{comments}`` leaves them out)."""
        return self.note.format(
            title=title or "（无）",
            desc=desc or "（无）",
            tags="、".join(tags) if tags else "（无）",
            image_count=len(labels),
            image_labels="、".join(labels) if labels else "（无图片）",
            comments=comments or "（无评论）",
        )

    def render_images(self, *, title: str, labels: list[str]) -> str:
        return self.images.format(
            title=title or "（无）",
            desc="",
            tags="",
            image_count=len(labels),
            image_labels="、".join(labels),
            comments="",
        )


def parse_prompt(text: str, *, default_version: str) -> PromptTemplate:
    """Parse a template file's text; ``default_version`` applies when the header has none."""
    version = default_version
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if current is None and stripped.startswith("#"):
            key, _, value = stripped.lstrip("#").partition(":")
            if key.strip().lower() == "version" and value.strip():
                version = value.strip()
            continue
        if stripped.startswith("[") and stripped.endswith("]") and stripped[1:-1] in _SECTIONS:
            current = sections.setdefault(stripped[1:-1], [])
            continue
        if current is None:
            if stripped:
                raise PromptError(f"text outside a section: {stripped[:40]!r}")
            continue
        current.append(line)
    missing = [name for name in _SECTIONS if name not in sections]
    if missing:
        raise PromptError(f"missing section(s): {', '.join(missing)}")
    bodies = {name: "\n".join(lines).strip() + "\n" for name, lines in sections.items()}
    for name, body in bodies.items():
        used = {field for _, field, _, _ in string.Formatter().parse(body) if field is not None}
        unknown = used - PLACEHOLDERS
        if unknown:
            raise PromptError(f"unknown placeholder(s) in [{name}]: {', '.join(sorted(unknown))}")
    return PromptTemplate(version=version, note=bodies["note"], images=bodies["images"])


def load_prompt(path: str | Path | None = None) -> PromptTemplate:
    """Load a template file (the default Chinese prompt when ``path`` is empty)."""
    file = Path(path) if path else DEFAULT_PROMPT_PATH
    return parse_prompt(file.read_text(encoding="utf-8"), default_version=file.stem)
