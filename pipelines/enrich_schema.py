"""Structured output schemas for note enrichment.

The same models are the ``response_schema`` given to Gemini and the shape of
``item.enrichment.result`` (via :func:`NoteEnrichment.model_dump`), so the local
backend builds them too. A note whose images do not fit in one request is split: the
first request carries the note text and asks for :class:`NoteEnrichment`, the following
ones carry only images and ask for :class:`ImageBatch`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ImageReading(BaseModel):
    """What one image says, keyed by the label it was sent under ("Image <index>:")."""

    index: int = Field(description="The number from the 'Image N:' label before the image.")
    ocr_text: str = Field(
        description="All text visible in the image, verbatim, in reading order; empty if none."
    )
    caption: str = Field(description="One line describing the image.")


class ImageBatch(BaseModel):
    """Answer for a request that carries only images (second and later parts of a note)."""

    images: list[ImageReading] = Field(description="One entry per labelled image, in order.")


class CommentInsights(BaseModel):
    """What the note's comments say (issue 14); empty lists when the request had none."""

    questions: list[str] = Field(
        default_factory=list, description="The main questions readers ask in the comments."
    )
    agreements: list[str] = Field(
        default_factory=list, description="What readers agree with, confirm or praise."
    )
    disagreements: list[str] = Field(
        default_factory=list, description="What readers dispute, doubt or disagree with."
    )


class NoteSummary(ImageBatch):
    """The note as a whole, without comments (what a packed request asks per note)."""

    summary: str = Field(description="Summary of the main content of the post.")
    key_points: list[str] = Field(description="Key experiences, facts or questions.")
    advice: list[str] = Field(description="Tips and recommendations the post gives.")
    topics: list[str] = Field(description="Short topic keywords.")
    language: str = Field(description="Main language of the post as a code, e.g. zh or en.")


class NoteEnrichment(NoteSummary):
    """Answer for a note's first (or only) request: its images plus the note as a whole,
    and what the comments sent with it say."""

    comment_insights: CommentInsights = Field(
        default_factory=CommentInsights,
        description="From the readers' comments given with the post; empty lists if none.",
    )
