"""Local backend OCR quality on the sandbox's reference post (real rapidocr, real pictures)."""

from __future__ import annotations

import re

from pipelines.imaging import downscale_for_model
from pipelines.local_backend import LocalBackend
from sandbox.dataset import REFERENCE_INDEX, REFERENCE_TITLE, Dataset
from sandbox.site.pictures import encode, render

_WHITESPACE = re.compile(r"\s+")


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(hypothesis: str, truth: str) -> float:
    """Character error rate: edit distance / length of the truth, whitespace removed."""
    hyp, ref = _WHITESPACE.sub("", hypothesis), _WHITESPACE.sub("", truth)
    return levenshtein(hyp, ref) / max(len(ref), 1)


def test_cer_definition() -> None:
    assert cer("ab c", "abc") == 0
    assert cer("abd", "abc") == 1 / 3
    assert cer("", "abcd") == 1
    assert cer("x", "") == 1


async def test_reference_images_ocr_below_five_percent_cer() -> None:
    note = Dataset(seed=1, size=50).note(REFERENCE_INDEX)
    assert note.title == REFERENCE_TITLE and len(note.images) == 3
    backend = LocalBackend()
    for spec in note.images:
        # What the model backends get: the media pipeline's downscaled JPEG of the original.
        data = downscale_for_model(encode(render(spec), spec.format))
        text = await backend.ocr(data)
        assert cer(text, spec.text) < 0.05, (spec.index, text, spec.text)
