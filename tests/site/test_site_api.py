"""The signed web API, cookies, captcha, rotation, faults and the control endpoint."""

from __future__ import annotations

import json
import time

from sandbox.dataset import REFERENCE_NOTE_ID
from sandbox.site import SiteServer, signing
from tests.fixtures.site import ManualClock
from tests.site.helpers import COOKIE, fetch, signed

SEARCH = "/api/sns/web/v1/search/notes"


def _query(keyword: str, page: int = 1) -> dict:
    return {"keyword": keyword, "page": page, "page_size": 20, "search_id": "2e7d1a", "sort": "general",
            "note_type": 0}  # fmt: skip


def test_unsigned_or_wrongly_signed_calls_get_406(sandbox_site: SiteServer) -> None:
    body = json.dumps(_query("大模型"))
    headers = {"Cookie": COOKIE, "Content-Type": "application/json"}
    answer = fetch(sandbox_site.url + SEARCH, "POST", body, headers)
    assert (answer.status, answer.json()) == (406, {"code": -1, "success": False})
    good = signing.sign(sandbox_site.dataset.seed, 1, SEARCH, body, str(int(time.time() * 1000)))
    tampered = dict(good, **headers)
    tampered["x-t"] = str(int(tampered["x-t"]) + 1)
    assert fetch(sandbox_site.url + SEARCH, "POST", body, tampered).status == 406
    other_body = json.dumps(_query("旅行"))
    assert fetch(sandbox_site.url + SEARCH, "POST", other_body, dict(good, **headers)).status == 406
    assert fetch(sandbox_site.url + SEARCH, "POST", body, dict(good, **headers)).status == 200


def test_signed_search_pages_through_mixed_items(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    expected = ds.search("大模型")
    seen: list[str] = []
    kinds: set[str] = set()
    page = 1
    while True:
        answer = signed(sandbox_site, SEARCH, _query("大模型", page))
        assert answer.status == 200
        payload = answer.json()
        assert payload["code"] == 0 and payload["success"] is True
        for item in payload["data"]["items"]:
            kinds.add(item["model_type"])
            assert item["xsec_token"].startswith("AB")
            if item["model_type"] == "note":
                card = item["note_card"]
                truth = ds.note_by_id(item["id"])
                assert card["display_title"] == truth.title and card["type"] == truth.type
                assert item["xsec_token"] == truth.xsec_token
                assert card["interact_info"]["liked_count"] == truth.interact["liked"]
                assert card["user"]["user_id"] == truth.user.user_id
                assert len(card["image_list"]) == len(truth.images)
                assert card["cover"]["url_default"].startswith(sandbox_site.cdn_url)
                seen.append(item["id"])
            else:
                assert item[item["model_type"]]["queries"]
        if not payload["data"]["has_more"]:
            break
        page += 1
    assert seen == expected and page > 1
    assert kinds == {"note", "rec_query", "hot_query"}


def test_search_sort_and_note_type(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    body = dict(_query("旅行"), sort="popularity_descending", note_type=1)
    items = [
        i
        for i in signed(sandbox_site, SEARCH, body).json()["data"]["items"]
        if i["model_type"] == "note"
    ]
    assert items and all(ds.note_by_id(i["id"]).type == "video" for i in items)
    likes = [ds.note_by_id(i["id"]).interact_exact["liked"] for i in items]
    assert likes == sorted(likes, reverse=True)


def test_notes_deleted_at_runtime_leave_the_listings(make_site) -> None:
    site = make_site(notes=300)

    def listed() -> list[str]:
        items = signed(site, SEARCH, _query("大模型")).json()["data"]["items"]
        return [i["id"] for i in items if i["model_type"] == "note"]

    first = listed()
    site.control(deleted=[first[0]])
    assert listed() == [*first[1:], site.dataset.search("大模型")[20]]


def test_cookie_missing_or_expired_answers_minus_100(make_site) -> None:
    site = make_site(notes=50)
    expired = {"code": -100, "success": False, "msg": "登录已过期"}
    assert signed(site, SEARCH, _query("大模型"), cookie=None).json() == expired
    assert signed(site, SEARCH, _query("大模型")).json()["code"] == 0
    site.control(expire_cookies=True)
    assert signed(site, SEARCH, _query("大模型")).json() == expired
    assert fetch(site.url + "/search_result?keyword=x", headers={"Cookie": COOKIE}).status == 302
    assert site.stats()["search_api_login_required"] == 2


def test_captcha_threshold_per_cookie_until_the_window_passes(make_site) -> None:
    clock = ManualClock()
    site = make_site(notes=50, clock=clock, captcha_threshold=3, captcha_window=60)
    note = site.dataset.note(0)
    url = f"{site.url}/explore/{note.note_id}?xsec_token={note.xsec_token}"
    statuses = [fetch(url, headers={"Cookie": COOKIE}).status for _ in range(3)]
    assert all(s != 461 for s in statuses)
    blocked = fetch(url, headers={"Cookie": COOKIE})
    assert blocked.status == 461
    assert blocked.headers["verifytype"] and blocked.headers["verifyuuid"]
    assert signed(site, SEARCH, _query("大模型")).status == 461  # API too, same cookie
    other = fetch(url, headers={"Cookie": "a1=x; web_session=someone-else"})
    assert other.status != 461
    clock.advance(59)
    assert fetch(url, headers={"Cookie": COOKIE}).status == 461
    clock.advance(2)
    assert fetch(url, headers={"Cookie": COOKIE}).status != 461
    assert site.stats()["note_captcha"] == 2


def test_rotation_rejects_the_old_signature_and_serves_the_new_script(make_site) -> None:
    site = make_site(notes=50)
    page = fetch(site.url + "/search_result?keyword=AI", headers={"Cookie": COOKIE}).text
    assert 'var V = "1"' in page
    assert signed(site, SEARCH, _query("大模型"), version=1).status == 200
    assert site.control(rotate_signature=True)["signature_version"] == 2
    answer = signed(site, SEARCH, _query("大模型"), version=1)
    assert (answer.status, answer.json()) == (406, {"code": -1, "success": False})
    assert signed(site, SEARCH, _query("大模型"), version=2).status == 200
    page = fetch(site.url + "/search_result?keyword=AI", headers={"Cookie": COOKIE}).text
    assert 'var V = "2"' in page and signing.signing_script(site.dataset.seed, 2) in page


def test_rotation_after_n_answered_listing_calls(make_site) -> None:
    site = make_site(notes=50)
    site.control(rotate_after_calls=2)
    assert signed(site, SEARCH, _query("大模型"), version=1).status == 200
    assert site.knobs.signature_version == 1
    assert signed(site, SEARCH, _query("大模型"), version=1).status == 200
    assert site.knobs.signature_version == 2  # rotated right after the second answer
    assert signed(site, SEARCH, _query("大模型"), version=1).status == 406
    assert signed(site, SEARCH, _query("大模型"), version=2).status == 200
    assert site.knobs.signature_version == 2  # once only


def test_user_posted_cursor_paging(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    user_id = max(ds.users(), key=lambda u: len(ds.user_notes(u)))
    got: list[str] = []
    cursor = ""
    for _ in range(5):
        path = (f"/api/sns/web/v1/user_posted?num=30&cursor={cursor}&user_id={user_id}"
                "&image_formats=jpg,webp,avif&xsec_token=&xsec_source=pc_note")  # fmt: skip
        data = signed(sandbox_site, path).json()["data"]
        got += [n["note_id"] for n in data["notes"]]
        first = data["notes"][0]
        assert set(first) == {
            "interact_info",
            "xsec_token",
            "note_id",
            "display_title",
            "type",
            "cover",
            "user",
        }
        cursor = data["cursor"]
        if not data["has_more"]:
            break
    assert got == ds.user_notes(user_id) and len(got) > 30
    assert signed(sandbox_site, "/api/sns/web/v1/user_posted?num=30&cursor=&user_id=" + user_id,
                  version=99).status == 406  # fmt: skip


def test_user_posted_cursor_survives_a_deletion(make_site) -> None:
    site = make_site()
    ds = site.dataset
    user_id = max(ds.users(), key=lambda u: len(ds.user_notes(u)))
    owned = ds.user_notes(user_id)
    base = f"/api/sns/web/v1/user_posted?num=30&user_id={user_id}&cursor="
    first = signed(site, base).json()["data"]
    site.control(deleted=[first["cursor"], owned[31]])
    second = signed(site, base + first["cursor"]).json()["data"]
    assert [n["note_id"] for n in second["notes"]] == [owned[30], *owned[32:60]]
    assert signed(site, base + "6734a1f2000000001b0358ff").json()["data"]["notes"] == []


def test_feed_api_checks_the_xsec_token(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    note = ds.note_by_id(REFERENCE_NOTE_ID)
    body = {"source_note_id": note.note_id, "image_formats": ["jpg", "webp", "avif"],
            "extra": {"need_body_topic": "1"}, "xsec_source": "pc_search", "xsec_token": note.xsec_token}  # fmt: skip
    payload = signed(sandbox_site, "/api/sns/web/v1/feed", body).json()
    card = payload["data"]["items"][0]["note_card"]
    assert card["note_id"] == note.note_id and card["title"] == note.title
    assert card["interact_info"]["liked_count"] == note.interact["liked"]
    assert card["image_list"][0]["info_list"][1]["image_scene"] == "WB_DFT"
    assert "xsec_token" not in card and card["last_update_time"] == note.last_update_time
    wrong = signed(sandbox_site, "/api/sns/web/v1/feed", dict(body, xsec_token="ABnope=")).json()
    assert wrong["code"] == 300017


def test_slow_rate_delays_answers(make_site) -> None:
    site = make_site(notes=20, slow_rate=1.0, slow_seconds=0.3)
    started = time.monotonic()
    assert fetch(site.url + "/explore").status == 200
    assert time.monotonic() - started >= 0.3  # a lower bound: the answer was held back
    site.control(slow_rate=0)
    assert site.knobs.slow_rate == 0


def test_error_rate_and_control_over_http(make_site) -> None:
    site = make_site(notes=50, error_rate=1.0)
    note = site.dataset.note(0)
    url = f"{site.url}/explore/{note.note_id}?xsec_token={note.xsec_token}"
    assert all(fetch(url).status in (500, 502, 503) for _ in range(5))
    answer = fetch(site.url + "/_sandbox/control", "POST", json.dumps({"error_rate": 0}))
    assert answer.status == 200 and answer.json()["error_rate"] == 0
    assert fetch(url).status in (200, 302) and site.stats()["note_error"] == 5
    bad = fetch(site.url + "/_sandbox/control", "POST", json.dumps({"no_such_knob": 1}))
    assert bad.status == 400
    stats = fetch(site.url + "/_sandbox/stats").json()
    assert stats["note_total"] == 6
