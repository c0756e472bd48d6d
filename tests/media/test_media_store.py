"""MediaStore: reading back what the media pipeline stored, through Scrapy's files store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from itemadapter import ItemAdapter
from scrapy.pipelines.files import FSFilesStore
from scrapy.utils.ftp import ftp_store_file

from pipelines.enrichment import note_input
from pipelines.media import MediaReadError, MediaStore, content_path
from tests.factories import make_image, make_note, project_crawler
from tests.media.ftp_server import ftp_server
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


FTP_USER, FTP_PASSWORD = "reader", "s3cret-pass"


@pytest.fixture(scope="module")
def ftp_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with ftp_server(tmp_path_factory.mktemp("ftp"), FTP_USER, FTP_PASSWORD) as port:
        yield port


def ftp_store(port: int) -> MediaStore:
    media = store_for(IMAGES_STORE=f"ftp://{FTP_USER}:{FTP_PASSWORD}@127.0.0.1:{port}/images")
    assert media.kind == "ftp" and media.unavailable is None
    return media


def persist_over_ftp(media: MediaStore, path: str, data: bytes) -> None:
    """What Scrapy's FTPFilesStore.persist_file runs in its thread, with the store's own
    host, port, credentials and base directory."""
    store = media.store
    ftp_store_file(
        path=f"{store.basedir}/{path}", file=BytesIO(data), host=store.host, port=store.port,
        username=store.username, password=store.password, use_active_mode=False,
    )  # fmt: skip


def test_reads_what_the_ftp_store_wrote_and_a_missing_file_is_missing(ftp_port: int) -> None:
    media = ftp_store(ftp_port)
    path, data = sample()
    persist_over_ftp(media, path, data)
    assert media.read(path) == data
    absent = content_path("full", "cd" * 32, "jpg")
    with pytest.raises(MediaReadError) as caught:
        media.read(absent)
    assert caught.value.reason == "missing" and FTP_PASSWORD not in str(caught.value)


def test_note_input_reads_a_note_s_images_from_the_ftp_store(ftp_port: int) -> None:
    media = ftp_store(ftp_port)
    data = jpeg((64, 48))
    digest = hashlib.sha256(data).hexdigest()
    path = content_path("model", digest, "jpg")
    persist_over_ftp(media, path, data)
    image = make_image(path=path, model_path=path, sha256=digest, status="ok")
    note = make_note(1, title="标题", desc="正文", images=[image])
    result, unreadable = note_input(ItemAdapter(note), media, max_text_chars=20_000)
    assert unreadable == []
    assert [(img.index, img.data, img.sha256) for img in result.images] == [(0, data, digest)]


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
