"""The emulator's request log: one record per call, keys only as fingerprints."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """One call as the emulator saw it (``time`` is on the emulator clock)."""

    time: datetime
    method: str
    status: int
    key_fp: str | None = None
    project: str | None = None
    model: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    images: int = 0
    finish_reason: str | None = None
    latency_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat()
        return data


def summary_table(records: Iterable[RequestRecord]) -> str:
    """A fixed-width table per (key_fp, project, model): calls, outcomes and tokens."""
    groups: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in records:
        row = groups[(r.key_fp or "-", r.project or "-", r.model or "-")]
        row["calls"] += 1
        row["ok"] += r.status == 200
        row["429"] += r.status == 429
        row["other"] += r.status not in (200, 429)
        row["prompt"] += r.prompt_tokens
        row["output"] += r.output_tokens
        row["images"] += r.images
    header = (
        "key_fp",
        "project",
        "model",
        "calls",
        "ok",
        "429",
        "other",
        "prompt_tok",
        "output_tok",
        "images",
    )
    rows = [header] + [
        (*k, *(str(v[c]) for c in ("calls", "ok", "429", "other", "prompt", "output", "images")))
        for k, v in sorted(groups.items())
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if len(rows) == 1:
        lines.append("(no requests)")
    return "\n".join(lines)
