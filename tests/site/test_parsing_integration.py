"""The crawler's parsers read sandbox pages and API answers into the dataset's values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.site import SiteServer
from tests.site.helpers import COOKIE, fetch, signed

notes_parsing = pytest.importorskip("crawler.parsing.notes")
from crawler.parsing.errors import NoteGone  # noqa: E402
from crawler.parsing.listing import parse_listing, refs_from_profile_state  # noqa: E402


def _ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def test_parse_note_page_matches_the_dataset(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    templates = (f"{sandbox_site.cdn_url}/{{token}}",)
    live = [i for i in range(len(ds)) if not ds.is_deleted(i)]
    tricky = [i for i in live if "undefined" in ds.note(i).title][:1]  # the word, in a string
    indices = [ds.reference_index, *tricky, *live[:15]]
    assert tricky and any(ds.note(i).type == "video" for i in indices)
    for index in indices:
        truth = ds.note(index)
        url = f"{sandbox_site.url}/explore/{truth.note_id}?xsec_token={truth.xsec_token}&xsec_source=pc_search"
        item = notes_parsing.parse_note_page(fetch(url).body, url, original_templates=templates)
        assert item.note_id == truth.note_id and item.xsec_token == truth.xsec_token
        assert item.title == truth.title and item.desc == truth.desc and item.type == truth.type
        assert item.tags == list(truth.tags)
        assert item.user.user_id == truth.user.user_id and item.user.nickname == truth.user.nickname
        assert item.published_at == _ms(truth.time) and item.updated_at == _ms(
            truth.last_update_time
        )
        assert item.ip_location == truth.ip_location
        interact = item.interact
        assert (interact.liked, interact.collected, interact.comments, interact.shares) == tuple(
            truth.interact_expected[k] for k in ("liked", "collected", "comments", "shares")
        )
        assert len(item.images) == len(truth.images)
        for image, spec in zip(item.images, truth.images, strict=True):
            assert image.original_urls[0] == f"{sandbox_site.cdn_url}/{spec.token}"
            assert (image.width, image.height) == (spec.width, spec.height)
        if truth.video is not None:
            assert item.video is not None and item.video.url


def test_parse_deleted_note_page_says_gone(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    truth = ds.note(next(i for i in range(len(ds)) if ds.is_deleted(i)))
    url = f"{sandbox_site.url}/explore/{truth.note_id}?xsec_token={truth.xsec_token}"
    with pytest.raises(NoteGone):
        notes_parsing.parse_note_page(fetch(url).body, url)


def test_listings_parse_into_the_dataset_refs(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    body = {
        "keyword": "大模型",
        "page": 1,
        "page_size": 20,
        "search_id": "x",
        "sort": "general",
        "note_type": 0,
    }
    refs = parse_listing(signed(sandbox_site, "/api/sns/web/v1/search/notes", body).body)
    assert [r.note_id for r in refs] == ds.search("大模型")[:20]
    assert all(r.xsec_token == ds.note_by_id(r.note_id).xsec_token for r in refs)
    user_id = ds.users()[0]
    posted = signed(sandbox_site, f"/api/sns/web/v1/user_posted?num=30&cursor=&user_id={user_id}")
    assert [r.note_id for r in parse_listing(posted.body)] == ds.user_notes(user_id)[:30]
    card = signed(
        sandbox_site,
        "/api/sns/web/v1/feed",
        {
            "source_note_id": refs[0].note_id,
            "xsec_token": refs[0].xsec_token,
            "xsec_source": "pc_search",
        },
    ).json()["data"]["items"][0]["note_card"]
    item = notes_parsing.note_from_api_card(
        card,
        note_id=refs[0].note_id,
        xsec_token=refs[0].xsec_token,
        url=sandbox_site.url + "/explore",
    )
    truth = ds.note_by_id(refs[0].note_id)
    assert item.title == truth.title and item.tags == list(truth.tags)
    assert item.interact.liked == truth.interact_expected["liked"]


def test_profile_state_parses_into_the_users_first_notes(sandbox_site: SiteServer) -> None:
    from crawler.parsing.state import extract_initial_state

    ds = sandbox_site.dataset
    user_id = ds.users()[0]
    html = fetch(f"{sandbox_site.url}/user/profile/{user_id}", headers={"Cookie": COOKIE}).body
    refs = refs_from_profile_state(extract_initial_state(html))
    assert [r.note_id for r in refs] == ds.user_notes(user_id)[:30]
    assert [r.title for r in refs] == [ds.note_by_id(i).title for i in ds.user_notes(user_id)[:30]]
