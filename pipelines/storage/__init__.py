"""Storage: items into MongoDB (``notes`` plus one ``note_stats`` row per sighting).

Every item becomes a *unit* (a plain dict, also the spool record); units are buffered
and written with unordered ``bulk_write``s when ``MONGO_BATCH_SIZE`` units are waiting
or the oldest has waited ``MONGO_FLUSH_INTERVAL`` seconds, and on close. One concern
per module:

- :mod:`.sanitize`: a BSON-safe copy of scraped data (keys escaped by
  :mod:`pipelines.mongo.keys`, text repaired, strings capped);
- :mod:`.unit`: item → note unit (:func:`prepare_unit`, :class:`RejectedNote`, the
  BSON size check every unit kind uses);
- :mod:`.merge`: the note merge rules, pure (insert document, order-free updates);
- :mod:`.comments`, :mod:`.users`: the comment and creator units with their merge rules;
- :mod:`.kinds`: unit kind → its merge rules, collection and observation rows;
- :mod:`.schema`: collections and indexes;
- :mod:`.writer`: :class:`UnitWriter` (batches, retries, spool fallback, probe, replay);
- :mod:`.spool`: the fsync'd JSON-lines spool; :mod:`.records`: the structural check of
  a record read back from it;
- :mod:`.pipeline`: :class:`MongoStoragePipeline`, the Scrapy face;
- ``__main__``: ``python -m pipelines.storage replay``.

Adding a collection (e.g. ``comments``):

1. one module ``pipelines/storage/comments.py`` with ``prepare_comment_unit(item, *,
   now, run_id, max_chars)`` (a dict with ``type: "comment"``, ``v: 1`` and what the
   merge needs, sanitized by :func:`.sanitize.sanitize`) and the pure merge functions
   (document key, insert document or ``None``, order-free updates, superseded
   fix-ups), ending in ``COMMENT_KIND = UnitKind(name="comment", item_type=CommentItem,
   prepare=prepare_comment_unit, collection=COMMENTS, ...)``;
2. register it in :data:`pipelines.storage.kinds.KINDS` (the pipeline then routes
   ``CommentItem`` there) and add its indexes to :mod:`.schema`;
3. document the collection in ``docs/schema.md`` and test the merge on the embedded
   server. The writer, spool and replay need no change.

Adding a stored field to notes: the item field (``crawler/core/items.py``), the parser
that fills it (``crawler/parsing/``), ``docs/schema.md`` and a test. :func:`prepare_unit`
stores every item field (sanitized) and :mod:`.merge` writes the unit's fields as they
are, so storage needs no change unless the field has a merge rule of its own (and
``pipelines.incremental.content_hash`` only if the field is note content whose change
should count as a changed note).
"""

from crawler.core.names import NOTE_STATS, NOTES
from pipelines.storage.kinds import KINDS, NOTE_KIND, UnitKind, kind_for_item, kind_of
from pipelines.storage.merge import (
    SCHEMA_VERSION,
    new_note_document,
    note_writes,
    superseded_writes,
    unique_waves,
)
from pipelines.storage.pipeline import MongoStoragePipeline
from pipelines.storage.sanitize import TRUNCATION_MARK, sanitize
from pipelines.storage.schema import NOTE_INDEXES, NOTE_STATS_INDEX, ensure_schema
from pipelines.storage.spool import Spool, dumps_record, loads_record
from pipelines.storage.unit import MAX_UNIT_BSON_BYTES, RejectedNote, prepare_unit
from pipelines.storage.writer import CounterStats, StatsSink, UnitWriter

__all__ = [
    "KINDS",
    "MAX_UNIT_BSON_BYTES",
    "NOTES",
    "NOTE_INDEXES",
    "NOTE_KIND",
    "NOTE_STATS",
    "NOTE_STATS_INDEX",
    "SCHEMA_VERSION",
    "TRUNCATION_MARK",
    "CounterStats",
    "MongoStoragePipeline",
    "RejectedNote",
    "Spool",
    "StatsSink",
    "UnitKind",
    "UnitWriter",
    "dumps_record",
    "ensure_schema",
    "kind_for_item",
    "kind_of",
    "loads_record",
    "new_note_document",
    "note_writes",
    "prepare_unit",
    "sanitize",
    "superseded_writes",
    "unique_waves",
]
