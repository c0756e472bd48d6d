"""The chaos run's checkers: pure functions over what a run left behind.

Each returns what it found wrong (or the figures it measured); ``bench.chaos`` turns
them into violations. Tests in ``tests/chaos/test_checkers.py`` feed each one a
violation, so that a green chaos run means something.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos_faults import ProcessFault, TapRecord
from crawler.urls import note_id_from_url

_GAVE_UP = re.compile(r"(?:Gave up retrying <GET |giving up on )(\S+?)>?(?:\s|$)")
_CONTENT_PATH = re.compile(r"^(?:full|model|video)/[0-9a-f]{2}/([0-9a-f]{64})\.[a-z0-9]+$")


def gave_up_note_ids(log: str) -> set[str]:
    """Note ids whose page the crawl gave up on (retries or captchas exhausted)."""
    ids = set()
    for match in _GAVE_UP.finditer(log):
        note_id = note_id_from_url(match.group(1))
        if note_id:
            ids.add(note_id)
    return ids


def check_image_paths(notes: Iterable[Mapping[str, Any]], store: Path) -> list[str]:
    """Stored paths that leave the store, are absolute or name a missing file; ``ok``
    originals whose bytes do not hash to their content path (a torn write, e.g. on a
    full disk); images failed or skipped without a reason; and any symlink inside the
    store (a way out of it)."""
    root = store.resolve()
    problems = []
    for note in notes:
        for index, image in enumerate(note.get("images") or []):
            where = f"{note['_id']} image {index}"
            if image.get("status") in ("failed", "skipped") and not image.get("error"):
                problems.append(f"{where} {image.get('status')} without a reason")
            for name in ("path", "model_path"):
                value = image.get(name)
                if not value:
                    continue
                target = (root / value).resolve()
                if Path(value).is_absolute() or not target.is_relative_to(root):
                    problems.append(f"{where} {name} outside the store: {value!r}")
                elif image.get("status") == "ok" and not target.is_file():
                    problems.append(f"{where} {name} missing: {value!r}")
                elif image.get("status") == "ok" and name == "path":
                    named = _CONTENT_PATH.match(value)
                    digest = hashlib.sha256(target.read_bytes()).hexdigest()
                    if named and named.group(1) != digest:
                        problems.append(f"{where} path {value!r} holds other bytes (torn?)")
    problems += [f"symlink in the store: {p}" for p in store.rglob("*") if p.is_symlink()]
    return problems


def files_outside(
    work: Path, allowed_dirs: Iterable[str], allowed_suffixes: Sequence[str]
) -> list[str]:
    """Files under ``work`` that are neither inside one of ``allowed_dirs`` (top-level
    names: the stores, the spool, the reports) nor a run's own log or feed file."""
    allowed = set(allowed_dirs)
    found = []
    for path in sorted(work.rglob("*")):
        if not path.is_file():
            continue
        top = path.relative_to(work).parts[0]
        if top in allowed or (path.parent == work and path.name.endswith(tuple(allowed_suffixes))):
            continue
        found.append(str(path.relative_to(work)))
    return found


def scan_for_secrets(
    needles: Mapping[str, bytes], texts: Mapping[str, bytes], roots: Iterable[Path]
) -> list[str]:
    """Where any needle occurs: in the given texts and in every file under ``roots``."""
    found = []
    for label, blob in texts.items():
        found += [f"{name} in {label}" for name, needle in needles.items() if needle in blob]
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            blob = path.read_bytes()
            found += [f"{name} in {path}" for name, needle in needles.items() if needle in blob]
    return found


def mongo_dump(db: Any) -> bytes:
    """Every document of every collection as JSON lines."""
    lines = []
    for name in sorted(db.list_collection_names()):
        for doc in db[name].find():
            lines.append(json.dumps({"collection": name, **doc}, default=str, ensure_ascii=False))
    return "\n".join(lines).encode()


# --- Gemini spend -------------------------------------------------------------------------------


@dataclass
class Spend:
    """What the Gemini requests of all the runs came to, against the notes. A note's
    *content* here is what one request carried of it: its text or not, and the bytes
    of its pictures in that request."""

    billed: int = 0  # answered 200: the emulator counted them
    usable: int = 0  # of which the crawler could store the answer
    unusable: int = 0  # truncated or unparsable answers (each forces another request)
    new_content: int = 0  # usable requests carrying some content not answered before
    in_flight_at_kills: list[int] = field(default_factory=list)
    duplicates: int = 0  # usable answers for a content already answered usably
    explained_by_kills: int = 0  # the earlier answer was in flight when its run died
    after_bad_answer: int = 0  # sent again as part of a retry after an unusable answer
    unexplained: list[str] = field(default_factory=list)  # note ids answered twice
    unexplained_detail: list[str] = field(default_factory=list)  # which runs, when
    over_budget: list[str] = field(default_factory=list)  # (note, run) over the budget
    unidentified: int = 0  # requests whose notes the prompt did not name
    lost_answer_ages_s: list[list[float]] = field(default_factory=list)  # per kill
    summaries_found_at_end: float = 0.0  # share of usable answers found stored at the end

    @property
    def bound(self) -> int:
        """Requests the runs may bill: those with new content, the unusable answers and
        the retries they caused, and every request in flight when a crawl was killed."""
        return (
            self.new_content + self.unusable + self.after_bad_answer + sum(self.in_flight_at_kills)
        )

    def figures(self, notes: int) -> dict[str, Any]:
        return {
            "notes": notes,
            "billed_requests": self.billed,
            "usable_answers": self.usable,
            "unusable_answers": self.unusable,
            "requests_with_new_content": self.new_content,
            "in_flight_at_each_kill": self.in_flight_at_kills,
            "bound (new content + unusable + their retries + in flight)": self.bound,
            "usable_duplicates": self.duplicates,
            "duplicates_explained_by_kills": self.explained_by_kills,
            "duplicates_in_a_retry_after_a_bad_answer": self.after_bad_answer,
            "notes_enriched_twice_unexplained": self.unexplained_detail,
            "requests_naming_no_known_note": self.unidentified,
            "usable_answers_lost_at_each_kill_answered_s_before": self.lost_answer_ages_s,
            "usable_answers_found_stored_at_the_end": round(self.summaries_found_at_end, 3),
        }


def gemini_spend(
    records: Sequence[TapRecord],
    kills: Mapping[str, ProcessFault],
    *,
    grace_s: float,
    budget_per_run: int,
    final_durable: frozenset[str] | None = None,
) -> Spend:
    """Spend and double spend from the tap's records. ``kills`` maps the label of each
    crawl that was killed (or force-stopped) to its fault; a request of that crawl was
    in flight at the fault when its answer had not become durable by then
    (:meth:`TapRecord.in_flight_at`). A usable answer for a content answered usably
    before is a duplicate: explained when the earlier answer was in flight at a kill,
    or when the run had an unusable answer for the note in between (halving a batch
    after a truncated answer can send the same pictures again); else the note was
    enriched twice. ``final_durable``: the summaries stored at the end, to tell how
    many usable answers the durability test can recognise."""
    spend = Spend()

    def in_flight(record: TapRecord) -> bool:
        fault = kills.get(record.label)
        return fault is not None and record.in_flight_at(fault, grace_s)

    for label, fault in kills.items():
        if fault.moment is None:
            continue
        flying = [r for r in records if r.label == label and r.billed and in_flight(r)]
        spend.in_flight_at_kills.append(len(flying))
        spend.lost_answer_ages_s.append(
            sorted(round(fault.moment - r.ended, 2) for r in flying if r.usable and r.ended)
        )
    if final_durable is not None:
        answered = [r for r in records if r.usable and r.summaries]
        found = sum(1 for r in answered if set(r.summaries) <= final_durable)
        spend.summaries_found_at_end = found / len(answered) if answered else 1.0
    latest: dict[tuple[str, bool, str], TapRecord] = {}
    bad: dict[tuple[str, str], list[float]] = defaultdict(list)  # (note, run) -> sent at
    per_run: Counter[tuple[str, str]] = Counter()
    for record in sorted((r for r in records if r.billed), key=lambda r: r.started):
        spend.billed += 1
        spend.usable += record.usable
        spend.unusable += not record.usable
        new = False
        for carried in record.carried:
            note = carried.note_id
            spend.unidentified += note.startswith("?")
            per_run[(note, record.label)] += 1
            if not record.usable:
                bad[(note, record.label)].append(record.started)
                continue
            earlier = latest.get(carried.key)
            latest[carried.key] = record
            if earlier is None:
                new = True
                continue
            spend.duplicates += 1
            if in_flight(earlier):
                spend.explained_by_kills += 1
            elif any(earlier.started < t < record.started for t in bad[(note, record.label)]):
                spend.after_bad_answer += 1
            else:
                spend.unexplained.append(note)
                spend.unexplained_detail.append(
                    f"{note}: {earlier.label} at {earlier.started:.1f}-{earlier.ended or 0:.1f} s, "
                    f"again by {record.label} at {record.started:.1f} s"
                )
        spend.new_content += record.usable and new
    spend.over_budget = sorted(
        f"{note} in {label}: {n}" for (note, label), n in per_run.items() if n > budget_per_run
    )
    return spend
