"""Unpacking uploaded zip and tar archives without trusting anything they say."""

from __future__ import annotations

import contextlib
import errno
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from labelyard.adapters.media.errors import MediaError

GiB = 1024**3
MiB = 1024**2
_BLOCK = MiB
_JUNK_FILES = frozenset({"thumbs.db", "desktop.ini"})
_DRIVE = re.compile(r"^[A-Za-z]:")
_BAD_NAME_ERRORS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL})
# What reading a damaged archive can raise (bz2 and zipfile use OSError and RuntimeError).
_READ_ERRORS = (
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    zlib.error,
    lzma.LZMAError,
    tarfile.TarError,
    zipfile.BadZipFile,
)


def extract_archive(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    max_members: int = 100_000,
    max_total_bytes: int = 20 * GiB,
    max_ratio: float = 200,
    ratio_floor: int = 64 * MiB,
) -> list[Path]:
    """Extract the regular files of a zip or tar (plain, gz, bz2, xz) archive into ``dest``
    and return their paths in archive order.

    Directories are recreated as needed; hidden files and system junk (``__MACOSX/``,
    ``.DS_Store``, ``Thumbs.db``) are skipped. The archive is refused (MediaError naming it
    and the member) for absolute or ``..`` paths, links, device files, fifos, encrypted
    members, members clashing with each other or with files in ``dest``, more than
    ``max_members`` members, more than ``max_total_bytes`` of content, and expanding more than
    ``max_ratio`` times its compressed size once over ``ratio_floor`` bytes (small archives may
    compress well and harm no one). The size limits hold both for the sizes the archive
    declares and for the bytes actually written. When it refuses, nothing is left in ``dest``.
    """
    archive = Path(archive)
    # Tar first: is_zipfile also says yes to a tar whose last member is a zip.
    if _is_tar(archive):
        extract: Callable[[Path, _Extraction], None] = _extract_tar
    elif zipfile.is_zipfile(archive):
        extract = _extract_zip
    else:
        raise MediaError(archive, "not a zip or tar archive")
    Path(dest).mkdir(parents=True, exist_ok=True)
    extraction = _Extraction(
        archive, Path(dest), max_members, max_total_bytes, max_ratio, ratio_floor
    )
    try:
        extract(archive, extraction)
    except BaseException:
        extraction.undo()
        raise
    return extraction.files


class _Extraction:
    """The files written so far and the limits they are held to."""

    def __init__(
        self,
        archive: Path,
        dest: Path,
        max_members: int,
        max_total_bytes: int,
        max_ratio: float,
        floor: int,
    ) -> None:
        self.archive = archive
        self.root = dest
        self.max_members = max_members
        self.max_total_bytes = max_total_bytes
        self.max_ratio = max_ratio
        self.floor = floor
        size = os.path.getsize(archive)
        self.compressed: Callable[[], int] = lambda: size
        self.files: list[Path] = []
        self.members = 0
        self.declared = 0
        self.written = 0
        self._made_dirs: list[Path] = []

    def refuse(self, member: str, reason: str) -> MediaError:
        return MediaError(self.archive, f"member {member!r} {reason}")

    def count(self, member: str, size: int) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise self.refuse(member, f"is one too many; the limit is {self.max_members} members")
        self.declared += size
        if self.declared > self.max_total_bytes:
            raise self.refuse(member, self._too_big(self.declared))

    def check_ratio(self, member: str, total: int) -> None:
        if total > self.floor and total > self.max_ratio * max(self.compressed(), 1):
            raise self.refuse(
                member,
                f"expands the archive over {self.max_ratio:g} times its size "
                "(a decompression bomb)",
            )

    def write(self, member: str, parts: tuple[str, ...], source: IO[bytes]) -> None:
        target = self._make_parents(member, parts[:-1]) / parts[-1]
        try:
            output = open(target, "xb")  # noqa: SIM115 - closed below, recorded first
        except FileExistsError:
            raise self.refuse(member, "clashes with another file of the same name") from None
        except (IsADirectoryError, NotADirectoryError):
            raise self.refuse(member, "clashes with a folder of the same name") from None
        except OSError as error:
            raise self._unstorable(member, error) from None
        self.files.append(target)
        with output:
            while block := self._read(member, source):
                self.written += len(block)
                if self.written > self.max_total_bytes:
                    raise self.refuse(member, self._too_big(self.written))
                self.check_ratio(member, self.written)
                output.write(block)

    def undo(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)
        for directory in reversed(self._made_dirs):
            with contextlib.suppress(OSError):  # not empty: not only ours
                directory.rmdir()
        self.files, self._made_dirs = [], []

    def _make_parents(self, member: str, parts: tuple[str, ...]) -> Path:
        directory = self.root
        for part in parts:
            directory = directory / part
            try:
                mode = directory.lstat().st_mode
            except FileNotFoundError:
                try:
                    directory.mkdir()
                except OSError as error:
                    raise self._unstorable(member, error) from None
                self._made_dirs.append(directory)
                continue
            except OSError as error:
                raise self._unstorable(member, error) from None
            if stat.S_ISLNK(mode):
                raise self.refuse(member, "would be written through a symbolic link")
            if not stat.S_ISDIR(mode):
                raise self.refuse(member, "clashes with a file of the same name")
        return directory

    def _read(self, member: str, source: IO[bytes]) -> bytes:
        try:
            return source.read(_BLOCK)
        except _READ_ERRORS as error:
            raise self.refuse(member, f"cannot be read ({error})") from None

    def _unstorable(self, member: str, error: OSError) -> Exception:
        if error.errno in _BAD_NAME_ERRORS:
            return self.refuse(member, "has a name the file system cannot store")
        return error  # the disk's trouble (full, read-only), not the archive's

    def _too_big(self, total: int) -> str:
        return f"takes the content to {total} bytes; the limit is {self.max_total_bytes}"


def _extract_zip(archive: Path, extraction: _Extraction) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            wanted: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
            # Everything the central directory declares is checked before writing anything.
            for info in bundle.infolist():
                extraction.count(info.filename, info.file_size)
                extraction.check_ratio(info.filename, extraction.declared)
                parts = _safe_parts(extraction, info.filename)
                file_type = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0
                if info.is_dir() or file_type == stat.S_IFDIR or _is_junk(parts):
                    continue
                if file_type == stat.S_IFLNK:
                    raise extraction.refuse(info.filename, "is a symbolic link")
                if file_type not in (0, stat.S_IFREG):
                    raise extraction.refuse(info.filename, "is a device file or fifo")
                if info.flag_bits & 0x1:
                    raise extraction.refuse(info.filename, "is encrypted")
                wanted.append((info, parts))
            for info, parts in wanted:
                with bundle.open(info) as source:
                    extraction.write(info.filename, parts, source)
    except MediaError:
        raise
    except _READ_ERRORS as error:
        if isinstance(error, OSError):
            raise  # zipfile reports damage with its own errors: this one is the disk's
        raise MediaError(archive, f"the zip archive is corrupted ({error})") from None


def _extract_tar(archive: Path, extraction: _Extraction) -> None:
    with open(archive, "rb") as raw:
        # The ratio is measured against the compressed bytes consumed so far, as a tar
        # declares each member's size only when it is reached.
        extraction.compressed = raw.tell
        with _open_tar(archive, raw) as bundle:
            for member in _tar_members(archive, bundle):
                extraction.count(member.name, member.size)
                parts = _safe_parts(extraction, member.name)
                if member.isdir() or _is_junk(parts):
                    continue
                if member.issym():
                    raise extraction.refuse(member.name, "is a symbolic link")
                if member.islnk():
                    raise extraction.refuse(member.name, "is a hard link")
                if member.ischr() or member.isblk():
                    raise extraction.refuse(member.name, "is a device file")
                if member.isfifo():
                    raise extraction.refuse(member.name, "is a fifo")
                source = bundle.extractfile(member) if member.isfile() else None
                if source is None:
                    raise extraction.refuse(member.name, "is not a regular file")
                with source:
                    extraction.write(member.name, parts, source)


def _open_tar(archive: Path, raw: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=raw, mode="r:*")
    except _READ_ERRORS as error:
        raise MediaError(archive, f"the tar archive is corrupted ({error})") from None


def _tar_members(archive: Path, bundle: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = bundle.next()
        except _READ_ERRORS as error:
            raise MediaError(archive, f"the tar archive is corrupted ({error})") from None
        if member is None:
            return
        yield member


def _safe_parts(extraction: _Extraction, name: str) -> tuple[str, ...]:
    # Windows archivers write backslashes; treat them as separators so they cannot hide "..".
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or _DRIVE.match(normalized):
        raise extraction.refuse(name, "has an absolute path")
    parts = tuple(part for part in normalized.split("/") if part not in ("", "."))
    if ".." in parts:
        raise extraction.refuse(name, "has '..' in its path (it could escape the destination)")
    if any("\x00" in part for part in parts):
        raise extraction.refuse(name, "has a NUL character in its path")
    return parts


def _is_junk(parts: tuple[str, ...]) -> bool:
    if not parts:
        return True
    return (
        any(part == "__MACOSX" or part.startswith(".") for part in parts)
        or parts[-1].lower() in _JUNK_FILES
    )


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except _READ_ERRORS:
        return False
