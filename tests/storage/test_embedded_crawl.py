"""`scrapy crawl` with MONGO_URI empty: the embedded server is started, used by the
incremental check, storage and the run record, and shut down with the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.mongo import EMBEDDED_JSON, MongoHandle
from sandbox.harness import sandbox_settings
from tests.factories import mongo_settings
from tests.fixtures.crawl import sandbox_env

pytestmark = pytest.mark.slow


async def test_crawl_with_embedded_server(sandbox_site, scrapy_crawl, tmp_path: Path):
    notes = [sandbox_site.dataset.note(i) for i in range(4)]
    deleted = set(sandbox_site.dataset.deleted_ids(range(4)))
    ids = ",".join(f"{n.note_id}:{n.xsec_token}" for n in notes)
    env = sandbox_env(sandbox_site, ENRICH_BACKEND="off")
    result = scrapy_crawl("xhs", {"note_ids": ids}, env)
    assert result.returncode == 0, result.log[-4000:]
    assert "embedded MongoDB-wire server at mongodb://127.0.0.1:" in result.log
    data_dir = Path(sandbox_settings(tmp_path)["MONGO_DATA_DIR"])  # what the crawl used
    assert not (data_dir / EMBEDDED_JSON).exists()  # closed at engine stop

    handle = await MongoHandle(mongo_settings(data_dir=str(data_dir))).start()
    try:
        stored = {d["_id"] async for d in handle.db.notes.find({}, {"_id": 1})}
        assert stored == {n.note_id for n in notes} - deleted
        assert await handle.db.note_stats.count_documents({}) == len(stored)
        assert await handle.db.crawl_runs.count_documents({}) == 1
    finally:
        await handle.close()
