"""Issue 18, the chaos run's last miss: a paid result of the megabyte-desc note was lost.

Storage cuts a long text (``MONGO_MAX_STRING_CHARS``) but keeps the content hash of the
whole note. The enrich spider rebuilds a backlog note from that stored document, and
the incremental check used to hash it again, from the cut text: another hash. When a
``crawl xhs`` of the same note had stored a newer crawl meanwhile (day two of the chaos
run, both at once), storage kept the enrich run's ``done`` only for the content it was
made for, found other content, and dropped the result it had paid for: the note stayed
deferred. A backlog note keeps its stored hash now.
"""

from __future__ import annotations

from pathlib import Path

from crawler.spiders.enrich import note_item_from_document
from pipelines.storage.sanitize import TRUNCATION_MARK
from tests.factories import build_storage, make_note
from tests.storage.test_incremental import incremental
from tests.storage.test_pipeline import run_pipeline


async def test_a_backlog_note_whose_stored_text_was_cut_keeps_its_hash(
    mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path
) -> None:
    note = make_note(1, desc="很长的正文。" * 2_000)
    storage = build_storage(
        mongo_uri, mongo_db_name, tmp_path / "s.jsonl", MONGO_MAX_STRING_CHARS="1000"
    )
    await run_pipeline(storage, [note])
    stored = mongo_sync.notes.find_one({"_id": note.note_id})
    assert stored["desc"].endswith(TRUNCATION_MARK)  # cut by storage, hash of the whole
    backlog = note_item_from_document(stored)
    await incremental(mongo_uri, mongo_db_name, [backlog])
    assert backlog.content_hash == stored["content_hash"]
    assert backlog.change == "unchanged"
