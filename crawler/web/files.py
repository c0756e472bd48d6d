"""Serving files from one directory only (images under IMAGES_STORE, run reports).

:func:`resolve_inside` is the whole rule: the requested relative path is joined to the
root, fully resolved (``..`` and symlinks included) and refused unless the result is a
regular file inside the resolved root. Absolute paths, NUL bytes and anything that
escapes the root give ``None``.
"""

from __future__ import annotations

from pathlib import Path


def resolve_inside(root: Path, relative: str) -> Path | None:
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")):
        return None
    base = root.resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError):  # symlink loops
        return None
    if not target.is_relative_to(base) or target == base or not target.is_file():
        return None
    return target
