"""The Storage contract, run against the local directory and against S3 (moto_server), plus
what only one backend promises (files on disk stay inside the root; S3 presigned URLs)."""

from __future__ import annotations

import hashlib
import os
import random
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from labelyard.adapters.storage import (
    InvalidKey,
    LocalStorage,
    MissingObject,
    Storage,
    StorageError,
    UrlSigner,
)
from labelyard.adapters.storage.local import TEMP_PREFIX
from tests.adapters.storage.conftest import SECRET, make_s3

MIB = 1024 * 1024

BAD_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("/frames/1.jpg", id="leading-slash"),
    pytest.param("frames//1.jpg", id="empty-segment"),
    pytest.param("frames/", id="trailing-slash"),
    pytest.param("./frames/1.jpg", id="dot-segment"),
    pytest.param("frames/./1.jpg", id="inner-dot"),
    pytest.param("../outside.txt", id="dotdot"),
    pytest.param("frames/../../outside.txt", id="inner-dotdot"),
    pytest.param("frames/..", id="trailing-dotdot"),
    pytest.param("frames\\1.jpg", id="backslash"),
    pytest.param("..\\outside.txt", id="backslash-dotdot"),
    pytest.param("frames/1\x00.jpg", id="nul"),
    pytest.param("frames/1\n.jpg", id="newline"),
    pytest.param("frames/\x1b[31m.jpg", id="escape"),
    pytest.param("frames/1\x7f.jpg", id="delete-char"),
    pytest.param("frames/1\x85.jpg", id="c1-control"),
    pytest.param("a" * 1025, id="1025-bytes"),
    pytest.param("é" * 513, id="1026-utf8-bytes"),
]


def test_bytes_round_trip(storage: Storage) -> None:
    storage.put_bytes("frames/0001.jpg", b"\xff\xd8 a jpeg", "image/jpeg")
    assert storage.read("frames/0001.jpg") == b"\xff\xd8 a jpeg"
    assert storage.exists("frames/0001.jpg")
    assert storage.size("frames/0001.jpg") == 9


def test_empty_object(storage: Storage) -> None:
    storage.put_bytes("empty", b"")
    assert storage.exists("empty")
    assert storage.size("empty") == 0
    assert storage.read("empty") == b""


def test_file_round_trip(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(300_000))
    storage.put_file("videos/clip.mp4", source, "video/mp4")
    assert storage.read("videos/clip.mp4") == source.read_bytes()

    target = tmp_path / "out" / "nested" / "clip.mp4"
    storage.download("videos/clip.mp4", target)
    assert target.read_bytes() == source.read_bytes()

    target.write_bytes(b"older and longer content than the new one" * 10_000)
    storage.put_bytes("videos/clip.mp4", b"short")
    storage.download("videos/clip.mp4", target)
    assert target.read_bytes() == b"short"


def test_open_streams_in_chunks(storage: Storage) -> None:
    data = os.urandom(3 * MIB + 17)
    storage.put_bytes("big.bin", data)
    chunks = []
    with storage.open("big.bin") as stream:
        while chunk := stream.read(64 * 1024):
            assert len(chunk) <= 64 * 1024
            chunks.append(chunk)
    assert len(chunks) > 1
    assert b"".join(chunks) == data


def test_overwrite_replaces_the_whole_object(storage: Storage, tmp_path: Path) -> None:
    storage.put_bytes("labels.json", b"x" * 1000)
    storage.put_bytes("labels.json", b"[]")
    assert storage.read("labels.json") == b"[]"
    assert storage.size("labels.json") == 2

    source = tmp_path / "new.json"
    source.write_bytes(b'{"a": 1}')
    storage.put_file("labels.json", source)
    assert storage.read("labels.json") == b'{"a": 1}'
    assert list(storage.list()) == ["labels.json"]


def test_exists_and_size(storage: Storage) -> None:
    assert not storage.exists("a/b.txt")
    storage.put_bytes("a/b.txt", b"12345")
    assert storage.exists("a/b.txt")
    assert storage.size("a/b.txt") == 5
    assert not storage.exists("a/b")
    assert not storage.exists("a/b.txt.bak")


def test_unicode_keys_and_the_longest_key(storage: Storage) -> None:
    odd = "datasets/ünï cødé/😀 frame #1?&%20=+.png"
    longest = "/".join(["a" * 200] * 5) + "/" + "b" * 19  # exactly 1024 bytes
    assert len(longest.encode()) == 1024
    storage.put_bytes(odd, b"odd")
    storage.put_bytes(longest, b"long")
    assert storage.read(odd) == b"odd"
    assert storage.read(longest) == b"long"
    assert list(storage.list()) == sorted([odd, longest])


def test_delete(storage: Storage) -> None:
    storage.put_bytes("a/1", b"1")
    storage.put_bytes("a/2", b"2")
    storage.delete("a/1")
    assert not storage.exists("a/1")
    assert storage.exists("a/2")
    with pytest.raises(MissingObject):
        storage.read("a/1")
    storage.delete("a/1")
    storage.delete("never/stored")
    storage.delete("a")  # a "directory" of keys is no object
    assert list(storage.list()) == ["a/2"]


def test_delete_prefix(storage: Storage) -> None:
    for key in ["a/1", "a/2", "a/b/3", "ab/4", "b/5", "a.txt"]:
        storage.put_bytes(key, key.encode())
    assert storage.delete_prefix("a/") == 3
    assert list(storage.list()) == ["a.txt", "ab/4", "b/5"]
    assert storage.delete_prefix("a/") == 0
    assert storage.delete_prefix("nothing/here/") == 0
    assert storage.delete_prefix("a") == 2  # a plain string prefix, as S3 has it
    assert list(storage.list()) == ["b/5"]


def test_delete_prefix_refuses_to_wipe_everything(storage: Storage) -> None:
    storage.put_bytes("kept", b"1")
    with pytest.raises(InvalidKey):
        storage.delete_prefix("")
    assert storage.exists("kept")


def test_delete_prefix_beyond_one_batch(storage: Storage) -> None:
    keys = [f"frames/{index:05d}.jpg" for index in range(1003)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: storage.put_bytes(key, b"."), keys))
    storage.put_bytes("other/kept.jpg", b".")
    assert storage.delete_prefix("frames/") == 1003
    assert list(storage.list()) == ["other/kept.jpg"]


def test_list_is_sorted(storage: Storage) -> None:
    keys = ["a/b", "a.txt", "a-b", "A", "a/é", "a/z", "ä", "a/bb/c/d", "z", "a b", "0"]
    for key in random.sample(keys, len(keys)):
        storage.put_bytes(key, b"")
    # "a.txt" sorts before "a/b": keys sort as whole strings, not directory by directory.
    assert list(storage.list()) == sorted(keys)


def test_list_prefixes(storage: Storage) -> None:
    for key in ["a/b", "a/c/d", "a.txt", "ab", "b/a"]:
        storage.put_bytes(key, b"")
    assert list(storage.list("a/")) == ["a/b", "a/c/d"]
    assert list(storage.list("a/c/")) == ["a/c/d"]
    assert list(storage.list("a")) == ["a.txt", "a/b", "a/c/d", "ab"]
    assert list(storage.list("a/c")) == ["a/c/d"]
    assert list(storage.list("b/a")) == ["b/a"]
    assert list(storage.list("missing/")) == []
    assert list(storage.list("a/b/")) == []


@pytest.mark.parametrize("prefix", ["/a", "a//", "../a/", "a/../b", "a\\b", "a\x00", "x" * 1025])
def test_bad_prefixes_are_refused(storage: Storage, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        list(storage.list(prefix))
    with pytest.raises(InvalidKey):
        storage.delete_prefix(prefix)


def test_missing_object(storage: Storage, tmp_path: Path) -> None:
    assert not storage.exists("nope.jpg")
    with pytest.raises(MissingObject):
        storage.read("nope.jpg")
    with pytest.raises(MissingObject):
        storage.open("nope.jpg")
    with pytest.raises(MissingObject):
        storage.size("nope.jpg")
    with pytest.raises(MissingObject) as caught:
        storage.download("nope.jpg", tmp_path / "nope.jpg")
    assert caught.value.key == "nope.jpg"
    assert not (tmp_path / "nope.jpg").exists()
    assert isinstance(caught.value, StorageError)


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused_everywhere(storage: Storage, key: str, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"data")
    calls = {
        "put_bytes": lambda: storage.put_bytes(key, b"data"),
        "put_file": lambda: storage.put_file(key, source),
        "open": lambda: storage.open(key),
        "read": lambda: storage.read(key),
        "download": lambda: storage.download(key, tmp_path / "out"),
        "exists": lambda: storage.exists(key),
        "size": lambda: storage.size(key),
        "delete": lambda: storage.delete(key),
        "signed_url": lambda: storage.signed_url(key),
        "local_path": lambda: storage.local_path(key),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidKey):
            call()
            pytest.fail(f"{name} accepted {key!r}")
    assert issubclass(InvalidKey, ValueError)
    assert list(storage.list()) == []


def test_a_20_mb_file_streams_through(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "video.bin"
    digest = hashlib.sha256()
    with open(source, "wb") as out:
        for _ in range(20):
            block = os.urandom(MIB)
            digest.update(block)
            out.write(block)

    tracemalloc.start()
    try:
        storage.put_file("videos/big.bin", source, "application/octet-stream")
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        read_back = hashlib.sha256()
        with storage.open("videos/big.bin") as stream:
            while block := stream.read(MIB):
                read_back.update(block)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert read_back.hexdigest() == digest.hexdigest()
    assert storage.size("videos/big.bin") == 20 * MIB
    # Reading the file whole would hold 20 MB at once; streaming holds a few chunks.
    assert upload_peak < 12 * MIB, upload_peak
    assert read_peak < 6 * MIB, read_peak


# --- the local directory ---------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media", UrlSigner(SECRET), base_url="https://ly.example")


def test_local_files_live_under_the_root(local: LocalStorage) -> None:
    local.put_bytes("a/b/c.txt", b"abc")
    path = local.local_path("a/b/c.txt")
    assert path == local.root / "a" / "b" / "c.txt"
    assert path.read_bytes() == b"abc"
    assert local.local_path("not/yet.txt") == local.root / "not" / "yet.txt"


def test_local_writes_leave_no_temporary_files(local: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"file")
    for index in range(5):
        local.put_bytes(f"d/{index}", b"bytes")
        local.put_file(f"d/f{index}", source)
    local.put_bytes("d/0", b"old")
    with pytest.raises(TypeError):
        local.put_bytes("d/0", "not bytes")  # type: ignore[arg-type]
    assert local.read("d/0") == b"old"
    on_disk = sorted(p.name for p in (local.root / "d").iterdir())
    assert on_disk == sorted([f"{i}" for i in range(5)] + [f"f{i}" for i in range(5)])


def test_local_reserves_temporary_names(local: LocalStorage) -> None:
    with pytest.raises(InvalidKey):
        local.put_bytes(f"a/{TEMP_PREFIX}x", b"")
    (local.root / "a").mkdir()
    (local.root / "a" / f"{TEMP_PREFIX}half-written").write_bytes(b"partial")
    assert list(local.list()) == []


def test_local_symbolic_links_cannot_lead_outside(local: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (local.root / "link").symlink_to(outside, target_is_directory=True)
    (local.root / "file-link").symlink_to(outside / "secret.txt")

    for key in ["link/secret.txt", "file-link"]:
        with pytest.raises(InvalidKey):
            local.read(key)
        with pytest.raises(InvalidKey):
            local.local_path(key)
    with pytest.raises(InvalidKey):
        local.put_bytes("link/new.txt", b"x")
    with pytest.raises(InvalidKey):
        local.delete("link/secret.txt")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert "link/secret.txt" not in list(local.list())


def test_local_file_and_directory_cannot_share_a_name(local: LocalStorage) -> None:
    local.put_bytes("a", b"file")
    with pytest.raises(StorageError):
        local.put_bytes("a/b", b"x")
    local.put_bytes("c/d", b"x")
    with pytest.raises(StorageError):
        local.put_bytes("c", b"x")
    assert not local.exists("c")
    with pytest.raises(MissingObject):
        local.read("c")
    assert list(local.list()) == ["a", "c/d"]


def test_local_delete_prefix_prunes_empty_directories(local: LocalStorage) -> None:
    for key in ["a/b/c/1", "a/b/2", "a/x/3"]:
        local.put_bytes(key, b"")
    assert local.delete_prefix("a/b/") == 2
    assert not (local.root / "a" / "b").exists()
    assert (local.root / "a" / "x").is_dir()
    assert local.delete_prefix("a") == 1
    assert list(local.root.iterdir()) == []
    assert local.root.is_dir()


def test_local_signed_url(local: LocalStorage) -> None:
    url = httpx.URL(local.signed_url("a b/ü?.png", expires_in=60, filename="x y.png"))
    assert str(url).startswith("https://ly.example/api/v1/storage/a%20b/%C3%BC%3F.png?")
    params = url.params
    assert params["filename"] == "x y.png"
    assert local.signer.verify("a b/ü?.png", params["expires"], params["signature"], "x y.png")
    assert not local.signer.verify("a b/ü?.png", params["expires"], params["signature"])


# --- S3 --------------------------------------------------------------------------------


def test_s3_signed_url_fetches_the_object(s3_endpoint: str) -> None:
    s3 = make_s3(s3_endpoint)
    s3.put_bytes("frames/1.png", b"\x89PNG...", "image/png")
    answer = httpx.get(s3.signed_url("frames/1.png", expires_in=60))
    assert answer.status_code == 200
    assert answer.content == b"\x89PNG..."
    assert answer.headers["content-type"] == "image/png"

    answer = httpx.get(s3.signed_url("frames/1.png", filename="frame 1.png"))
    assert answer.content == b"\x89PNG..."
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"frame 1.png\"; filename*=UTF-8''frame%201.png"
    )
    assert s3.local_path("frames/1.png") is None


def test_s3_creates_its_bucket_once(s3_endpoint: str) -> None:
    first = make_s3(s3_endpoint)
    first.put_bytes("k", b"v")
    again = make_s3(s3_endpoint)
    again.bucket = first.bucket
    assert again.read("k") == b"v"
    assert again.client.list_objects_v2(Bucket=first.bucket)["KeyCount"] == 1
