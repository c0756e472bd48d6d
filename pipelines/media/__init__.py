"""The media side: each note's pictures (and, opt-in, its video) downloaded, checked
and stored by content hash, and read back by whoever needs them.

- :mod:`.pipeline`: :class:`NoteMediaPipeline` (Scrapy ``FilesPipeline`` subclass;
  ``ITEM_PIPELINES`` path ``pipelines.media.NoteMediaPipeline``);
- :mod:`.store`: :class:`MediaStore` (``MediaStore.from_settings(settings).read(path)``
  over the local, S3, GCS or FTP files store), the content-path rule;
- :mod:`.outcomes`: what one download attempt came to (:class:`Stored`,
  :class:`Rejected`, :class:`Redirected`, :class:`MediaDownloadError`);
- :mod:`.settings`: :class:`MediaSettings`, the knobs read once.

URL safety is :mod:`pipelines.urlsafety`, decoding and downscaling :mod:`pipelines.imaging`.
"""

from pipelines.media.outcomes import (
    MediaDownloadError,
    Outcome,
    Redirected,
    Rejected,
    Stored,
    failure_summary,
    transport_reason,
    unique,
)
from pipelines.media.pipeline import NoteMediaPipeline
from pipelines.media.settings import MediaSettings, MediaSettingsError
from pipelines.media.store import (
    MediaReadError,
    MediaStore,
    content_path,
    is_content_path,
    store_uri,
)

__all__ = [
    "MediaDownloadError",
    "MediaReadError",
    "MediaSettings",
    "MediaSettingsError",
    "MediaStore",
    "NoteMediaPipeline",
    "Outcome",
    "Redirected",
    "Rejected",
    "Stored",
    "content_path",
    "failure_summary",
    "is_content_path",
    "store_uri",
    "transport_reason",
    "unique",
]
