"""Signed media URLs: what verifies, what does not, and the server secret's file."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from labelyard.adapters.storage import InvalidKey, UrlSigner, load_or_create_secret
from labelyard.config import Settings

NOW = 1_700_000_000
KEY = "datasets/1/frames/0001.jpg"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signer(clock: Clock) -> UrlSigner:
    return UrlSigner(b"s3cr3t", clock=clock)


def test_a_signed_query_verifies(signer: UrlSigner) -> None:
    query = signer.query(KEY, 60)
    assert query["expires"] == str(NOW + 60)
    assert len(query["signature"]) == 64
    assert "filename" not in query
    assert signer.verify(KEY, query["expires"], query["signature"])
    assert signer.verify(KEY, NOW + 60, query["signature"])


def test_signatures_are_deterministic_and_keyed(signer: UrlSigner, clock: Clock) -> None:
    assert signer.sign(KEY, NOW + 5) == signer.sign(KEY, NOW + 5)
    assert signer.sign(KEY, NOW + 5) != signer.sign(KEY, NOW + 6)
    other = UrlSigner(b"another secret", clock=clock)
    query = signer.query(KEY, 60)
    assert not other.verify(KEY, query["expires"], query["signature"])


def test_filename_is_signed(signer: UrlSigner) -> None:
    query = signer.query(KEY, 60, filename="frame 1.jpg")
    assert query["filename"] == "frame 1.jpg"
    assert signer.verify(KEY, query["expires"], query["signature"], "frame 1.jpg")
    assert not signer.verify(KEY, query["expires"], query["signature"], "other.jpg")
    assert not signer.verify(KEY, query["expires"], query["signature"], None)
    assert not signer.verify(KEY, query["expires"], query["signature"], "")
    plain = signer.query(KEY, 60)
    assert not signer.verify(KEY, plain["expires"], plain["signature"], "frame 1.jpg")


def test_expired(signer: UrlSigner, clock: Clock) -> None:
    query = signer.query(KEY, 60)
    clock.now = NOW + 60
    assert signer.verify(KEY, query["expires"], query["signature"])
    clock.now = NOW + 60.5
    assert not signer.verify(KEY, query["expires"], query["signature"])
    assert not signer.verify(KEY, NOW - 1, signer.sign(KEY, NOW - 1))


def test_tampering(signer: UrlSigner) -> None:
    query = signer.query(KEY, 60, filename="a.jpg")
    expires, signature = query["expires"], query["signature"]
    assert not signer.verify("datasets/1/frames/0002.jpg", expires, signature, "a.jpg")
    assert not signer.verify(KEY + "x", expires, signature, "a.jpg")
    assert not signer.verify(KEY, str(int(expires) + 3600), signature, "a.jpg")
    assert not signer.verify(KEY, str(int(expires) - 1), signature, "a.jpg")
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert not signer.verify(KEY, expires, flipped, "a.jpg")
    assert not signer.verify(KEY, expires, signature.upper(), "a.jpg")
    assert signer.verify(KEY, expires, signature, "a.jpg")


def test_fields_cannot_be_shifted_into_each_other(signer: UrlSigner) -> None:
    # The canonical string keeps the fields apart: moving text between them breaks the MAC.
    signature = signer.sign("a/b", NOW + 60, "c")
    assert not signer.verify("a", NOW + 60, signature, "b/c")
    assert not signer.verify("a/b", NOW + 60, signature, "c\n")


def test_read_signatures_are_what_they_were_before_actions(signer: UrlSigner) -> None:
    # The canonical text of a read link is unchanged, so links handed out before actions
    # existed stay valid.
    canonical = f'["labelyard-media-v1","{KEY}",{NOW + 60},"a.jpg"]'
    expected = hmac.new(b"s3cr3t", canonical.encode(), hashlib.sha256).hexdigest()
    assert signer.sign(KEY, NOW + 60, "a.jpg") == expected
    assert signer.sign(KEY, NOW + 60, "a.jpg", action="read") == expected
    assert signer.verify(KEY, str(NOW + 60), expected, "a.jpg")


def test_an_action_is_signed(signer: UrlSigner) -> None:
    upload = signer.query(KEY, 60, action="upload")
    read = signer.query(KEY, 60)
    assert upload["expires"] == read["expires"] and upload["signature"] != read["signature"]
    assert signer.verify(KEY, upload["expires"], upload["signature"], action="upload")
    # A read link never uploads, an upload link never reads.
    assert not signer.verify(KEY, read["expires"], read["signature"], action="upload")
    assert not signer.verify(KEY, upload["expires"], upload["signature"])
    assert not signer.verify(KEY, upload["expires"], upload["signature"], action="Upload")
    # Nor can the action be moved into the filename.
    assert not signer.verify(KEY, upload["expires"], upload["signature"], "upload")
    assert not signer.verify(KEY, upload["expires"], upload["signature"], action="")
    with pytest.raises(ValueError):
        signer.sign(KEY, NOW + 60, action="")


@pytest.mark.parametrize(
    "expires",
    ["", "abc", "-1", "1e12", " 1700000060", "1700000060 ", "+1700000060", "١٧٠٠٠٠٠٠٦٠", "9" * 40],
)
def test_malformed_expiry(signer: UrlSigner, expires: str) -> None:
    signature = signer.sign(KEY, NOW + 60)
    assert not signer.verify(KEY, expires, signature)


@pytest.mark.parametrize(
    "signature",
    ["", "abc", "z" * 64, "0" * 63, "0" * 65, "é" * 64, "\x00" * 64],
)
def test_malformed_signature(signer: UrlSigner, signature: str) -> None:
    assert not signer.verify(KEY, str(NOW + 60), signature)


@pytest.mark.parametrize("key", ["", "../etc/passwd", "/abs", "a//b", "a\\b", "a\x00"])
def test_bad_keys_are_never_signed_nor_verified(signer: UrlSigner, key: str) -> None:
    with pytest.raises(InvalidKey):
        signer.sign(key, NOW + 60)
    with pytest.raises(InvalidKey):
        signer.query(key, 60)
    assert not signer.verify(key, str(NOW + 60), "0" * 64)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        UrlSigner(b"")


def test_secret_from_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key="from the environment")
    assert load_or_create_secret(settings) == b"from the environment"
    assert not (tmp_path / "data" / "secret_key").exists()


def test_secret_file_is_created_once_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", secret_key=None)
    first = load_or_create_secret(settings)
    path = tmp_path / "data" / "secret_key"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(first.decode())) == 32
    assert load_or_create_secret(settings) == first
    assert load_or_create_secret(Settings(data_dir=tmp_path / "data", secret_key=None)) == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]
    assert (
        load_or_create_secret(Settings(data_dir=tmp_path / "elsewhere", secret_key=None)) != first
    )

    # The file's text works as LABELYARD_SECRET_KEY: URLs survive moving the secret there.
    moved = Settings(data_dir=tmp_path / "none", secret_key=path.read_text().strip())
    assert load_or_create_secret(moved) == first


def test_an_emptied_secret_file_is_an_error_not_a_new_secret(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key=None)
    load_or_create_secret(settings)
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(ValueError):
        load_or_create_secret(settings)
