"""Telling images, videos and archives apart by content."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from labelyard.adapters.media.errors import MediaError
from labelyard.adapters.media.kinds import classify
from tests.adapters.media.samples import frame_image, write_audio


@pytest.mark.parametrize("pillow_format", ["JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF"])
def test_images(tmp_path: Path, pillow_format: str):
    path = tmp_path / "frame"
    frame_image(0, (32, 24)).save(path, format=pillow_format)
    assert classify(path) == "image"


def test_videos(video: Path, bframe_video: Path, tmp_path: Path):
    assert classify(video) == "video"
    assert classify(bframe_video) == "video"
    renamed = tmp_path / "clip.jpg"  # the name does not matter
    renamed.write_bytes(video.read_bytes())
    assert classify(renamed) == "video"


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_archives(tmp_path: Path, mode: str):
    path = tmp_path / "upload.bin"
    with tarfile.open(path, mode) as bundle:  # type: ignore[call-overload]
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        bundle.addfile(info, io.BytesIO(b"hello"))
    assert classify(path) == "archive"


def test_zip_archives(tmp_path: Path):
    path = tmp_path / "upload.jpg"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("a.jpg", b"x")
    assert classify(path) == "archive"


def test_unsupported_and_empty_files_are_refused(tmp_path: Path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(bytes((index * 7919) % 251 for index in range(5000)))
    with pytest.raises(MediaError, match=r"^junk\.jpg: unsupported file type$"):
        classify(junk)
    text = tmp_path / "notes.txt"
    text.write_text("frame 1: a cat\n" * 20)
    with pytest.raises(MediaError, match=r"^notes\.txt: unsupported file type$"):
        classify(text)
    with pytest.raises(MediaError, match=r"^sound\.mp4: unsupported file type$"):
        classify(write_audio(tmp_path / "sound.mp4"))
    nested = tmp_path / "deep" / "er"
    nested.mkdir(parents=True)
    (nested / "empty.png").write_bytes(b"")
    with pytest.raises(MediaError, match=r"^empty\.png: the file is empty$"):
        classify(nested / "empty.png")
