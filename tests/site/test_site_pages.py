"""Server-rendered pages of the sandbox site over real HTTP."""

from __future__ import annotations

import re

from sandbox.dataset import REFERENCE_NOTE_ID
from sandbox.site import SiteServer
from tests.site.helpers import COOKIE, fetch, page_state

REAL_STORES = ["global", "user", "board", "login", "feed", "layout", "search", "activity", "note",
               "nioStore", "notification", "redMoji"]  # fmt: skip


def _note_url(site: SiteServer, index: int) -> str:
    note = site.dataset.note(index)
    return f"{site.url}/explore/{note.note_id}?xsec_token={note.xsec_token}&xsec_source=pc_search"


def _live_index(site: SiteServer, start: int = 0) -> int:
    return next(i for i in range(start, len(site.dataset)) if not site.dataset.is_deleted(i))


def test_note_page_state_has_the_real_shape(sandbox_site: SiteServer) -> None:
    index = sandbox_site.dataset.reference_index
    answer = fetch(_note_url(sandbox_site, index))
    assert answer.status == 200 and answer.headers["content-type"].startswith("text/html")
    raw, state = page_state(answer.text)
    assert list(state) == REAL_STORES
    assert '"pwaAddDesktopPrompt":undefined' in raw and '"feedsWrapper":undefined' in raw
    assert "\\u002F" in raw and "http://" not in raw
    assert raw.count("<script") == 0
    assert answer.text.count("<script") >= 3  # other scripts around the state
    store = state["note"]
    assert store["currentNoteId"] == REFERENCE_NOTE_ID == store["firstNoteId"]
    detail = store["noteDetailMap"][REFERENCE_NOTE_ID]
    assert set(detail) == {"comments", "currentTime", "note"}
    note = detail["note"]
    truth = sandbox_site.dataset.note(index)
    assert note["noteId"] == truth.note_id and note["xsecToken"] == truth.xsec_token
    assert note["title"] == truth.title and note["desc"] == truth.desc
    assert [t["name"] for t in note["tagList"]] == list(truth.tags)
    assert {t["type"] for t in note["tagList"]} == {"topic"}
    assert note["interactInfo"]["likedCount"] == truth.interact["liked"]
    assert note["time"] == truth.time and note["lastUpdateTime"] == truth.last_update_time
    assert note["ipLocation"] == truth.ip_location and note["type"] == "normal"
    assert note["user"]["userId"] == truth.user.user_id
    assert len(note["imageList"]) == 3
    for image, spec in zip(note["imageList"], truth.images, strict=True):
        pattern = rf"^{re.escape(sandbox_site.cdn_url)}/\d{{12}}/[0-9a-f]{{32}}/{re.escape(spec.token)}!nd_dft_wlteh_webp_3$"
        assert re.match(pattern, image["urlDefault"])
        assert [i["imageScene"] for i in image["infoList"]] == ["WB_PRV", "WB_DFT"]
        assert (image["width"], image["height"]) == (spec.width, spec.height)


def test_a_title_with_the_word_undefined_stays_a_string(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    index = next(
        i for i in range(len(ds)) if "undefined" in ds.note(i).title and not ds.is_deleted(i)
    )
    raw, state = page_state(fetch(_note_url(sandbox_site, index)).text)
    title = ds.note(index).title
    assert f'"title":"{title}"' in raw
    assert state["note"]["noteDetailMap"][ds.note(index).note_id]["note"]["title"] == title


def test_note_page_meta_tags(sandbox_site: SiteServer) -> None:
    index = sandbox_site.dataset.reference_index
    truth = sandbox_site.dataset.note(index)
    html = fetch(_note_url(sandbox_site, index)).text
    assert f'<meta name="og:title" content="{truth.title} - 小红书">' in html
    assert html.count('<meta name="og:image"') == 3
    assert f'<meta name="og:xhs:note_like" content="{truth.interact["liked"]}">' in html
    assert f'<meta name="og:xhs:note_collect" content="{truth.interact["collected"]}">' in html
    assert f'<meta name="og:xhs:note_comment" content="{truth.interact["comments"]}">' in html
    assert f'<meta name="keywords" content="{", ".join(truth.tags)}">' in html
    assert '<meta name="description"' in html


def test_video_note_page_carries_the_video(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    index = next(i for i in range(len(ds)) if ds.note(i).type == "video" and not ds.is_deleted(i))
    _, state = page_state(fetch(_note_url(sandbox_site, index)).text)
    note = state["note"]["noteDetailMap"][ds.note(index).note_id]["note"]
    assert note["type"] == "video"
    assert note["video"]["consumer"]["originVideoKey"] == ds.note(index).video.origin_video_key
    assert note["video"]["media"]["stream"]["h264"][0]["masterUrl"].startswith(sandbox_site.cdn_url)


def test_missing_or_wrong_xsec_token_redirects_home(sandbox_site: SiteServer) -> None:
    note = sandbox_site.dataset.note(_live_index(sandbox_site))
    for query in ("", "?xsec_token=", "?xsec_token=ABwrong="):
        answer = fetch(f"{sandbox_site.url}/explore/{note.note_id}{query}")
        assert answer.status == 302 and answer.headers["location"] == "/explore"
    assert fetch(sandbox_site.url + "/explore").status == 200


def test_deleted_and_unknown_notes(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    index = next(i for i in range(len(ds)) if ds.is_deleted(i))
    note = ds.note(index)
    answer = fetch(_note_url(sandbox_site, index))
    assert answer.status == 200
    _, state = page_state(answer.text)
    assert state["note"]["noteDetailMap"] == {}
    assert state["note"]["serverRequestInfo"] == {
        "state": "fail",
        "errorCode": -510000,
        "errMsg": "笔记不存在",
    }
    assert note.note_id in ds.deleted_ids()
    assert note.note_id not in ds.search(note.title)  # listings only show live notes
    assert note.note_id not in ds.user_notes(note.user.user_id)
    unknown = fetch(f"{sandbox_site.url}/explore/0123456789abcdef01234567?xsec_token=AB=")
    assert unknown.status == 404
    assert page_state(unknown.text)[1]["note"]["serverRequestInfo"]["errorCode"] == -510001


def test_deleted_knob_and_stats_outcomes(make_site) -> None:
    site = make_site(notes=60)
    index = _live_index(site, 10)
    site.control(deleted=[site.dataset.note(index).note_id])
    _, state = page_state(fetch(_note_url(site, index)).text)
    assert state["note"]["serverRequestInfo"]["errorCode"] == -510000
    fetch(_note_url(site, _live_index(site, index + 1)))
    fetch(f"{site.url}/explore/{site.dataset.note(index).note_id}")
    stats = site.stats()
    assert stats["note_gone"] == 1 and stats["note_ok"] == 1 and stats["note_xsec_invalid"] == 1
    assert stats["note_200"] == 2 and stats["note_302"] == 1 and stats["note_total"] == 3


def test_search_and_profile_pages_need_the_login_cookie(sandbox_site: SiteServer) -> None:
    user_id = sandbox_site.dataset.users()[0]
    for path in ("/search_result?keyword=%E5%A4%A7%E6%A8%A1%E5%9E%8B", f"/user/profile/{user_id}"):
        answer = fetch(sandbox_site.url + path)
        assert answer.status == 302 and answer.headers["location"].startswith(
            "/login?redirectPath="
        )
        assert (
            fetch(
                sandbox_site.url + path, headers={"Cookie": "a1=sandbox; web_session=other"}
            ).status
            == 302
        )
        assert fetch(sandbox_site.url + path, headers={"Cookie": COOKIE}).status == 200
    assert fetch(sandbox_site.url + "/login").status == 200


def test_profile_page_state_has_the_real_shape(sandbox_site: SiteServer) -> None:
    ds = sandbox_site.dataset
    user_id = max(ds.users(), key=lambda u: len(ds.user_notes(u)))
    ids = ds.user_notes(user_id)
    raw, state = page_state(
        fetch(f"{sandbox_site.url}/user/profile/{user_id}", headers={"Cookie": COOKIE}).text
    )
    user = state["user"]
    assert user["userPageData"]["basicInfo"]["nickname"] == ds.user(user_id).nickname
    assert [i["type"] for i in user["userPageData"]["interactions"]] == [
        "follows",
        "fans",
        "interaction",
    ]
    first = user["notes"][0]
    assert [n["id"] for n in first] == ids[:30]
    assert set(first[0]) == {"id", "noteCard", "index", "exposed", "ssrRendered", "xsecToken"}
    assert first[0]["noteCard"]["displayTitle"] == ds.note_by_id(ids[0]).title
    assert first[0]["xsecToken"] == ds.note_by_id(ids[0]).xsec_token
    assert user["noteQueries"][0]["cursor"] == ids[29] and user["noteQueries"][0]["hasMore"] is True
    assert list(state["note"]["noteDetailMap"]) == ["undefined"]
    assert '"currentNoteId":undefined' in raw
