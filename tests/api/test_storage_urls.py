"""GET /api/v1/storage/{key}: signed URLs serve media, anything else is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from labelyard.adapters.storage import LocalStorage, UrlSigner
from labelyard.api.storage_urls import router

NOW = 1_700_000_000
PNG = b"\x89PNG\r\n\x1a\n fake image"


class Clock:
    def __init__(self) -> None:
        self.now: float = NOW

    def __call__(self) -> float:
        return self.now


class TrustingSigner(UrlSigner):
    """A signer that accepts every URL, to test the storage's own key checks."""

    def verify(
        self, key: str, expires: str | int, signature: str, filename: str | None = None
    ) -> bool:
        return True


class StreamedStorage(LocalStorage):
    """The local backend without a local path, as S3 has none: the route must stream."""

    def local_path(self, key: str) -> None:  # type: ignore[override]
        self._path(key)
        return None


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def media(tmp_path: Path, clock: Clock) -> LocalStorage:
    return LocalStorage(tmp_path / "media", UrlSigner(b"s3cr3t", clock=clock))


def _client(storage: LocalStorage) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.signer = storage.signer
    app.state.storage = storage
    app.include_router(router, prefix="/api/v1")
    with TestClient(app) as client:
        yield client


@pytest.fixture
def web(media: LocalStorage) -> Iterator[TestClient]:
    yield from _client(media)


def test_a_signed_url_serves_the_object(web: TestClient, media: LocalStorage) -> None:
    media.put_bytes("frames/0001.png", PNG)
    answer = web.get(media.signed_url("frames/0001.png"))
    assert answer.status_code == 200
    assert answer.content == PNG
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in answer.headers


def test_unknown_types_are_octet_streams(web: TestClient, media: LocalStorage) -> None:
    media.put_bytes("blobs/raw", b"\x00\x01")
    answer = web.get(media.signed_url("blobs/raw"))
    assert answer.headers["content-type"] == "application/octet-stream"


def test_filename_sets_content_disposition(web: TestClient, media: LocalStorage) -> None:
    media.put_bytes("frames/0001.png", PNG)
    answer = web.get(media.signed_url("frames/0001.png", filename="frame 1.png"))
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"frame 1.png\"; filename*=UTF-8''frame%201.png"
    )
    answer = web.get(media.signed_url("frames/0001.png", filename='ünï\r\n"x".png'))
    assert answer.status_code == 200
    # No raw CR/LF or quote reaches the header; filename* carries the exact name.
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"_n____x_.png\"; filename*=UTF-8''%C3%BCn%C3%AF%0D%0A%22x%22.png"
    )


def test_odd_keys_round_trip(web: TestClient, media: LocalStorage) -> None:
    key = "datasets/ünï cødé/#1 ?&=%.png"
    media.put_bytes(key, PNG)
    answer = web.get(media.signed_url(key))
    assert answer.status_code == 200
    assert answer.content == PNG


def test_large_objects_stream_and_support_ranges(web: TestClient, media: LocalStorage) -> None:
    data = bytes(range(256)) * 8192  # 2 MB
    media.put_bytes("videos/clip.mp4", data)
    url = media.signed_url("videos/clip.mp4")
    assert web.get(url).content == data
    partial = web.get(url, headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206
    assert partial.content == data[100:200]


def test_streams_when_the_backend_has_no_local_path(tmp_path: Path, clock: Clock) -> None:
    storage = StreamedStorage(tmp_path / "streamed", UrlSigner(b"s3cr3t", clock=clock))
    data = bytes(range(256)) * 4096
    storage.put_bytes("videos/clip.mp4", data)
    for client in _client(storage):
        answer = client.get(storage.signed_url("videos/clip.mp4", filename="clip.mp4"))
        assert answer.status_code == 200
        assert answer.content == data
        assert answer.headers["content-type"] == "video/mp4"
        assert answer.headers["content-disposition"].startswith('attachment; filename="clip.mp4"')
        missing = client.get(storage.signed_url("videos/none.mp4"))
        assert missing.status_code == 404


def test_expired(web: TestClient, media: LocalStorage, clock: Clock) -> None:
    media.put_bytes("a.png", PNG)
    url = media.signed_url("a.png", expires_in=60)
    clock.now = NOW + 61
    answer = web.get(url)
    assert answer.status_code == 403
    assert answer.json() == {"detail": "The link is invalid or has expired."}


def test_tampered_or_missing_parameters(web: TestClient, media: LocalStorage) -> None:
    media.put_bytes("a.png", PNG)
    media.put_bytes("b.png", b"other")
    query = media.signer.query("a.png", 60, filename="a.png")
    expires, signature = query["expires"], query["signature"]
    refused = [
        f"/api/v1/storage/b.png?expires={expires}&signature={signature}&filename=a.png",
        f"/api/v1/storage/a.png?expires={int(expires) + 1}&signature={signature}&filename=a.png",
        f"/api/v1/storage/a.png?expires={expires}&signature={'0' * 64}&filename=a.png",
        f"/api/v1/storage/a.png?expires={expires}&signature={signature}&filename=b.png",
        f"/api/v1/storage/a.png?expires={expires}&signature={signature}",
        f"/api/v1/storage/a.png?expires=soon&signature={signature}&filename=a.png",
        f"/api/v1/storage/a.png?signature={signature}&filename=a.png",
        "/api/v1/storage/a.png",
    ]
    for url in refused:
        answer = web.get(url)
        assert answer.status_code == 403, url
        assert "detail" in answer.json()
    good = f"/api/v1/storage/a.png?expires={expires}&signature={signature}&filename=a.png"
    assert web.get(good).status_code == 200


def test_missing_object_is_404(web: TestClient, media: LocalStorage) -> None:
    answer = web.get(media.signed_url("frames/none.png"))
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not found."}
    media.put_bytes("dir/inside.png", PNG)
    assert web.get(media.signed_url("dir")).status_code == 404


def test_dotdot_never_escapes_the_root(
    web: TestClient, media: LocalStorage, tmp_path: Path
) -> None:
    (tmp_path / "outside.txt").write_bytes(b"secret")
    query = media.signer.query("outside.txt", 60)
    tail = f"?expires={query['expires']}&signature={query['signature']}"
    for path in ["%2E%2E/outside.txt", "..%2Foutside.txt", "a/%2E%2E/%2E%2E/outside.txt"]:
        answer = web.get(f"/api/v1/storage/{path}{tail}")
        assert answer.status_code == 403, path
        assert b"secret" not in answer.content


def test_dotdot_is_refused_even_past_the_signature(tmp_path: Path) -> None:
    """The storage checks keys on its own: a signer that let a bad key through (a bug)
    still would not open a file outside the root."""
    (tmp_path / "outside.txt").write_bytes(b"secret")
    storage = LocalStorage(tmp_path / "media", TrustingSigner(b"s3cr3t"))
    for client in _client(storage):
        for path in ["%2E%2E/outside.txt", "a/%2E%2E/%2E%2E/outside.txt", "%2Fetc%2Fpasswd"]:
            answer = client.get(f"/api/v1/storage/{path}?expires=1&signature=x")
            assert answer.status_code == 404, path
            assert b"secret" not in answer.content
            assert b"root:" not in answer.content


def test_symbolic_links_out_of_the_root_are_not_served(
    web: TestClient, media: LocalStorage, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (media.root / "link").symlink_to(outside, target_is_directory=True)
    answer = web.get(media.signed_url("link/secret.txt"))
    assert answer.status_code == 404
    assert b"secret" not in answer.content


def test_signed_url_paths_are_quoted(media: LocalStorage) -> None:
    url = media.signed_url("a b/c#d.png")
    assert url.startswith(f"/api/v1/storage/{quote('a b/c#d.png', safe='/')}?expires=")
