"""Image tokens and original-image candidates from every URL form seen in the samples."""

from __future__ import annotations

import pytest

from crawler.parsing.images import (
    DEFAULT_ORIGINAL_TEMPLATES,
    display_url,
    image_token,
    image_urls,
    original_candidates,
)

WEBPIC = "http://sns-webpic-qc.xhscdn.com/202507162131/b6754c2e73439dd68f85c1db9338a6bd"


@pytest.mark.parametrize(
    ("url", "token"),
    [
        # 2025 page (01): after the 5th `/`, up to `!`.
        (
            f"{WEBPIC}/1040g00831j82leaq340042pp2cln3ecgbftseh0!nd_dft_wlteh_jpg_3",
            "1040g00831j82leaq340042pp2cln3ecgbftseh0",
        ),
        # Tokens with a directory part.
        (
            f"{WEBPIC}/notes_pre_post/1040g3k031abc!nd_dft_wlteh_webp_3",
            "notes_pre_post/1040g3k031abc",
        ),
        (f"{WEBPIC}/spectrum/1040g0k031xyz!nd_prv_wgth_webp_3", "spectrum/1040g0k031xyz"),
        # 2024 profile covers (09): a video first frame.
        (
            f"{WEBPIC}/110/0/01e50c1ff3126a5d0010000000018ab75cea12_0.jpg!nc_n_webp_mw_1",
            "110/0/01e50c1ff3126a5d0010000000018ab75cea12_0.jpg",
        ),
        # 2023 scenes (04).
        (
            "http://sns-webpic-qc.xhscdn.com/202310051422/7ad874b9f514f96b30f53202ed86e8af/1000g0082dm179nugm0005n40ofvlikco2k2n448!nd_whgt34_webp_wm_1",
            "1000g0082dm179nugm0005n40ofvlikco2k2n448",
        ),
        # No `!style`.
        (
            f"{WEBPIC}/1040g00831j82leaq340042pp2cln3ecgbftseh0",
            "1040g00831j82leaq340042pp2cln3ecgbftseh0",
        ),
        # 2023 covers (07) and originals: the whole path.
        (
            "https://sns-img-hw.xhscdn.net/87efa500-c1ed-af9d-6ce2-6b5a7c84a681",
            "87efa500-c1ed-af9d-6ce2-6b5a7c84a681",
        ),
        (
            "https://ci.xiaohongshu.com/notes_pre_post/1040g3k0abc?imageView2/format/png",
            "notes_pre_post/1040g3k0abc",
        ),
        ("https://sns-img-bd.xhscdn.com/spectrum/1040g0k0def", "spectrum/1040g0k0def"),
        # A local CDN (the sandbox uses the same layout).
        (
            "http://127.0.0.1:8001/202611291200/0123456789abcdef0123456789abcdef/sbx_00001_2!nd_dft_wlteh_webp_3",
            "sbx_00001_2",
        ),
    ],
)
def test_image_token(url: str, token: str) -> None:
    assert image_token(url) == token


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "https://sns-img-bd.xhscdn.com/",
        "https://host/a/../../etc/passwd",
        "http://host/a b",
        "not a url",
    ],
)
def test_no_token(url: str | None) -> None:
    assert image_token(url) is None


def test_original_candidates_in_template_order() -> None:
    url = f"{WEBPIC}/spectrum/1040g0k031xyz!nd_prv_wgth_webp_3"
    assert original_candidates(url) == [
        "https://sns-img-bd.xhscdn.com/spectrum/1040g0k031xyz",
        "https://ci.xiaohongshu.com/spectrum/1040g0k031xyz",
    ]
    assert DEFAULT_ORIGINAL_TEMPLATES == (
        "https://sns-img-bd.xhscdn.com/{token}",
        "https://ci.xiaohongshu.com/{token}",
    )
    templates = [
        "http://127.0.0.1:9/{token}",
        "https://ci.xiaohongshu.com/{token}?imageView2/format/png",
        "http://127.0.0.1:9/{token}",
    ]
    assert original_candidates(url, templates) == [
        "http://127.0.0.1:9/spectrum/1040g0k031xyz",
        "https://ci.xiaohongshu.com/spectrum/1040g0k031xyz?imageView2/format/png",
    ]
    assert original_candidates("https://host/../x", templates) == []


def test_display_url_preference() -> None:
    page = {
        "urlPre": "http://h/1/2/t!prv",
        "urlDefault": "http://h/1/2/t!dft_field",
        "infoList": [
            {"imageScene": "WB_PRV", "url": "http://h/1/2/t!prv_scene"},
            {"imageScene": "WB_DFT", "url": "http://h/1/2/t!dft_scene"},
        ],
    }
    assert display_url(page) == "http://h/1/2/t!dft_scene"
    assert display_url({**page, "infoList": []}) == "http://h/1/2/t!dft_field"
    assert (
        display_url({"url_pre": "P", "info_list": [{"image_scene": "WB_PRV", "url": "S"}]}) == "P"
    )
    crd = {
        "url": "",
        "info_list": [
            {"image_scene": "CRD_PRV_WEBP", "url": "prv"},
            {"image_scene": "CRD_WM_WEBP", "url": "wm"},
        ],
    }
    assert display_url(crd) == "wm"
    assert display_url({"info_list": [{"image_scene": "CRD_PRV_WEBP", "url": "prv"}]}) == "prv"
    assert (
        display_url({"infoList": [{"imageScene": "NEW_SCENE", "url": "new"}], "url": "bare"})
        == "new"
    )
    assert display_url({"url": "bare"}) == "bare"
    assert display_url({"height": 1, "width": 2}) is None


def test_image_urls_lists_every_url_once() -> None:
    entry = {"urlDefault": "a", "urlPre": "b", "infoList": [{"url": "b"}, {"url": "c"}], "url": ""}
    assert image_urls(entry) == ["b", "c", "a"]
