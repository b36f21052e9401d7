"""The media storage protocol every backend implements, its errors and its key rules.

A key is a ``/``-separated relative name such as ``datasets/7/batches/2/0001.jpg``. Both
backends accept exactly the same keys (see :func:`check_key`), so a key that works with the
local directory also works with S3 and the other way round.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote

MAX_KEY_BYTES = 1024  # S3's own limit on a key's UTF-8 length


class StorageError(Exception):
    """The storage could not do what was asked."""


class MissingObject(StorageError):
    """No object is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"No object is stored under {key!r}.")
        self.key = key


class InvalidKey(StorageError, ValueError):
    """The key is not one that every backend can store safely."""


def check_key(key: str) -> str:
    """Return ``key`` when it is a valid storage key, else raise :class:`InvalidKey`.

    Refused: empty keys, a leading ``/``, empty, ``.`` or ``..`` segments, backslashes, NUL
    and other control characters, and keys longer than 1024 bytes in UTF-8.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey("A storage key must be a non-empty string.")
    _check_characters(key)
    if key.startswith("/"):
        raise InvalidKey(f"A storage key must be relative: {key!r}.")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey(f"A storage key may not have empty, '.' or '..' parts: {key!r}.")
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` when every key it could select is valid; ``""`` selects all keys.

    Prefixes are plain string prefixes, as in S3: ``"a/b"`` selects ``a/b/c`` and ``a/bc``.
    The part before the last ``/`` must be a valid key; the rest is any start of a segment.
    """
    if not isinstance(prefix, str):
        raise InvalidKey("A storage prefix must be a string.")
    if not prefix:
        return prefix
    _check_characters(prefix)
    directory, slash, _ = prefix.rpartition("/")
    if slash and not directory:
        raise InvalidKey(f"A storage prefix must be relative: {prefix!r}.")
    if directory:
        check_key(directory)
    return prefix


def _check_characters(text: str) -> None:
    if "\\" in text:
        raise InvalidKey(f"A storage key may not contain a backslash: {text!r}.")
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise InvalidKey(f"A storage key may not contain control characters: {text!r}.")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as error:  # lone surrogates, e.g. from undecodable file names
        raise InvalidKey(f"A storage key must be valid Unicode: {text!r}.") from error
    if size > MAX_KEY_BYTES:
        raise InvalidKey(f"A storage key may be at most {MAX_KEY_BYTES} bytes long.")


def content_disposition(filename: str) -> str:
    """A ``Content-Disposition: attachment`` value that saves the download as ``filename``.

    The quoted ``filename`` is an ASCII fallback with anything that could break the header
    replaced; ``filename*`` (RFC 6266 / RFC 5987) carries the exact name.
    """
    fallback = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
        for char in filename
    )
    exact = quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


class Storage(Protocol):
    """Where media objects live: a local directory, or an S3-compatible bucket.

    Every method checks its key with :func:`check_key` (prefixes with :func:`check_prefix`)
    and raises :class:`InvalidKey` for a bad one; reads of an absent key raise
    :class:`MissingObject`; other failures raise :class:`StorageError`. Writes replace the
    whole object at once: a reader sees the old bytes or the new ones, never a mix.
    """

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key``, replacing any object already there."""
        ...

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Store the file at ``path`` under ``key``, streaming it (never read whole)."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A binary stream of the object's bytes; the caller closes it."""
        ...

    def read(self, key: str) -> bytes:
        """The object's bytes, all in memory: for small objects only."""
        ...

    def download(self, key: str, path: Path) -> None:
        """Copy the object into the file at ``path`` (replaced at once, streamed)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        ...

    def size(self, key: str) -> int:
        """The object's length in bytes."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; removing an absent key is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix``; return how many.

        An empty prefix is refused with :class:`InvalidKey`: wiping the whole store takes
        more than a missing argument.
        """
        ...

    def signed_url(self, key: str, *, expires_in: int = 3600, filename: str | None = None) -> str:
        """A URL that fetches the object without other credentials for ``expires_in`` seconds.

        With ``filename``, the response asks the browser to save the object under that name.
        The object need not exist yet; fetching an absent one answers 404.
        """
        ...

    def local_path(self, key: str) -> Path | None:
        """The file that holds (or would hold) the object, or None when it is not on disk."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """The keys that start with ``prefix``, sorted by code point (S3's UTF-8 order)."""
        ...
