"""The one text-cleaning rule, applied once where items are built.

Scraped text can hold lone UTF-16 surrogates (half an emoji): they cannot be encoded
as UTF-8, so hashing, JSON, BSON and the model request would each fail on them. They
become U+FFFD; proper surrogate pairs are joined into their character.
"""

from __future__ import annotations


def clean_text(text: str) -> str:
    """Valid UTF-8-encodable text: surrogate pairs joined, lone surrogates → U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
