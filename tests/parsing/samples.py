"""Loaders for the real samples in tests/data/xhs-real/.

Those files were captured by other people and published in public repositories; their
origins (repository, commit, path) are listed in tests/data/xhs-real/MANIFEST.md, which
stays next to them. They are used unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REAL = Path(__file__).resolve().parent.parent / "data" / "xhs-real"

PAGE_01 = "01_note_page_ssr_image_685e9b3d_2025-07-16.html"
STATE_02B = "02b_note_page_ssr_image_685e9b3d_2025-07-16.initial_state.raw.txt"
FEED_VIDEO_04 = "04_feed_api_video_64356527_2023-10-05.json"
FEED_IMAGE_05 = "05_feed_api_image_66696f98_2024-09-19.json"
SEARCH_06 = "06_search_notes_api_2024-09-26.json"
USER_POSTED_07 = "07_user_posted_api_6034d6f2_2023-10-05.json"
COLLECT_08 = "08_note_collect_page_api_2024-11-07.json"
PROFILE_09 = "09_user_profile_ssr_state_raw_2024-11-07.txt"
COMMENTS_10 = "10_comment_page_api_6961f6a2_2026-01-13.json"

NOTE_01_ID = "685e9b3d00000000240089a5"
NOTE_01_URL = (
    f"https://www.xiaohongshu.com/explore/{NOTE_01_ID}?xsec_token=FROMURL&xsec_source=pc_feed"
)
PROFILE_09_URL = "https://www.xiaohongshu.com/user/profile/5a177936e8ac2b535e9441b3"


def real_bytes(name: str) -> bytes:
    return (REAL / name).read_bytes()


def real_text(name: str) -> str:
    return (REAL / name).read_text(encoding="utf-8")


def real_json(name: str) -> Any:
    return json.loads(real_text(name))


def feed_card(name: str) -> dict[str, Any]:
    """The ``note_card`` of a ``/feed`` answer (05 wraps it as {request, response})."""
    answer = real_json(name)
    answer = answer.get("response", answer)
    return answer["data"]["items"][0]["note_card"]
