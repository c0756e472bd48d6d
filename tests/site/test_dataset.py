"""The seeded dataset: determinism, the reference post, search, users, counts, ground truth."""

from __future__ import annotations

import pytest

from sandbox.dataset import (
    REFERENCE_INDEX,
    REFERENCE_NOTE_ID,
    REFERENCE_TAGS,
    REFERENCE_TITLE,
    Dataset,
    expected_count,
    format_count,
    lookup_image_text,
    parse_image_token,
    parse_video_key,
)


def test_same_seed_same_notes_other_seed_other_notes() -> None:
    a, b, c = Dataset(3, 200), Dataset(3, 200), Dataset(4, 200)
    assert [a.note(i) for i in range(30)] == [b.note(i) for i in range(30)]
    assert [a.note(i).note_id for i in range(30)] != [c.note(i).note_id for i in range(30)]


def test_note_does_not_depend_on_dataset_size() -> None:
    assert Dataset(5, 20).note(15) == Dataset(5, 100_000).note(15)


def test_reference_post_is_fixed() -> None:
    for seed in (1, 7, 4242):
        ds = Dataset(seed, 50)
        note = ds.note(ds.reference_index)
        assert ds.reference_index == REFERENCE_INDEX
        assert note.note_id == REFERENCE_NOTE_ID
        assert note.title == REFERENCE_TITLE == "算法面经：字节豆包大模型11.13"
        assert note.tags == REFERENCE_TAGS
        assert set(REFERENCE_TAGS) == {"面试题", "大模型", "LLM", "面经", "字节豆包", "机器学习",
                                       "深度学习", "AI", "Agent"}  # fmt: skip
        assert len(note.images) == 3
        for image, round_name in zip(note.images, ("一面", "二面", "三面"), strict=True):
            assert round_name in image.text
        assert "KV Cache" in note.images[1].text and "RLHF" in note.images[1].text
        assert "Transformer" in note.images[0].text
        assert ds.note_by_id(REFERENCE_NOTE_ID) == note


@pytest.mark.parametrize("seed", [1, 2, 7, 99, 31337])
def test_default_dataset_search(seed: int) -> None:
    ds = Dataset(seed, 1000)
    hits = ds.search("大模型")
    assert len(hits) >= 60
    assert len(set(hits)) == len(hits)
    for note_id in hits:
        note = ds.note_by_id(note_id)
        assert "大模型" in note.title or any("大模型" in t for t in note.tags)
    assert REFERENCE_NOTE_ID in ds.search("面经")


def test_search_is_exact_against_a_full_scan() -> None:
    ds = Dataset(11, 400)
    for keyword in ("大模型", "Python", "旅行", "的", "offer", "不存在的词"):
        scan = [
            ds.note(i).note_id
            for i in range(len(ds))
            if (keyword in ds.note(i).title or any(keyword in t for t in ds.note(i).tags))
            and not ds.is_deleted(i)
        ]
        assert ds.search(keyword) == scan, keyword


def test_note_ids_round_trip_and_reject_foreign_ids() -> None:
    ds = Dataset(2, 300)
    for i in range(0, 300, 17):
        assert ds.note_by_id(ds.note(i).note_id).index == i
    assert ds.note_by_id(Dataset(3, 300).note(20).note_id) is None
    assert ds.note_by_id("zz") is None
    assert ds.note_by_id(Dataset(2, 1000).note(900).note_id) is None  # beyond this size


def test_users_own_several_notes_and_profiles_list_them_newest_first() -> None:
    ds = Dataset(4, 300)
    users = ds.users()
    owned = {u: ds.user_notes(u) for u in users}
    live = [i for i in range(300) if not ds.is_deleted(i)]
    assert sorted(i for v in owned.values() for i in v) == sorted(ds.note(i).note_id for i in live)
    assert max(len(v) for v in owned.values()) > 30  # profile paging is exercised
    for user_id, ids in owned.items():
        notes = [ds.note_by_id(i) for i in ids]
        assert all(n.user.user_id == user_id for n in notes)
        assert [n.time for n in notes] == sorted((n.time for n in notes), reverse=True)


def test_counts_show_abbreviated_forms_with_exact_expectations() -> None:
    assert format_count(12345, "plain") == "1.2万"
    assert format_count(10000, "plain") == "1万"
    assert format_count(300, "plain") == "300"
    assert format_count(15, "plus") == "10+" and format_count(1500, "plus") == "1k+"
    assert format_count(25000, "plus") == "1w+"
    assert [expected_count(t) for t in ("1.2万", "1w+", "10+", "1k+", "300")] == [
        12000,
        10000,
        10,
        1000,
        300,
    ]
    ds = Dataset(1, 1000)
    shown = [ds.note(i).interact for i in range(1000)]
    raw = {text for v in shown for text in v.values()}
    assert any(t.endswith("万") and "." in t for t in raw)
    assert {"1w+", "1k+", "10+"} <= raw
    for i in range(200):
        note = ds.note(i)
        assert note.interact_expected == {k: expected_count(v) for k, v in note.interact.items()}


def test_notes_have_realistic_fields() -> None:
    ds = Dataset(9, 500)
    notes = [ds.note(i) for i in range(500)]
    assert {n.type for n in notes} == {"normal", "video"}
    for n in notes:
        assert len(n.note_id) == 24 and n.xsec_token.startswith("AB") and n.xsec_token.endswith("=")
        assert n.last_update_time >= n.time > 1_600_000_000_000
        assert all(f"#{t}[话题]#" in n.desc for t in n.tags)
        if n.type == "normal":
            assert 1 <= len(n.images) <= 9 and n.video is None
        else:
            assert len(n.images) == 1 and parse_video_key(n.video.origin_video_key) == (9, n.index)
        for image in n.images:
            assert parse_image_token(image.token) == (9, n.index, image.index)
            assert image.format in ("png", "jpeg", "webp")
    assert any(img.token.startswith("notes_pre_post/") for n in notes for img in n.images)
    assert 0 < sum(ds.is_deleted(i) for i in range(500)) < 25
    assert not ds.is_deleted(REFERENCE_INDEX)


def test_lookup_image_text_regenerates_the_ground_truth() -> None:
    ds = Dataset(21, 200)
    texts = 0
    for i in range(40):
        for image in ds.note(i).images:
            assert lookup_image_text(image.tag) == image.text
            texts += bool(image.text)
    assert texts > 10
    assert lookup_image_text(12345) is None
