"""MediaStore: reading back what the media pipeline stored, through Scrapy's files store."""

from __future__ import annotations

import hashlib
from io import BytesIO
from pathlib import Path

import pytest
from scrapy.pipelines.files import FSFilesStore

from pipelines.media import MediaReadError, MediaStore, content_path
from tests.factories import project_crawler
from tests.media.samples import jpeg


def store_for(**settings: object) -> MediaStore:
    return MediaStore.from_settings(project_crawler(dict(settings)).settings)


def sample() -> tuple[str, bytes]:
    data = jpeg()
    return content_path("full", hashlib.sha256(data).hexdigest(), "jpg"), data


def test_reads_what_the_files_store_wrote(tmp_path: Path) -> None:
    media = store_for(IMAGES_STORE=str(tmp_path / "images"), FILES_STORE=str(tmp_path / "f"))
    assert isinstance(media.store, FSFilesStore) and media.kind == "fs"
    path, data = sample()
    media.store.persist_file(path, BytesIO(data), info=None)
    assert (tmp_path / "images" / path).is_file()  # IMAGES_STORE wins, as in the pipeline
    assert media.read(path) == data


def test_files_store_uri_when_images_store_is_empty(tmp_path: Path) -> None:
    media = store_for(IMAGES_STORE="", FILES_STORE=f"file://{tmp_path}")
    path, data = sample()
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_bytes(data)
    assert media.read(path) == data


async def test_exists_matches_read(tmp_path: Path) -> None:
    media = store_for(IMAGES_STORE=str(tmp_path))
    path, data = sample()
    assert not await media.exists(path)
    media.store.persist_file(path, BytesIO(data), info=None)
    assert await media.exists(path)
    assert not await media.exists("../" + path)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (content_path("model", "ab" * 32, "jpg"), "missing"),
        ("../../etc/passwd", "bad_path"),
        ("a/b.jpg", "bad_path"),
    ],
)
def test_unreadable_paths_say_why(tmp_path: Path, path: str, reason: str) -> None:
    with pytest.raises(MediaReadError) as caught:
        store_for(IMAGES_STORE=str(tmp_path)).read(path)
    assert caught.value.reason == reason and caught.value.path == path


def test_an_unreachable_ftp_store_fails_with_a_reason_and_no_password(unused_tcp_port) -> None:
    media = store_for(IMAGES_STORE=f"ftp://reader:s3cret-pass@127.0.0.1:{unused_tcp_port}/images")
    assert media.kind == "ftp" and media.unavailable is None
    path, _ = sample()
    with pytest.raises(MediaReadError) as caught:
        media.read(path)
    assert caught.value.reason == "store_unavailable"
    assert f"127.0.0.1:{unused_tcp_port} unreachable" in str(caught.value)
    assert "s3cret-pass" not in str(caught.value)


def test_an_s3_store_without_its_client_library_is_unavailable_not_a_crash() -> None:
    pytest.importorskip("scrapy.utils.boto")
    from scrapy.utils.boto import is_botocore_available

    if is_botocore_available():
        pytest.skip("botocore is installed here: the S3 store builds")
    media = store_for(IMAGES_STORE="s3://bucket/images/")
    path, _ = sample()
    with pytest.raises(MediaReadError) as caught:
        media.read(path)
    assert caught.value.reason == "store_unavailable"
    assert "botocore" in caught.value.detail


def test_a_store_class_without_read_support_is_not_readable() -> None:
    class WriteOnlyStore:
        def persist_file(self, *args: object, **kwargs: object) -> None: ...

        def stat_file(self, *args: object, **kwargs: object) -> dict:
            return {}

    path, _ = sample()
    with pytest.raises(MediaReadError) as caught:
        MediaStore(WriteOnlyStore()).read(path)
    assert caught.value.reason == "not_readable" and "WriteOnlyStore" in caught.value.detail


def test_no_store_configured() -> None:
    with pytest.raises(MediaReadError, match="store_unavailable"):
        store_for(IMAGES_STORE="", FILES_STORE="").read(sample()[0])
