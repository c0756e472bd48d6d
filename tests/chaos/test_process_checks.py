"""The chaos run's new checkers and fault drivers (issue 18) must see what they claim to.

Spend and double spend from the Gemini tap's records, which note a request carried,
files outside the stores, torn files in the store, the seeded spool, the hostile
notes the sandbox site serves.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from bench.chaos_checks import check_image_paths, files_outside, gemini_spend
from bench.chaos_faults import (
    Carried,
    NoteIndex,
    ProcessFault,
    TapRecord,
    seed_spool,
    usable_answer,
)
from crawler.parsing.notes import parse_note_page
from pipelines.storage import Spool
from sandbox.dataset import HOSTILE_IMAGES, Dataset


def _record(label, started, ended, note="a", usable=True, digest="d", status=200):
    return TapRecord(label, started, ended, status, [Carried(note, True, digest)], usable)


def test_spend_tells_a_kill_from_a_double_spend() -> None:
    kill = ProcessFault("kill", 10, moment=100.0)
    records = [
        _record("run1", 99.8, 99.9, note="a"),  # answered 0.1 s before the kill: in flight
        _record("run2", 110.0, 110.2, note="a"),  # sent again after the kill: explained
        _record("run2", 111.0, 111.1, note="b"),
        _record("enrich", 112.0, 112.1, note="b"),  # the same content twice: a double spend
        _record("run2", 113.0, 113.1, note="c", usable=False),  # truncated answer
        _record("run2", 113.2, 113.3, note="c"),
        _record("run2", 114.0, None, note="d", status=429),  # refused: not billed
    ]
    spend = gemini_spend(records, {"run1": kill}, grace_s=0.5, budget_per_run=3)
    assert spend.billed == 6 and spend.unusable == 1
    assert spend.in_flight_at_kills == [1]
    assert spend.duplicates == 2 and spend.explained_by_kills == 1
    assert spend.unexplained == ["b"]
    assert spend.new_content == 3  # a, b, c
    assert spend.bound == 3 + 1 + 1 and spend.billed > spend.bound
    # Halving after a truncated answer may send pictures answered before: explained.
    halved = [
        _record("run3", 1.0, 1.1, digest="half"),
        _record("run4", 2.0, 2.1, digest="whole", usable=False),
        _record("run4", 2.2, 2.3, digest="half"),
    ]
    spend = gemini_spend(halved, {}, grace_s=0.5, budget_per_run=3)
    assert spend.after_bad_answer == 1 and not spend.unexplained
    assert spend.billed == spend.bound == 3
    # An answer long before the kill was kept: sending it again is not explained.
    early = [_record("run1", 10.0, 10.1), _record("run2", 110.0, 110.2)]
    assert gemini_spend(early, {"run1": kill}, grace_s=0.5, budget_per_run=3).unexplained == ["a"]
    # Other image bytes are other content (a picture that failed before came through).
    changed = [_record("run1", 10.0, 10.1), _record("run2", 110.0, 110.2, digest="e")]
    assert gemini_spend(changed, {}, grace_s=0.5, budget_per_run=3).duplicates == 0


def test_an_answer_stored_before_the_kill_was_not_in_flight() -> None:
    kill = ProcessFault("kill", 10, moment=100.0, durable=frozenset({"kept"}))
    kept = _record("run1", 99.8, 99.9, note="a")
    kept.summaries = ["kept"]
    lost = _record("run1", 90.0, 90.1, note="b")
    lost.summaries = ["lost"]  # long before the kill, yet not in the cache: in flight
    again = [_record("run2", 110.0, 110.1, note="a"), _record("run2", 110.0, 110.1, note="b")]
    spend = gemini_spend([kept, lost, *again], {"run1": kill}, grace_s=0.5, budget_per_run=3,
                         final_durable=frozenset({"kept", "lost"}))  # fmt: skip
    assert spend.in_flight_at_kills == [1] and spend.lost_answer_ages_s == [[9.9]]
    assert spend.unexplained == ["a"]  # it was in the cache: sending it again is a waste
    assert spend.summaries_found_at_end == 1.0


def test_a_request_stamped_after_a_kill_was_sent_before_it() -> None:
    """A killed process sends nothing after SIGKILL: a request the tap stamps a few ms
    after the kill was written before it and died with it. A forced stop leaves the
    process alive between its signals: a request sent then is new spending."""
    after = _record("run1", 100.003, 100.2, note="a")
    after.summaries = ["lost"]
    again = _record("run2", 110.0, 110.1, note="a")
    kill = ProcessFault("kill", 10, moment=100.0, durable=frozenset())
    spend = gemini_spend([after, again], {"run1": kill}, grace_s=0.5, budget_per_run=3)
    assert spend.in_flight_at_kills == [1] and not spend.unexplained
    stop = ProcessFault("forced_stop", 10, moment=100.0, durable=frozenset())
    spend = gemini_spend([after, again], {"run1": stop}, grace_s=0.5, budget_per_run=3)
    assert not spend.unexplained  # within the tap's lag of the first signal
    late = _record("run1", 100.2, 100.4, note="a")
    late.summaries = ["lost"]
    spend = gemini_spend([late, again], {"run1": stop}, grace_s=0.5, budget_per_run=3)
    assert spend.in_flight_at_kills == [0] and spend.unexplained == ["a"]


def test_spend_flags_a_note_over_its_budget_in_one_run() -> None:
    records = [_record("run4", float(i), i + 0.1, usable=False) for i in range(4)]
    spend = gemini_spend(records, {}, grace_s=0.5, budget_per_run=3)
    assert spend.over_budget == ["a in run4: 4"]


def _part_image(data: bytes) -> dict:
    return {
        "inlineData": {"mimeType": "image/jpeg", "data": base64.urlsafe_b64encode(data).decode()}
    }


def test_the_tap_names_the_notes_a_request_carried() -> None:
    dataset = Dataset(41, 100)
    notes = [dataset.note(i) for i in range(100)]
    index = NoteIndex(notes)
    one = next(n for n in notes if len(index.by_title[n.title]) == 1)
    body = {"contents": [{"parts": [
        {"text": f"下面是…\n标题：{one.title}\n正文：{one.desc}\n标签：a、b\n请完成"},
        _part_image(b"\xff\xd8picture"),
    ]}]}  # fmt: skip
    (carried,) = index.carried(body)
    assert carried.note_id == one.note_id and carried.with_text
    parts = body["contents"][0]["parts"]
    other = {"contents": [{"parts": [parts[0], _part_image(b"\xff\xd8other")]}]}
    assert index.carried(body)[0].images_digest == carried.images_digest  # same bytes
    assert index.carried(other)[0].images_digest != carried.images_digest
    images_only = {
        "contents": [
            {"parts": [{"text": f"以下是同一篇小红书笔记（标题：{one.title}）的其余 2 张图片"}]}
        ]
    }
    (rest,) = index.carried(images_only)
    assert rest.note_id == one.note_id and not rest.with_text
    a, b = notes[3], notes[4]
    pack = {"contents": [{"parts": [
        {"text": "下面是 2 篇小红书笔记。每篇以一行 “Note <id>:” 开头"},
        {"text": f"Note {a.note_id}:\n标题：{a.title}"}, {"text": "Image 1:"}, _part_image(b"1"),
        {"text": f"Note {b.note_id}:\n标题：{b.title}"},
    ]}]}  # fmt: skip
    assert [(c.note_id, c.with_text) for c in index.carried(pack)] == [
        (a.note_id, True),
        (b.note_id, True),
    ]
    assert index.carried({"contents": [{"parts": [{"text": "hello"}]}]})[0].note_id == "?unknown"
    twins = next(t for t, ns in index.by_title.items() if len(ns) > 1)
    unclear = {"contents": [{"parts": [{"text": f"（标题：{twins}）的其余"}]}]}
    assert index.carried(unclear)[0].note_id.startswith("?")
    # Two notes of one title and desc head: their tags tell them apart.
    first, second = index.by_title[twins][:2]
    for note in (first, second):
        text = f"标题：{note.title}\n正文：{note.desc}\n标签：{'、'.join(note.tags)}\n"
        told = index.carried({"contents": [{"parts": [{"text": text}]}]})[0].note_id
        assert told == note.note_id or set(first.tags) == set(second.tags)


def test_usable_answer_is_stop_with_json() -> None:
    def answer(text: str, finish: str = "STOP") -> bytes:
        candidate = {"content": {"parts": [{"text": text}]}, "finishReason": finish}
        return json.dumps({"candidates": [candidate]}).encode()

    assert usable_answer(200, answer('{"summary": "x"}'))
    assert not usable_answer(200, answer('{"summary": "x', "MAX_TOKENS"))
    assert not usable_answer(200, answer('{"summary": "x",}'))
    assert not usable_answer(429, answer("{}"))
    assert not usable_answer(200, b'{"candidates": []}')


def test_files_outside_the_stores_are_named(tmp_path: Path) -> None:
    for name in ("images/full/ab/x.jpg", "spool/notes.jsonl.bad", "crawl-run1.log", "stray.txt",
                 "deep/leak.json", "mongo/data.db"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = files_outside(tmp_path, ("images", "spool", "mongo"), (".log",))
    assert found == ["deep/leak.json", "stray.txt"]


def test_check_image_paths_flags_torn_files_and_failures_without_reason(tmp_path: Path) -> None:
    store = tmp_path / "images"
    body = b"a whole picture"
    digest = hashlib.sha256(body).hexdigest()
    (store / "full" / digest[:2]).mkdir(parents=True)
    (store / "full" / digest[:2] / f"{digest}.jpg").write_bytes(body[:5])  # torn
    good_digest = hashlib.sha256(b"fine").hexdigest()
    (store / "full" / good_digest[:2]).mkdir(parents=True, exist_ok=True)
    (store / "full" / good_digest[:2] / f"{good_digest}.jpg").write_bytes(b"fine")
    notes = [
        {"_id": "torn", "images": [{"path": f"full/{digest[:2]}/{digest}.jpg", "status": "ok"}]},
        {
            "_id": "good",
            "images": [{"path": f"full/{good_digest[:2]}/{good_digest}.jpg", "status": "ok"}],
        },
        {
            "_id": "mute",
            "images": [{"status": "failed"}, {"status": "skipped", "error": "image_cap"}],
        },
    ]
    problems = check_image_paths(notes, store)
    assert len(problems) == 2, problems
    assert "torn" in problems[0] and "other bytes" in problems[0]
    assert "mute image 0 failed without a reason" in problems[1]


def test_seeded_spool_sets_exactly_its_bad_records_aside(make_site, tmp_path: Path) -> None:
    site = make_site(seed=41, notes=40)
    notes = [site.dataset.note(i) for i in (30, 31, 32)]
    path = tmp_path / "spool" / "notes.jsonl"
    seeded = seed_spool(path, site.url, notes)
    batch = Spool(path).claim()  # the storage pipeline's check refuses the wrong types
    assert sorted(r.get("note_id") for r in batch.records if isinstance(r.get("note_id"), str)) == \
        sorted(seeded.good_ids)  # fmt: skip
    assert batch.bad >= 2  # the torn line and the non-object; the rest need the check
    assert seeded.bad_lines == 4


def test_the_site_serves_hostile_notes(make_site) -> None:
    import urllib.request

    site = make_site(seed=41, notes=100)
    site.control(hostile={"90": "many_images", "91": "lone_surrogate", "92": "huge_desc"})
    got = {}
    for i in (90, 91, 92):
        note = site.dataset.note(i)
        url = f"{site.url}/explore/{note.note_id}?xsec_token={note.xsec_token}"
        with urllib.request.urlopen(url) as answer:
            page = answer.read()
        got[i] = (page, parse_note_page(page, url))
    assert len(got[90][1].images) == HOSTILE_IMAGES
    assert len({img.url for img in got[90][1].images}) == HOSTILE_IMAGES  # all distinct
    assert b"\\ud83d" in got[91][0]  # JSON-escaped in the state, as the real serializer
    assert "\ufffd" in got[91][1].title  # cleaned once, where the item is built
    assert len(got[92][1].desc.encode()) > 1_000_000
    last = site.dataset.note(90).images[-1]
    with urllib.request.urlopen(f"{site.cdn_url}/{last.token}") as answer:
        assert answer.status == 200 and len(answer.read()) > 1000
    site.control(hostile={})
    assert len(site.dataset.note(90).images) < HOSTILE_IMAGES


def test_full_disk_refuses_writes_of_the_local_store_once_marked(tmp_path: Path) -> None:
    """The chaos run's full disk where it may not mount a tmpfs."""
    import errno
    from io import BytesIO

    import pytest
    from scrapy.pipelines.files import FSFilesStore

    from bench.chaos_faults import FULL_MARKER, FullDisk, StoreVolume

    volume = StoreVolume(tmp_path / "images", tmpfs=False).__enter__()
    assert volume.mode == "enospc_extension"
    settings = volume.crawl_settings({"some.Extension": 1})
    assert "bench.chaos_faults.FullDisk" in settings["EXTENSIONS"]
    undo = FullDisk(settings["CHAOS_FULL_DISK_MARKER"]).install()
    try:
        store = FSFilesStore(str(volume.path))
        store.persist_file("full/ab/one.jpg", BytesIO(b"one"), None)
        assert volume.fill_up(0) and (volume.path / FULL_MARKER).exists()
        with pytest.raises(OSError) as refused:
            store.persist_file("full/ab/two.jpg", BytesIO(b"two"), None)
        assert refused.value.errno == errno.ENOSPC
        assert (volume.path / "full/ab/one.jpg").read_bytes() == b"one"
        assert not (volume.path / "full/ab/two.jpg").exists()
    finally:
        undo()
    assert volume.filled_at_bytes is not None
