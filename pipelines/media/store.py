"""Where the media pipeline's files live, and reading them back.

The media pipeline writes through Scrapy's files store (``FSFilesStore`` for a local
directory, S3/GCS/FTP stores for ``s3://``, ``gs://``, ``ftp://`` URIs). Whoever needs a
stored file again (enrichment sends ``images[i].model_path`` to the model) reads it
through :class:`MediaStore`, never by joining ``IMAGES_STORE`` and the path itself, so
a non-local store works for them too where it can be read:

- local directory: the bytes at ``basedir/path``;
- ``s3://``: ``get_object`` with the store's own botocore client;
- ``gs://``: the store's bucket, ``blob(prefix + path).download_as_bytes()``;
- ``ftp://``: ``RETR`` with the store's host, port and credentials;
- any other store class: :class:`MediaReadError` with reason ``not_readable``.

Only paths of the shape the pipeline writes (:func:`is_content_path`) are read: a path
that came back from Mongo cannot point elsewhere. Failures are :class:`MediaReadError`
with a ``.reason`` key (``bad_path``, ``missing``, ``store_unavailable``,
``not_readable``, ``read_error``); messages name the path and the store kind, never a
credential.
"""

from __future__ import annotations

import re
from ftplib import FTP
from ftplib import Error as FtpError
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from scrapy.pipelines.files import FilesPipeline, FSFilesStore
from scrapy.utils.defer import ensure_awaitable

#: The only shape of path the media pipeline writes, and so the only one it trusts when
#: a stored item (from Mongo) claims a file already exists.
_CONTENT_PATH = re.compile(r"(full|model|video)/([0-9a-f]{2})/\2[0-9a-f]{62}\.[a-z0-9]{2,4}")


def content_path(folder: str, sha256: str, extension: str) -> str:
    """``folder/ab/abcdef….ext``: two-level fan-out by content hash."""
    return f"{folder}/{sha256[:2]}/{sha256}.{extension}"


def is_content_path(path: str | None) -> bool:
    return bool(path) and _CONTENT_PATH.fullmatch(path or "") is not None


def store_uri(settings: Any) -> str:
    """The files store of the project: ``IMAGES_STORE`` (``NoteImage.path`` is relative to
    it), ``FILES_STORE`` when only that one is set."""
    return str(settings.get("IMAGES_STORE") or settings.get("FILES_STORE") or "")


class MediaReadError(Exception):
    """A stored file could not be read; ``reason`` is a short stats key."""

    def __init__(self, reason: str, path: str | None, detail: str) -> None:
        super().__init__(f"{reason}: {path}: {detail}" if path else f"{reason}: {detail}")
        self.reason = reason
        self.path = path
        self.detail = detail


class MediaStore:
    """Read access to the files the media pipeline stored (blocking: call it from a
    worker thread, e.g. ``asyncio.to_thread(store.read, path)``)."""

    def __init__(self, store: Any = None, *, unavailable: str | None = None) -> None:
        self.store = store
        self.unavailable = unavailable
        self.kind = _kind(store) if store is not None else "none"

    @classmethod
    def from_settings(cls, settings: Any) -> MediaStore:
        """The store ``IMAGES_STORE``/``FILES_STORE`` names, built the way the media
        pipeline builds it. A store that cannot be built (no URI, a missing client
        library, incomplete FTP credentials) gives a MediaStore whose every read fails
        with reason ``store_unavailable``: the caller decides what a missing image costs."""
        uri = store_uri(settings)
        if not uri:
            return cls(unavailable="IMAGES_STORE and FILES_STORE are both empty")
        FilesPipeline._update_stores(settings)
        scheme = "file" if Path(uri).is_absolute() else urlparse(uri).scheme
        store_cls = FilesPipeline.STORE_SCHEMES.get(scheme)
        if store_cls is None:
            return cls(unavailable=f"no files store for scheme {scheme!r}")
        try:
            return cls(store_cls(uri))
        except Exception as exc:  # NotConfigured (botocore missing), AssertionError (FTP) …
            return cls(unavailable=f"{scheme} store: {type(exc).__name__}: {_scrub(exc, uri)}")

    async def exists(self, path: str, info: Any = None) -> bool:
        """Whether ``path`` (of the content shape) is in the store: a file check for a
        local directory, the store's own ``stat_file`` otherwise."""
        if self.unavailable is not None or not is_content_path(path):
            return False
        if self.kind == "fs":
            return Path(self.store.basedir, *path.split("/")).is_file()
        return bool(await ensure_awaitable(self.store.stat_file(path, info)))

    def read(self, path: str) -> bytes:
        """The bytes stored at ``path`` (relative to the store)."""
        if self.unavailable is not None:
            raise MediaReadError("store_unavailable", path, self.unavailable)
        if not is_content_path(path):
            raise MediaReadError("bad_path", path, "not a path the media pipeline writes")
        reader = _READERS.get(self.kind)
        if reader is None:
            raise MediaReadError(
                "not_readable", path, f"{type(self.store).__name__} has no read support"
            )
        try:
            return reader(self.store, path)
        except FileNotFoundError as exc:
            raise MediaReadError("missing", path, f"not in the {self.kind} store") from exc
        except MediaReadError:
            raise
        except Exception as exc:
            detail = f"{self.kind} store: {type(exc).__name__}: {str(exc)[:160]}"
            raise MediaReadError("read_error", path, detail) from exc


def _kind(store: Any) -> str:
    names = {FSFilesStore: "fs"}
    for scheme in ("s3", "gs", "ftp"):
        names[FilesPipeline.STORE_SCHEMES[scheme]] = scheme
    return names.get(type(store), type(store).__name__)


def _scrub(exc: BaseException, uri: str) -> str:
    """An exception message without the store URI (it may carry credentials)."""
    return str(exc).replace(uri, "<store>")[:160]


def _read_fs(store: FSFilesStore, path: str) -> bytes:
    return Path(store.basedir, *path.split("/")).read_bytes()


def _read_s3(store: Any, path: str) -> bytes:
    answer = store.s3_client.get_object(Bucket=store.bucket, Key=f"{store.prefix}{path}")
    return answer["Body"].read()


def _read_gcs(store: Any, path: str) -> bytes:
    return store.bucket.blob(store.prefix + path).download_as_bytes()


def _read_ftp(store: Any, path: str) -> bytes:
    buffer = BytesIO()
    try:
        with FTP() as ftp:
            ftp.connect(store.host, store.port, timeout=30)
            ftp.login(store.username, store.password)
            if store.USE_ACTIVE_MODE:
                ftp.set_pasv(False)
            ftp.retrbinary(f"RETR {store.basedir}/{path}", buffer.write)
    except FtpError as exc:
        if str(exc).startswith("550"):
            raise FileNotFoundError(path) from exc
        raise MediaReadError("read_error", path, f"ftp {store.host}:{store.port}: {exc}") from exc
    except OSError as exc:
        detail = f"ftp {store.host}:{store.port} unreachable: {type(exc).__name__}"
        raise MediaReadError("store_unavailable", path, detail) from exc
    return buffer.getvalue()


_READERS = {"fs": _read_fs, "s3": _read_s3, "gs": _read_gcs, "ftp": _read_ftp}
