"""Creator profiles: the real profile state 09 (origin: tests/data/xhs-real/MANIFEST.md),
the same state as a Vue ref and with abbreviated counts, the otherinfo API twin, and
hostile states that each give a typed error."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from crawler.core.items import UserTag
from crawler.parsing.errors import (
    Captcha,
    IpBlocked,
    LoginRequired,
    ProfileMalformed,
    ProfileMissing,
    ProfileUnavailable,
    ResponseMalformed,
    StateMissing,
)
from crawler.parsing.state import extract_initial_state
from crawler.parsing.users import (
    MAX_TAGS,
    ProfileTruncated,
    parse_profile_page,
    profile_warnings,
    user_from_otherinfo,
    user_from_state,
    user_id_from_url,
)
from tests.parsing.samples import PROFILE_09, PROFILE_09_URL, real_bytes, real_text

USER_09 = "5a177936e8ac2b535e9441b3"
FETCHED = datetime(2024, 11, 7, 12, 0, tzinfo=UTC)


def state_09() -> dict[str, Any]:
    return extract_initial_state(real_bytes(PROFILE_09))


def page_data(state: dict[str, Any]) -> dict[str, Any]:
    return state["user"]["userPageData"]


def as_page(state: dict[str, Any]) -> str:
    return (
        f"<html><body><script>window.__INITIAL_STATE__={json.dumps(state)}</script></body></html>"
    )


# --- the real profile ------------------------------------------------------------------------


def test_real_profile_fields_counts_and_tags() -> None:
    user = parse_profile_page(real_bytes(PROFILE_09), PROFILE_09_URL, fetched_at=FETCHED)
    assert user.user_id == USER_09
    assert (user.red_id, user.nickname, user.desc) == ("943388836", "Bear Meucci", "")
    assert user.gender == "male"  # gender 0, and the page's tag icon is gender-male
    assert user.ip_location is None  # the page says ""
    assert user.avatar == (
        "https://sns-avatar-qc.xhscdn.com/avatar/5a177936e8ac2b535e9441b3.jpg"
        "?imageView2/2/w/540/format/webp"
    )
    counts = user.interactions
    assert (counts.follows.value, counts.follows.raw) == (182, "182")
    assert (counts.fans.value, counts.fans.raw) == (5, "5")
    assert (counts.likes_and_collects.value, counts.likes_and_collects.raw) == (16, "16")
    assert user.tags == [
        UserTag(
            kind="info", name="26岁", icon="http://ci.xiaohongshu.com/icons/user/gender-male-v1.png"
        )
    ]
    assert (user.verified, user.verify_type) == (None, None)  # this page does not say
    assert (user.source, user.truncated, user.fetched_at) == ("page", [], FETCHED)


def test_raw_state_text_and_parsed_state_agree() -> None:
    from_text = parse_profile_page(real_text(PROFILE_09), PROFILE_09_URL)
    # Without an id asked for, the owner comes from user.noteQueries (not user.userInfo).
    from_state = user_from_state(state_09())
    assert from_state == from_text


def test_profile_as_vue_ref_with_abbreviated_counts() -> None:
    state = state_09()
    data = page_data(state)
    counts = {"follows": "1.2万", "fans": "10万+", "interaction": "3.4亿"}
    for entry in data["interactions"]:
        entry["count"] = counts[entry["type"]]
    data["tags"].append({"name": "上海", "tagType": "location"})
    data["tags"].append(
        {"icon": "http://ci.xiaohongshu.com/icons/user/college.png", "tagType": "college"}
    )
    data["verifyInfo"] = {"redOfficialVerifyType": 1}
    state["user"]["userPageData"] = {"__v_isRef": True, "_rawValue": data, "_value": data}
    user = parse_profile_page(as_page(state), PROFILE_09_URL)
    assert (user.interactions.follows.value, user.interactions.follows.raw) == (12000, "1.2万")
    assert (user.interactions.fans.value, user.interactions.fans.raw) == (100000, "10万+")
    assert user.interactions.likes_and_collects.value == 340_000_000
    assert [(t.kind, t.name) for t in user.tags] == [
        ("info", "26岁"),
        ("location", "上海"),
        ("college", None),
    ]
    assert (user.verified, user.verify_type) == (True, 1)


@pytest.mark.parametrize(
    ("flag", "verify_info", "expected"),
    [
        (True, None, (True, None)),  # the flag alone says verified
        (False, {"redOfficialVerifyType": 1}, (False, 1)),  # the flag wins over the type
        (True, {"redOfficialVerifyType": 0}, (True, 0)),
        ("yes", {"redOfficialVerifyType": 2}, (True, 2)),  # no bool: the type decides
        ("yes", None, (None, None)),  # neither: not said
    ],
)
def test_basic_info_red_official_verified(flag: Any, verify_info: Any, expected: tuple) -> None:
    state = state_09()
    data = page_data(state)
    data["basicInfo"]["redOfficialVerified"] = flag
    if verify_info is not None:
        data["verifyInfo"] = verify_info
    user = parse_profile_page(as_page(state), PROFILE_09_URL)
    assert (user.verified, user.verify_type) == expected
    api = otherinfo_09()
    api["data"]["basic_info"]["red_official_verified"] = flag
    if verify_info is None:
        del api["data"]["verify_info"]
    else:
        api["data"]["verify_info"] = {
            "red_official_verify_type": verify_info["redOfficialVerifyType"]
        }
    twin = user_from_otherinfo(api, user_id=USER_09)  # the API's red_official_verified
    assert (twin.verified, twin.verify_type) == expected


def test_user_id_from_url() -> None:
    assert user_id_from_url(PROFILE_09_URL) == USER_09
    assert user_id_from_url(f"{PROFILE_09_URL}?xsec_token=x&xsec_source=pc_note") == USER_09
    assert user_id_from_url(f"{PROFILE_09_URL}/685e9b3d00000000240089a5") == USER_09
    assert user_id_from_url("https://www.xiaohongshu.com/explore/685e9b3d00000000240089a5") is None
    assert user_id_from_url("http://[bad/user/profile/x") is None
    assert user_id_from_url(None) is None


# --- the otherinfo API twin ---------------------------------------------------------------------


def otherinfo_09() -> dict[str, Any]:
    """The real page's profile written in the API's snake_case shape."""
    data = page_data(state_09())
    basic = data["basicInfo"]
    return {
        "code": 0,
        "success": True,
        "msg": "成功",
        "data": {
            "basic_info": {
                "nickname": basic["nickname"],
                "red_id": basic["redId"],
                "gender": basic["gender"],
                "ip_location": "浙江",
                "desc": "hello",
                "images": basic["images"],
                "imageb": basic["imageb"],
            },
            "interactions": data["interactions"],
            "tags": [
                {"name": t["name"], "icon": t["icon"], "tag_type": t["tagType"]}
                for t in data["tags"]
            ],
            "verify_info": {"red_official_verify_type": 0},
            "extra_info": {"fstatus": "none", "block_type": "DEFAULT"},
            "result": {"code": 0, "message": "success", "success": True},
        },
    }


def test_otherinfo_answer_gives_the_same_profile() -> None:
    page = parse_profile_page(real_bytes(PROFILE_09), PROFILE_09_URL)
    api = user_from_otherinfo(json.dumps(otherinfo_09()), user_id=USER_09)
    assert api.source == "api"
    assert (api.ip_location, api.desc) == ("浙江", "hello")
    assert (api.verified, api.verify_type) == (False, 0)
    assert api.interactions == page.interactions and api.tags == page.tags
    assert (api.user_id, api.red_id, api.nickname, api.gender, api.avatar) == (
        page.user_id,
        page.red_id,
        page.nickname,
        page.gender,
        page.avatar,
    )


def test_otherinfo_errors() -> None:
    with pytest.raises(LoginRequired):
        user_from_otherinfo({"code": -100, "msg": "登录已过期"}, user_id=USER_09)
    with pytest.raises(ResponseMalformed, match="not JSON"):
        user_from_otherinfo('{"code": 0, "data": {', user_id=USER_09)
    with pytest.raises(ValueError, match="not an id"):
        user_from_otherinfo(otherinfo_09(), user_id="$ne")
    answer = otherinfo_09()
    answer["data"]["result"] = {"code": -1, "success": False, "message": "用户不存在"}
    with pytest.raises(ProfileUnavailable, match="用户不存在"):
        user_from_otherinfo(answer, user_id=USER_09)


# --- hostile states: each a typed error naming what was wrong ------------------------------------


def _raw_with(old: str, new: str) -> str:
    text = real_text(PROFILE_09)
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("raw", "error", "what"),
    [
        (
            _raw_with('"userPageData": {', '"userPageData": undefined, "x": {'),
            ProfileMissing,
            "missing or undefined",
        ),
        (
            _raw_with('"basicInfo": {', '"basicInfo": undefined, "x": {'),
            ProfileMissing,
            "basicInfo is missing",
        ),
        (
            _raw_with('"interactions": [{', '"interactions": undefined, "x": [{'),
            ProfileMissing,
            "interactions are missing",
        ),
        (
            _raw_with(
                '"redId": "943388836",\n        "gender"', '"redId": undefined, "gender"'
            ).replace('"nickname": "Bear Meucci"\n      },', '"nickname": undefined\n      },'),
            ProfileMissing,
            "neither nickname nor redId",
        ),
    ],
)
def test_undefined_values_are_typed_errors(raw: str, error: type[Exception], what: str) -> None:
    with pytest.raises(error, match=what):
        parse_profile_page(raw, PROFILE_09_URL)


def _mutated(mutate: Any) -> dict[str, Any]:
    state = copy.deepcopy(state_09())
    mutate(state)
    return state


@pytest.mark.parametrize(
    ("mutate", "error", "what"),
    [
        (lambda s: s["user"].pop("userPageData"), ProfileMissing, "missing or undefined"),
        (lambda s: s["user"].update(userPageData={}), ProfileMissing, "is empty"),
        (lambda s: s.pop("user"), ProfileMissing, "no user store"),
        (lambda s: s.update(user=[1]), ProfileMalformed, "user store is a list"),
        (lambda s: s["user"].update(userPageData="x"), ProfileMalformed, "userPageData is a str"),
        (lambda s: page_data(s).update(basicInfo=[]), ProfileMalformed, "basicInfo is a list"),
        (
            lambda s: page_data(s).update(interactions="182"),
            ProfileMalformed,
            "interactions is a str",
        ),
        (lambda s: page_data(s).update(tags={"a": 1}), ProfileMalformed, "tags is a dict"),
        (
            lambda s: page_data(s)["basicInfo"].update(nickname={"$ne": 1}),
            ProfileMalformed,
            "nickname is a dict",
        ),
        (
            lambda s: page_data(s)["interactions"][1].update(count=[5]),
            ProfileMalformed,
            r"interactions\[1\].count is a list",
        ),
        (lambda s: page_data(s).update(result={"code": 300012}), IpBlocked, "300012"),
        (
            lambda s: page_data(s).update(result={"code": 4, "success": False}),
            ProfileUnavailable,
            "code 4",
        ),
        (lambda s: s["user"]["bannedInfo"].update(serverBanned=True), ProfileUnavailable, "banned"),
    ],
)
def test_hostile_states_are_typed_errors(mutate: Any, error: type[Exception], what: str) -> None:
    with pytest.raises(error, match=what) as caught:
        user_from_state(_mutated(mutate), user_id=USER_09)
    assert len(str(caught.value)) < 300


def test_ten_thousand_tags_are_capped_with_a_reason() -> None:
    def mutate(state: dict[str, Any]) -> None:
        page_data(state)["tags"] = [{"name": f"tag {i}", "tagType": "info"} for i in range(10_000)]

    user = user_from_state(_mutated(mutate), user_id=USER_09)
    assert len(user.tags) == MAX_TAGS
    assert user.truncated == ["tags"]
    assert user.tags[-1].name == f"tag {MAX_TAGS - 1}"
    # Kept, with a typed warning for the crawl to count (not an error: nothing is lost).
    assert profile_warnings(user) == [ProfileTruncated("tags")]
    assert profile_warnings(user)[0].reason == "tags_truncated"


def test_long_desc_odd_values_and_hostile_keys() -> None:
    def mutate(state: dict[str, Any]) -> None:
        basic = page_data(state)["basicInfo"]
        basic.update(
            desc="简" * 100_000, gender=7, images="x" * 10_000, imageb=None, ipLocation="\ud83d"
        )
        basic["$where"] = "sleep(1)"
        page_data(state)["interactions"].append({"type": "fans", "count": "999"})  # a second "fans"
        page_data(state)["interactions"].append("not an entry")
        page_data(state)["tags"].append({"tagType": "info"})  # names nothing

    user = user_from_state(_mutated(mutate), user_id=USER_09)
    assert len(user.desc) == 2_000 and user.truncated == ["desc"]
    assert [w.reason for w in profile_warnings(user)] == ["desc_truncated"]
    assert (user.gender, user.avatar, user.ip_location) == (None, None, "\ufffd")
    assert user.interactions.fans.value == 5  # the first entry of a type counts
    assert len(user.tags) == 1
    assert "$where" not in json.dumps(user.__dict__, default=str)


def test_owner_id_checks() -> None:
    with pytest.raises(ProfileMissing, match="not 5b06ed7f4eacab609ebff4aa"):
        user_from_state(state_09(), user_id="5b06ed7f4eacab609ebff4aa")
    with pytest.raises(ProfileMalformed, match="not an id"):
        user_from_state(state_09(), user_id="../../x")

    def no_queries(state: dict[str, Any]) -> None:
        state["user"].pop("noteQueries")

    with pytest.raises(ProfileMissing, match="no user id"):
        user_from_state(_mutated(no_queries))
    assert user_from_state(_mutated(no_queries), user_id=USER_09).user_id == USER_09


def test_pages_that_are_no_profile() -> None:
    with pytest.raises(Captcha):
        parse_profile_page(
            "<html>x</html>", "https://www.xiaohongshu.com/website-login/captcha?verifyType=102"
        )
    with pytest.raises(LoginRequired):
        parse_profile_page("<html>x</html>", "https://www.xiaohongshu.com/login")
    with pytest.raises(StateMissing, match="no <script>"):
        parse_profile_page("<html><title>hi</title></html>", PROFILE_09_URL)
    with pytest.raises(Captcha):
        parse_profile_page("<html><body>请完成安全验证</body></html>", PROFILE_09_URL)


# --- the sandbox's profile pages read back into its ground truth ---------------------------


def test_sandbox_profiles_read_back_with_their_counts() -> None:
    """Every profile page the sandbox renders (fixture 09's shape, abbreviated counts
    such as "1.2万" and "10万+") parses into its ``Dataset.profile`` ground truth."""
    from sandbox.dataset import Dataset
    from sandbox.site import pages, shapes

    urls = shapes.Urls("http://127.0.0.1:1", "http://127.0.0.1:2")
    dataset = Dataset(seed=1, size=300)
    abbreviated = 0
    for user_id in dataset.users()[:60]:
        profile = dataset.profile(user_id)
        assert profile is not None
        notes = [dataset.note_by_id(i) for i in dataset.user_notes(user_id)[:3]]
        state = shapes.profile_state(
            profile, [n for n in notes if n], False, urls, 1_700_000_000_000
        )
        html = pages.profile_page(user_id, profile.user.nickname, state, "")
        user = parse_profile_page(html, f"{urls.site}/user/profile/{user_id}")
        assert (user.user_id, user.red_id, user.nickname) == (
            user_id,
            profile.red_id,
            profile.user.nickname,
        )
        assert (user.desc, user.ip_location) == (profile.desc, profile.ip_location)
        assert user.gender == ("male", "female")[profile.gender]
        assert [(t.name, t.kind) for t in user.tags] == list(profile.tags)
        counts = user.interactions
        for item_count, shown, exact in (
            (counts.follows, profile.shown["follows"], profile.follows),
            (counts.fans, profile.shown["fans"], profile.fans),
            (counts.likes_and_collects, profile.shown["interaction"], profile.interaction),
        ):
            assert item_count.raw == shown
            assert item_count.value is not None
            if shown.isdigit():
                assert item_count.value == exact
            elif shown.endswith("+"):  # "10万+": a lower bound
                abbreviated += 1
                assert item_count.value == 100_000 <= exact
            else:  # "4.1万": one decimal of 万, rounded
                abbreviated += 1
                assert abs(item_count.value - exact) <= 500
    assert abbreviated > 0


def test_sandbox_unknown_user_page_is_unavailable() -> None:
    from sandbox.site import pages, shapes

    state = shapes.base_state(1_700_000_000_000)
    state["user"]["userPageData"] = {
        "result": {"code": -1, "message": "用户不存在", "success": False}
    }
    html = pages.profile_page(USER_09, "", state, "")
    with pytest.raises(ProfileUnavailable, match="用户不存在"):
        parse_profile_page(html, PROFILE_09_URL)
