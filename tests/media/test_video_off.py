"""A video whose download is off (XHS_DOWNLOAD_VIDEOS=False) is `skipped` with its reason,
not `pending` forever; one stored before stays `ok`."""

from __future__ import annotations

from pathlib import Path

from crawler.core.items import NoteVideo
from pipelines.media import NoteMediaPipeline
from tests.factories import make_note, project_crawler


async def test_video_with_downloads_off_is_skipped(tmp_path: Path) -> None:
    crawler = project_crawler(
        {"IMAGES_STORE": str(tmp_path), "XHS_BASE_URL": "https://www.xiaohongshu.com",
         "XHS_DOWNLOAD_VIDEOS": False}
    )  # fmt: skip
    pipeline = NoteMediaPipeline.from_crawler(crawler)
    note = make_note(
        note_id="v1",
        type="video",
        images=[],
        video=NoteVideo(url="https://sns-video-bd.xhscdn.com/v"),
    )
    await pipeline.process_item(note)
    assert (note.video.status, note.video.error) == ("skipped", "download_off: XHS_DOWNLOAD_VIDEOS")
    kept = NoteVideo(url="https://sns-video-bd.xhscdn.com/w", status="ok", path="video/ab/x.mp4")
    stored = make_note(note_id="v2", type="video", images=[], video=kept)
    await pipeline.process_item(stored)
    assert (stored.video.status, stored.video.path) == ("ok", "video/ab/x.mp4")
