"""The pymongo blocks of docs/schema.md's comments section run as written against
stored threads (the embedded server over TCP) and answer what they say."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from crawler.core.items import CommentsCrawled, CountText, NoteUser
from tests.factories import T0, Clock, build_storage, make_comment, make_note

from .test_comments_storage import run_pipeline

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def comment_blocks() -> list[str]:
    text = SCHEMA_DOC.read_text("utf-8")
    section = text[text.index("### Comments (`comments`)") :]
    section = section[: section.index("\n### ", 1)]
    return re.findall(r"```py\n(.*?)```", section, re.S)


def _stored_threads() -> list:
    fan = NoteUser(user_id="fan1", nickname="常客")
    notes = []
    for i in range(2):
        root_a = make_comment(i, 1, like_count=CountText(5, "5"), content="请问在哪里买的？")
        root_b = make_comment(i, 2, like_count=CountText(50, "50"), user=fan, content="太有用了")
        replies = [
            make_comment(i, 10, root=root_b.comment_id, user=fan, created_at=T0 - timedelta(1)),
            make_comment(i, 11, root=root_b.comment_id, content="同问?", created_at=T0),
            make_comment(i, 12, root=root_a.comment_id, status=1, content="该评论已删除"),
        ]
        comments = [root_a, root_b, *replies]
        crawled = CommentsCrawled(
            note_count=5, wanted_comments=None, wanted_replies=None, read=5, pages=2, reloads=0
        )
        notes.append(
            make_note(i, comments=comments, comments_complete=True, comments_crawled=crawled)
        )
    return notes


async def test_comment_queries(mongo_uri, mongo_db_name, mongo_sync, tmp_path) -> None:
    notes = _stored_threads()
    await run_pipeline(build_storage(mongo_uri, mongo_db_name, tmp_path / "s", Clock()), notes)
    blocks = comment_blocks()
    assert len(blocks) == 4
    namespace: dict = {"db": mongo_sync, "note_id": notes[0].note_id}
    for block in blocks:
        exec(block, namespace)

    thread = namespace["thread"]
    assert [r["_id"] for r in thread] == [
        make_comment(0, 2).comment_id,
        make_comment(0, 1).comment_id,
    ]
    assert [r["_id"] for r in thread[0]["replies"]] == [
        make_comment(0, 10).comment_id,
        make_comment(0, 11).comment_id,
    ]
    per_day = {d["_id"]: d["n"] for d in namespace["per_day"]}
    assert sum(per_day.values()) == 8  # the deleted replies are left out
    assert per_day[(T0 - timedelta(1)).strftime("%Y-%m-%d")] == 2
    active = namespace["active"]
    assert active[0]["_id"] == "fan1" and active[0]["comments"] == 4 and active[0]["notes"] == 2
    questions = [q["content"] for q in namespace["questions"]]
    assert sorted(questions) == sorted(["请问在哪里买的？", "同问?"] * 2)
