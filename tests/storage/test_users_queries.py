"""The creator queries of docs/schema.md (its ``py`` blocks) run against stored data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crawler.core.items import CountText, UserItem
from crawler.parsing.counts import parse_count
from tests.factories import Clock, build_storage, enrichment, make_note, make_profile, make_user

from .test_pipeline import run_pipeline

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def _creator_blocks() -> list[str]:
    text = SCHEMA_DOC.read_text("utf-8")
    section = text[text.index("### Creators (`users`, `user_stats`)") :]
    section = section[: section.index("\n### ", 1)]
    return re.findall(r"```py\n(.*?)```", section, re.S)


def _lower_bound(i: int, **overrides: Any) -> UserItem:
    profile = make_profile(i, **overrides)
    profile.interactions.fans = CountText(parse_count("10万+"), "10万+")
    return profile


def _done(topics: list[str]):
    return enrichment(result={"summary": "s", "topics": topics})


async def test_creator_queries(mongo_uri, mongo_db_name, mongo_sync, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(now)
    spool = tmp_path / "spool.jsonl"
    # Three reads of three creators over two days: u1 has the most fans, u2 grows fastest;
    # u0 is read once (no growth to measure); a read 30 days ago is outside the week.
    reads = [
        make_profile(0, fans=5000, fetched_at=now - timedelta(days=2)),
        make_profile(1, fans=90_000, fetched_at=now - timedelta(days=30)),
        make_profile(1, fans=100_000, fetched_at=now - timedelta(days=2)),
        make_profile(1, fans=100_100, fetched_at=now - timedelta(days=1)),
        make_profile(2, fans=1000, fetched_at=now - timedelta(days=2)),
        make_profile(2, fans=1900, fetched_at=now),
        # Shown "10万+" at both reads: a lower bound, stored 100000 each time: no growth.
        *(_lower_bound(3, fetched_at=now - timedelta(days=d)) for d in (2, 0)),
    ]
    notes = [
        make_note(10, user=make_user(1), enrichment=_done(["露营", "装备"])),
        make_note(11, user=make_user(1), enrichment=_done(["露营"])),
        make_note(12, user=make_user(1), enrichment=enrichment("deferred")),
        make_note(13, user=make_user(2), enrichment=_done(["美食"])),
    ]
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, spool, clock), reads + notes)

    blocks = _creator_blocks()
    assert len(blocks) == 3
    namespace: dict = {"db": mongo_sync, "datetime": datetime, "timedelta": timedelta, "UTC": UTC}
    for block in blocks:
        exec(block, namespace)

    assert [u["_id"] for u in namespace["top_creators"]] == ["u1", "u3", "u0", "u2"]
    assert namespace["top_creators"][0]["fans"] == 100_100
    growing = namespace["growing"]
    assert [g["_id"] for g in growing] == ["u2", "u1", "u3"]
    assert (growing[2]["gained"], growing[2]["per_day"]) == (0, 0)  # "10万+" → "10万+"
    assert growing[0]["gained"] == 900 and round(growing[0]["per_day"]) == 450
    assert growing[1]["gained"] == 100 and growing[1]["nickname"] == "用户1"
    assert [n["_id"] for n in namespace["creator_notes"]] == [
        make_note(i).note_id for i in (10, 11, 12)
    ]
    assert namespace["creator_notes"][0]["enrichment"]["result"]["topics"] == ["露营", "装备"]
    assert namespace["creator_topics"] == [
        {"_id": "露营", "notes": 2},
        {"_id": "装备", "notes": 1},
    ]
