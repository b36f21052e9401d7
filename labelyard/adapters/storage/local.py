"""Media in a local directory: the embedded default."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from labelyard.adapters.storage.base import (
    InvalidKey,
    MissingObject,
    StorageError,
    check_key,
    check_prefix,
)
from labelyard.adapters.storage.signing import UrlSigner

URL_PATH = "/api/v1/storage"  # where labelyard.api.storage_urls is mounted
TEMP_PREFIX = ".~labelyard-"  # half-written files; never listed, never a key
CHUNK_BYTES = 1024 * 1024
FILE_MODE = 0o644


class LocalStorage:
    """Objects as files under ``root``; key ``a/b.jpg`` is the file ``root/a/b.jpg``.

    Writes go to a temporary file in the target's directory and are renamed into place, so
    a reader never sees a half-written object. Every path is resolved and must stay inside
    ``root``, symbolic links included. A file and a directory cannot share a name, so unlike
    S3 this backend cannot hold both ``a`` and ``a/b``: the second write raises StorageError.
    """

    def __init__(self, root: Path, signer: UrlSigner, base_url: str = "") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.signer = signer
        self.base_url = base_url.rstrip("/")

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key``; ``content_type`` is not kept (it is guessed on read)."""
        self._write(self._path(key), lambda target: target.write(data))

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Copy the file at ``path`` under ``key`` in chunks."""
        target = self._path(key)
        try:
            source = open(path, "rb")  # noqa: SIM115 - closed below, after the copy
        except OSError as error:
            raise StorageError(f"Cannot read {path}: {error}") from error
        with source:
            self._write(target, lambda out: shutil.copyfileobj(source, out, CHUNK_BYTES))

    def open(self, key: str) -> BinaryIO:
        """The object's file, open for reading."""
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            raise MissingObject(key) from error
        except OSError as error:
            raise StorageError(f"Cannot read {key!r}: {error}") from error

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        with self.open(key) as stream:
            return stream.read()

    def download(self, key: str, path: Path) -> None:
        """Copy the object into ``path``, replacing that file at once."""
        with self.open(key) as source:
            self._write(Path(path), lambda out: shutil.copyfileobj(source, out, CHUNK_BYTES))

    def exists(self, key: str) -> bool:
        """Whether a file holds the object."""
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        """The file's length in bytes."""
        path = self._path(key)
        if not path.is_file():
            raise MissingObject(key)
        try:
            return path.stat().st_size
        except FileNotFoundError as error:
            raise MissingObject(key) from error

    def delete(self, key: str) -> None:
        """Remove the file, if there is one."""
        path = self._path(key)
        if path.is_dir():
            return
        try:
            path.unlink(missing_ok=True)
        except NotADirectoryError:
            pass
        except OSError as error:
            raise StorageError(f"Cannot delete {key!r}: {error}") from error

    def delete_prefix(self, prefix: str) -> int:
        """Remove the files whose keys start with ``prefix`` and the directories that
        leaves empty; return how many files were removed."""
        if not check_prefix(prefix):
            raise InvalidKey("delete_prefix needs a non-empty prefix.")
        removed = 0
        parents: set[Path] = set()
        for key in list(self.list(prefix)):
            path = self._path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # removed by someone else meanwhile
            except OSError as error:
                raise StorageError(f"Cannot delete {key!r}: {error}") from error
            removed += 1
            parents.add(path.parent)
        for directory in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            self._prune(directory)
        return removed

    def list(self, prefix: str = "") -> Iterator[str]:
        """The keys starting with ``prefix``, sorted."""
        check_prefix(prefix)
        directory, _, partial = prefix.rpartition("/")
        base = self._path(directory) if directory else self.root
        yield from sorted(key for key in self._walk(base, partial) if key.startswith(prefix))

    def signed_url(self, key: str, *, expires_in: int = 3600, filename: str | None = None) -> str:
        """A URL to labelyard's own ``/api/v1/storage`` route, signed with the server secret."""
        check_key(key)
        query = urlencode(self.signer.query(key, expires_in, filename), quote_via=quote)
        return f"{self.base_url}{URL_PATH}/{quote(key, safe='/')}?{query}"

    def local_path(self, key: str) -> Path:
        """The file that holds (or would hold) the object."""
        return self._path(key)

    def _path(self, key: str) -> Path:
        check_key(key)
        if any(segment.startswith(TEMP_PREFIX) for segment in key.split("/")):
            raise InvalidKey(f"Names starting with {TEMP_PREFIX!r} are reserved: {key!r}.")
        path = self.root.joinpath(*key.split("/")).resolve()
        if path == self.root or not path.is_relative_to(self.root):
            raise InvalidKey(f"The key {key!r} leads outside the storage directory.")
        return path

    def _walk(self, directory: Path, partial: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if not entry.name.startswith(partial) or entry.name.startswith(TEMP_PREFIX):
                continue
            # Symbolic links to directories are not followed: they may lead outside root.
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), "")
            elif entry.is_file():
                key = Path(entry.path).relative_to(self.root).as_posix()
                with suppress(InvalidKey):  # a stray file whose name no key can have
                    yield check_key(key)

    def _prune(self, directory: Path) -> None:
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass  # pruned by a concurrent delete_prefix
            except OSError:
                return  # not empty, so neither are its ancestors
            directory = directory.parent

    def _write(self, path: Path, write: Callable[[BinaryIO], object]) -> None:
        temporary: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
            with os.fdopen(descriptor, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
                os.fchmod(out.fileno(), FILE_MODE)
            os.replace(temporary, path)
            temporary = None
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
            raise StorageError(
                f"Cannot write {path}: a file and a directory would share a name."
            ) from error
        except OSError as error:
            raise StorageError(f"Cannot write {path}: {error}") from error
        finally:
            if temporary is not None:
                with suppress(OSError):
                    os.unlink(temporary)
