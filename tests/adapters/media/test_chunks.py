"""CVAT's chunks: zips of JPEGs, zips of original files, MP4s; chunk sizes and ranges."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import av
import pytest
from PIL import Image

from labelyard.adapters.media.chunks import (
    chunk_ranges,
    default_chunk_size,
    image_chunk,
    original_chunk,
    video_chunk,
)
from labelyard.adapters.media.video import probe_video, read_frames
from tests.adapters.media.samples import frame_image, mean_difference


@pytest.mark.parametrize(
    ("size", "chunk_size", "expected"),
    [
        (10, 4, [(0, 4), (4, 8), (8, 10)]),
        (8, 4, [(0, 4), (4, 8)]),
        (3, 36, [(0, 3)]),
        (0, 36, []),
    ],
)
def test_chunk_ranges(size: int, chunk_size: int, expected: list[tuple[int, int]]):
    assert chunk_ranges(size, chunk_size) == expected


def test_chunk_ranges_refuses_bad_sizes():
    with pytest.raises(ValueError, match="bad chunking"):
        chunk_ranges(10, 0)
    with pytest.raises(ValueError, match="bad chunking"):
        chunk_ranges(-1, 4)


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1920, 1080, 36),
        (3840, 2160, 9),
        (5472, 3648, 3),  # the recorded data/meta: chunk_size 3 for these photos
        (500, 355, 72),
        (1280, 720, 72),
        (1600, 1200, 38),
        (20000, 20000, 2),
    ],
)
def test_default_chunk_size_for_images(width: int, height: int, expected: int):
    assert default_chunk_size(width, height) == expected


def test_default_chunk_size_for_video():
    assert default_chunk_size(320, 240, video=True) == 36
    assert default_chunk_size(3840, 2160, video=True) == 36


def test_image_chunk_is_a_stored_zip_of_jpegs():
    images = [frame_image(number, (64 + number, 48)) for number in range(3)]
    with zipfile.ZipFile(io.BytesIO(image_chunk(images, quality=90))) as chunk:
        members = chunk.infolist()
        assert [member.filename for member in members] == [
            "000000.jpeg",
            "000001.jpeg",
            "000002.jpeg",
        ]
        assert {member.compress_type for member in members} == {zipfile.ZIP_STORED}
        for number, member in enumerate(members):
            decoded = Image.open(io.BytesIO(chunk.read(member)))
            assert (decoded.format, decoded.size) == ("JPEG", (64 + number, 48))
            assert mean_difference(decoded, images[number]) < 3


def test_original_chunk_holds_the_files_unchanged(tmp_path: Path):
    first, second = tmp_path / "a.png", tmp_path / "b.bmp"
    frame_image(0, (16, 16)).save(first)
    frame_image(1, (16, 16)).save(second)
    data = original_chunk([("000000.png", first), ("000001.bmp", second)])
    with zipfile.ZipFile(io.BytesIO(data)) as chunk:
        assert chunk.namelist() == ["000000.png", "000001.bmp"]
        assert chunk.read("000000.png") == first.read_bytes()
        assert chunk.read("000001.bmp") == second.read_bytes()
    with pytest.raises(ValueError, match=r"named '000000\.png'"):
        original_chunk([("000000.png", first), ("000000.png", second)])


def _decode_chunk(data: bytes, tmp_path: Path) -> tuple[Path, list[Image.Image]]:
    path = tmp_path / "chunk.mp4"
    path.write_bytes(data)
    return path, list(read_frames(path, 0, 1000))


def test_video_chunk_is_an_h264_mp4_of_the_frames(tmp_path: Path):
    images = [frame_image(number) for number in range(10)]
    path, frames = _decode_chunk(video_chunk(images, fps=30, quality=70), tmp_path)
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height, info.fps) == (10, 320, 240, 30.0)
    assert info.keyframes[0] == 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert stream.codec_context.profile == "Constrained Baseline"
    assert len(frames) == 10
    for number, frame in enumerate(frames):
        assert mean_difference(frame, images[number]) < 3, number


def test_video_chunk_pads_odd_sizes_without_moving_pixels(tmp_path: Path):
    images = [frame_image(number, (321, 241)) for number in range(4)]
    _, frames = _decode_chunk(video_chunk(images, fps=25, quality=90), tmp_path)
    assert len(frames) == 4
    for number, frame in enumerate(frames):
        assert frame.size == (322, 242)
        assert mean_difference(frame.crop((0, 0, 321, 241)), images[number]) < 3
        # The added column repeats the last one.
        last = images[number].crop((320, 0, 321, 241))
        assert mean_difference(frame.crop((321, 0, 322, 241)), last) < 6


def test_video_chunk_quality_maps_to_crf(tmp_path: Path):
    images = [Image.effect_noise((160, 120), 40).convert("RGB") for _ in range(3)]
    assert len(video_chunk(images, 25, quality=100)) > 2 * len(video_chunk(images, 25, 10))


def test_video_chunk_refuses_bad_input():
    with pytest.raises(ValueError, match="at least one frame"):
        video_chunk([], 25, 70)
    with pytest.raises(ValueError, match=r"frame 1 is \(30, 20\)"):
        video_chunk([frame_image(0, (40, 20)), frame_image(1, (30, 20))], 25, 70)
    with pytest.raises(ValueError, match="quality"):
        video_chunk([frame_image(0)], 25, 0)
    with pytest.raises(ValueError, match="fps"):
        video_chunk([frame_image(0)], 0, 70)
