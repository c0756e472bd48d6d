"""Dates relative to today, day-to-day growth, creator profiles (fixture 09's shape) and
the share-link host."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sandbox.dataset import DAY, REFERENCE_INDEX, REFERENCE_NOTE_ID, REPOST_DAYS, Dataset
from sandbox.profiles import profile_count
from sandbox.site import SiteServer, shapes
from tests.site.helpers import COOKIE, fetch, js_to_json, page_state

REAL = Path(__file__).resolve().parents[1] / "data" / "xhs-real"


def test_dates_spread_over_the_months_before_today() -> None:
    ds = Dataset(5, 600)
    now = time.time()
    ages = [(now - ds.note(i).time / 1000) / DAY for i in range(600) if i != REFERENCE_INDEX]
    assert all(0 < a < REPOST_DAYS + 1 for a in ages)
    assert sum(a <= 7 for a in ages) >= 5  # max_age=7d finds notes
    assert sum(a > 120 for a in ages) > 150  # and older ones exist
    # the id carries the posting time, as real ids do
    note = ds.note(3)
    assert int(note.note_id[:8], 16) * 1000 == note.time
    assert ds.note(REFERENCE_INDEX).time == int(REFERENCE_NOTE_ID[:8], 16) * 1000


def test_counts_grow_from_one_day_to_the_next() -> None:
    ds = Dataset(5, 300)
    day = ds.today()
    steady = [i for i in range(300) if not ds.reposted(i, day, day + 1) and i != REFERENCE_INDEX]
    assert len(steady) > 290
    grew = 0
    for i in steady:
        a, b = ds.note(i, day), ds.note(i, day + 1)
        assert a.note_id == b.note_id and a.time == b.time
        assert all(b.interact_exact[k] >= a.interact_exact[k] for k in a.interact_exact)
        grew += b.interact_exact["liked"] > a.interact_exact["liked"]
    assert grew > 30
    ref = ds.note(REFERENCE_INDEX, day)
    assert ds.note(REFERENCE_INDEX, day + 30) == ref  # the reference never moves
    moved = next(i for i in range(300) if ds.reposted(i, day, day + REPOST_DAYS // 2))
    assert ds.index_of(ds.note(moved, day).note_id, day + REPOST_DAYS // 2) is None


def test_the_day_offset_knob_shows_tomorrow(make_site) -> None:
    site = make_site()
    ds = site.dataset
    day = ds.today()
    index = next(
        i for i in range(1, 300) if not ds.reposted(i, day, day + 1) and not ds.is_deleted(i)
    )
    today = ds.note(index)
    site.control(day_offset=1)
    assert ds.today() == day + 1
    page = fetch(site.url + f"/explore/{today.note_id}?xsec_token={today.xsec_token}")
    _, state = page_state(page.text)
    shown = state["note"]["noteDetailMap"][today.note_id]["note"]["interactInfo"]
    assert shown["likedCount"] == ds.note(index, day + 1).interact["liked"]
    assert shown["commentCount"] == ds.note(index, day + 1).interact["comments"]


def _profile_data(site: SiteServer, user_id: str) -> dict:
    page = fetch(f"{site.url}/user/profile/{user_id}", headers={"Cookie": COOKIE})
    assert page.status == 200
    return page_state(page.text)[1]["user"]["userPageData"]


def test_profile_state_has_fixture_09s_shape_and_grows(make_site) -> None:
    raw = (REAL / "09_user_profile_ssr_state_raw_2024-11-07.txt").read_text()
    literal = raw[raw.index("{") :].rstrip().rstrip(";")
    real = json.loads(js_to_json(literal))["user"]["userPageData"]
    site = make_site(notes=600)
    ds = site.dataset
    day = ds.today()
    # A creator none of whose notes is posted again tomorrow (a repost starts that note's
    # counts over, so the likes-and-collects total may drop on that day only).
    user_id = next(u for u in ds.users() if ds.user_notes(u, day) == ds.user_notes(u, day + 1))
    data = _profile_data(site, user_id)
    assert set(data) - {"verifyInfo"} == set(real)
    assert set(data["basicInfo"]) == set(real["basicInfo"])
    assert [i["type"] for i in data["interactions"]] == [i["type"] for i in real["interactions"]]
    assert all(isinstance(i["count"], str) for i in data["interactions"])
    assert {"name", "tagType"} <= set(data["tags"][0])
    truth = ds.profile(user_id)
    assert [i["count"] for i in data["interactions"]] == [
        truth.shown[k] for k in ("follows", "fans", "interaction")
    ]
    site.control(day_offset=1)
    tomorrow = ds.profile(user_id)
    assert tomorrow.fans > truth.fans and tomorrow.interaction >= truth.interaction
    assert _profile_data(site, user_id)["interactions"][1]["count"] == tomorrow.shown["fans"]


def test_profiles_show_abbreviated_counts() -> None:
    assert [profile_count(n, p) for n, p in ((182, True), (12345, False), (250000, True), (250000, False))] == [
        "182", "1.2万", "10万+", "25万"
    ]  # fmt: skip
    ds = Dataset(2, 3000)
    shown = {ds.profile(u).shown["fans"] for u in ds.users()}
    assert any(s.endswith("万") for s in shown) and "10万+" in shown
    assert any(s.isdigit() for s in shown)
    verified = [ds.profile(u) for u in ds.users() if ds.profile(u).verify_type]
    assert verified and {p.verify_type for p in verified} <= {1, 2}
    urls = shapes.Urls("http://s", "http://c")
    state = shapes.profile_state(verified[0], [], False, urls, 0)
    assert state["user"]["userPageData"]["verifyInfo"] == {
        "redOfficialVerifyType": verified[0].verify_type
    }


def test_short_link_redirects_to_the_note_with_its_token(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    note = ds.note(12)
    link = sandbox_site.short_link_url(note.note_id)
    assert link.startswith(sandbox_site.short_url + "/a/") and link != sandbox_site.url
    answer = fetch(link)
    assert answer.status == 302
    target = urlsplit(answer.headers["location"])
    query = parse_qs(target.query)
    assert target.path == f"/discovery/item/{note.note_id}"
    assert query["xsec_token"] == [note.xsec_token] and query["xsec_source"] == ["app_share"]
    page = fetch(answer.headers["location"])
    assert page.status == 200 and note.title in page.text
    assert fetch(sandbox_site.short_url + "/a/zzzzzzz").status == 404
    assert fetch(sandbox_site.short_url + "/a/" + link[-7:-1] + "!").status == 404
    text = sandbox_site.share_text(note.note_id)
    assert "发布了一篇小红书笔记" in text and "复制本条信息" in text
    assert re.search(r"http://[\d.:]+/a/\w{7}", text).group(0) == link
    assert ds.resolve_short(link[-7:]).note_id == note.note_id
    assert datetime.fromtimestamp(note.time / 1000, UTC) < datetime.now(UTC)
