"""Unpacking uploads: what is extracted, what is skipped, and every archive that is refused."""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from labelyard.adapters.media.archives import extract_archive
from labelyard.adapters.media.errors import MediaError

MiB = 1024**2
CONTENT = {
    "a.jpg": b"first",
    "dir/b.jpg": b"second",
    "dir/sub/c.png": b"third",
}
JUNK = {
    "__MACOSX/dir/._b.jpg": b"resource fork",
    "dir/.DS_Store": b"finder",
    "Thumbs.db": b"windows",
    ".git/config": b"hidden",
}
ESCAPE = "has '..' in its path (it could escape the destination)"
TAR_MODES = ["w", "w:gz", "w:bz2", "w:xz"]


def _zip(path: Path, members: dict[str, bytes], level: int = 6) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as bundle:
        for name, data in members.items():
            bundle.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as bundle:  # type: ignore[call-overload]
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                bundle.addfile(member)
                continue
            name, data = member
            info = tarfile.TarInfo(name)
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return path


def _special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _left_in(dest: Path) -> list[str]:
    return sorted(str(path.relative_to(dest)) for path in dest.rglob("*"))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "out"


def test_zip_extracts_regular_files_in_order_and_skips_junk(tmp_path: Path, dest: Path):
    members = {"dir/": b"", **CONTENT, **JUNK}
    files = extract_archive(_zip(tmp_path / "upload.zip", members), dest)
    assert files == [dest / name for name in CONTENT]
    assert [path.read_bytes() for path in files] == list(CONTENT.values())
    assert _left_in(dest) == ["a.jpg", "dir", "dir/b.jpg", "dir/sub", "dir/sub/c.png"]


@pytest.mark.parametrize("mode", TAR_MODES)
def test_tar_extracts_regular_files_in_order_and_skips_junk(tmp_path: Path, dest: Path, mode: str):
    folder = _special("dir", tarfile.DIRTYPE)
    members: list[tarfile.TarInfo | tuple[str, bytes]] = [folder, *CONTENT.items(), *JUNK.items()]
    files = extract_archive(_tar(tmp_path / "upload.tar", members, mode), dest)
    assert files == [dest / name for name in CONTENT]
    assert [path.read_bytes() for path in files] == list(CONTENT.values())
    assert _left_in(dest) == ["a.jpg", "dir", "dir/b.jpg", "dir/sub", "dir/sub/c.png"]


def test_a_tar_ending_with_a_zip_is_read_as_a_tar(tmp_path: Path, dest: Path):
    inner = _zip(tmp_path / "inner.zip", {"inside.jpg": b"inside"}).read_bytes()
    archive = _tar(tmp_path / "outer.tar", [("a.jpg", b"first"), ("inner.zip", inner)])
    assert zipfile.is_zipfile(archive)  # zipfile finds the inner zip's directory
    assert extract_archive(archive, dest) == [dest / "a.jpg", dest / "inner.zip"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.jpg", ESCAPE),
        ("dir/../../evil.jpg", ESCAPE),
        ("..\\evil.jpg", ESCAPE),
        ("/tmp/evil.jpg", "has an absolute path"),
        ("C:/evil.jpg", "has an absolute path"),
    ],
)
def test_escaping_paths_are_refused(tmp_path: Path, dest: Path, name: str, reason: str):
    members = {"good.jpg": b"fine", name: b"evil"}
    for archive in (
        _zip(tmp_path / "upload.zip", members),
        _tar(tmp_path / "upload.tar.gz", list(members.items()), "w:gz"),
    ):
        with pytest.raises(MediaError) as refused:
            extract_archive(archive, dest)
        assert str(refused.value) == f"{archive.name}: member {name!r} {reason}"
        assert _left_in(dest) == []
    assert not (tmp_path / "evil.jpg").exists()


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_special("link.jpg", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link"),
        (_special("link.jpg", tarfile.LNKTYPE, "good.jpg"), "is a hard link"),
        (_special("link.jpg", tarfile.CHRTYPE), "is a device file"),
        (_special("link.jpg", tarfile.BLKTYPE), "is a device file"),
        (_special("link.jpg", tarfile.FIFOTYPE), "is a fifo"),
    ],
    ids=["symlink", "hardlink", "char device", "block device", "fifo"],
)
def test_tar_links_and_special_files_are_refused_after_writing_started(
    tmp_path: Path, dest: Path, member: tarfile.TarInfo, reason: str
):
    archive = _tar(tmp_path / "upload.tar", [("nested/good.jpg", b"fine"), member])
    with pytest.raises(MediaError) as refused:
        extract_archive(archive, dest)
    assert str(refused.value) == f"upload.tar: member 'link.jpg' {reason}"
    # nested/good.jpg had been written: it and its folder are gone again.
    assert _left_in(dest) == []


def test_zip_symlink_entry_is_refused(tmp_path: Path, dest: Path):
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("good.jpg", b"fine")
        link = zipfile.ZipInfo("link.jpg")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    with pytest.raises(MediaError, match=r"^upload\.zip: member 'link\.jpg' is a symbolic link$"):
        extract_archive(archive, dest)
    assert _left_in(dest) == []


def test_zip_bomb_over_the_size_limit_is_refused_before_writing(tmp_path: Path, dest: Path):
    archive = _zip(tmp_path / "bomb.zip", {"zeros.bmp": bytes(4 * MiB)}, level=9)
    assert archive.stat().st_size < 10_000
    with pytest.raises(
        MediaError,
        match=r"^bomb\.zip: member 'zeros\.bmp' takes the content to 4194304 bytes; "
        r"the limit is 1048576$",
    ):
        extract_archive(archive, dest, max_total_bytes=MiB)
    assert _left_in(dest) == []


def test_zip_bomb_over_the_ratio_is_refused(tmp_path: Path, dest: Path):
    archive = _zip(tmp_path / "bomb.zip", {"zeros.bmp": bytes(4 * MiB)}, level=9)
    with pytest.raises(MediaError, match=r"^bomb\.zip: member 'zeros\.bmp' expands .* bomb\)$"):
        extract_archive(archive, dest, ratio_floor=MiB)
    assert _left_in(dest) == []


def test_small_archives_may_compress_well(tmp_path: Path, dest: Path):
    archive = _zip(tmp_path / "masks.zip", {"blank.bmp": bytes(512 * 1024)}, level=9)
    assert extract_archive(archive, dest) == [dest / "blank.bmp"]


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_compressed_tar_bombs_are_refused_while_writing(tmp_path: Path, dest: Path, mode: str):
    archive = _tar(tmp_path / "bomb.tar", [("a.jpg", b"fine"), ("zeros.bmp", bytes(4 * MiB))], mode)
    with pytest.raises(MediaError, match=r"^bomb\.tar: member 'zeros\.bmp' expands .* bomb\)$"):
        extract_archive(archive, dest, ratio_floor=MiB)
    assert _left_in(dest) == []
    with pytest.raises(MediaError, match=r"member 'zeros\.bmp' takes the content to 4194308"):
        extract_archive(archive, dest, max_total_bytes=MiB)
    assert _left_in(dest) == []


def test_a_zip_lying_about_sizes_is_refused(tmp_path: Path, dest: Path):
    archive = _zip(tmp_path / "liar.zip", {"zeros.bmp": bytes(3 * MiB)})
    data = bytearray(archive.read_bytes())
    # Declare 100 bytes in the central directory entry, the one zipfile believes.
    entry = data.index(b"PK\x01\x02")
    data[entry + 24 : entry + 28] = struct.pack("<I", 100)
    archive.write_bytes(bytes(data))
    with pytest.raises(MediaError, match=r"^liar\.zip: member 'zeros\.bmp' cannot be read"):
        extract_archive(archive, dest, max_total_bytes=MiB)
    assert _left_in(dest) == []


def test_too_many_members_are_refused(tmp_path: Path, dest: Path):
    members = {f"{index}.jpg": b"x" for index in range(5)}
    for archive in (
        _zip(tmp_path / "many.zip", members),
        _tar(tmp_path / "many.tar", list(members.items())),
    ):
        with pytest.raises(MediaError, match=r"member '3\.jpg' is one too many; the limit is 3"):
            extract_archive(archive, dest, max_members=3)
        assert _left_in(dest) == []


def test_clashing_names_are_refused_and_existing_files_kept(tmp_path: Path, dest: Path):
    archive = _tar(tmp_path / "twice.tar", [("a.jpg", b"one"), ("a.jpg", b"two")])
    with pytest.raises(MediaError, match=r"member 'a\.jpg' clashes with another file"):
        extract_archive(archive, dest)
    assert _left_in(dest) == []
    dest.mkdir(exist_ok=True)
    (dest / "kept.jpg").write_bytes(b"mine")
    with pytest.raises(MediaError, match=r"member 'kept\.jpg' clashes with another file"):
        extract_archive(_zip(tmp_path / "over.zip", {"new.jpg": b"n", "kept.jpg": b"x"}), dest)
    assert _left_in(dest) == ["kept.jpg"]
    assert (dest / "kept.jpg").read_bytes() == b"mine"
    with pytest.raises(MediaError, match=r"member 'kept\.jpg/x\.jpg' clashes with a file"):
        extract_archive(_zip(tmp_path / "under.zip", {"kept.jpg/x.jpg": b"x"}), dest)


def test_symbolic_links_already_in_dest_are_not_followed(tmp_path: Path, dest: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest.mkdir()
    (dest / "linked").symlink_to(elsewhere)
    with pytest.raises(MediaError, match=r"'linked/a\.jpg' would be written through a symbolic"):
        extract_archive(_zip(tmp_path / "up.zip", {"linked/a.jpg": b"x"}), dest)
    assert list(elsewhere.iterdir()) == []


def test_names_the_file_system_cannot_store_are_refused(tmp_path: Path, dest: Path):
    long = "x" * 300 + ".jpg"
    for name in (long, f"{long}/a.jpg"):
        archive = _zip(tmp_path / "long.zip", {"a.jpg": b"fine", name: b"long"})
        with pytest.raises(MediaError, match=r"has a name the file system cannot store$"):
            extract_archive(archive, dest)
        assert _left_in(dest) == []


def test_damaged_and_foreign_files_are_refused(tmp_path: Path, dest: Path):
    whole = _tar(tmp_path / "whole.tar.gz", [("a.jpg", bytes(MiB))], "w:gz")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    cut_tar = _tar(tmp_path / "plain.tar", [("a.jpg", bytes(200_000))])
    cut_tar.write_bytes(cut_tar.read_bytes()[:100_000])
    for archive in (cut, cut_tar):
        with pytest.raises(MediaError, match=rf"^{archive.name}: "):
            extract_archive(archive, dest)
        assert _left_in(dest) == []
    text = tmp_path / "notes.zip"
    text.write_text("not an archive")
    with pytest.raises(MediaError, match=r"^notes\.zip: not a zip or tar archive$"):
        extract_archive(text, dest)
