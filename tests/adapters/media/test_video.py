"""Video: counting frames and keyframes from packets, reading frames by number with seeking."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import av
import pytest
from PIL import Image

from labelyard.adapters.media.errors import MediaError
from labelyard.adapters.media.video import VideoInfo, probe_video, read_frame, read_frames
from tests.adapters.media.samples import (
    frame_image,
    mean_difference,
    truncated_copy,
    write_audio,
    write_video,
)


class _Index(TypedDict):
    keyframes: list[int]
    keyframe_pts: list[int]


def _index(info: VideoInfo) -> _Index:
    return {"keyframes": info.keyframes, "keyframe_pts": info.keyframe_pts}


def _pts_of_frame(path: Path, number: int) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        return round(number / 25 / stream.time_base)


@pytest.mark.parametrize("sample", ["video", "bframe_video", "faststart_video"])
def test_probe_counts_frames_and_finds_keyframes(sample: str, request: pytest.FixtureRequest):
    path: Path = request.getfixturevalue(sample)
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height, info.fps) == (120, 320, 240, 25.0)
    assert info.keyframes == [0, 30, 60, 90]
    assert info.keyframe_pts == [_pts_of_frame(path, number) for number in (0, 30, 60, 90)]


def test_reading_from_the_start_gives_every_frame_in_order(bframe_video: Path):
    frames = list(read_frames(bframe_video, 0, 120))
    assert len(frames) == 120
    for number, image in enumerate(frames):
        assert image.mode == "RGB" and image.size == (320, 240)
        assert mean_difference(image, frame_image(number)) < 3, number
    # The check above can tell neighbours apart.
    assert mean_difference(frames[45], frame_image(46)) > 20


@pytest.mark.parametrize("sample", ["video", "bframe_video"])
def test_reading_from_the_middle_seeks_and_matches_decoding_from_zero(
    sample: str, request: pytest.FixtureRequest
):
    path: Path = request.getfixturevalue(sample)
    info = probe_video(path)
    from_zero = list(read_frames(path, 0, 75))[45:75]
    seeking = list(read_frames(path, 45, 75, **_index(info)))
    assert len(seeking) == 30
    for number, (expected, actual) in enumerate(zip(from_zero, seeking, strict=True), start=45):
        assert mean_difference(expected, actual) < 0.5, number
        assert mean_difference(actual, frame_image(number)) < 3, number


def test_seeking_goes_by_the_index(video: Path):
    info = probe_video(video)
    # A stale index (timestamps of other frames) is detected instead of serving wrong frames.
    wrong = [pts + 1 for pts in info.keyframe_pts]
    with pytest.raises(MediaError, match=r"^clip\.mp4: keyframe 60 is not where the index says"):
        list(read_frames(video, 70, 72, keyframes=info.keyframes, keyframe_pts=wrong))


def test_read_frames_with_a_step_and_a_stop_past_the_end(video: Path):
    info = probe_video(video)
    stepped = list(read_frames(video, 5, 120, step=25, **_index(info)))
    assert len(stepped) == 5
    for number, image in zip((5, 30, 55, 80, 105), stepped, strict=True):
        assert mean_difference(image, frame_image(number)) < 3, number
    assert len(list(read_frames(video, 110, 500, **_index(info)))) == 10
    assert list(read_frames(video, 120, 130)) == []


def test_read_frame(video: Path):
    info = probe_video(video)
    assert mean_difference(read_frame(video, 119, **_index(info)), frame_image(119)) < 3
    assert mean_difference(read_frame(video, 0, **_index(info)), frame_image(0)) < 3
    assert mean_difference(read_frame(video, 61), frame_image(61)) < 3
    with pytest.raises(MediaError, match=r"^clip\.mp4: frame 120 is out of range$"):
        read_frame(video, 120, **_index(info))


@pytest.mark.parametrize(
    ("start", "stop", "step"), [(-1, 5, 1), (5, 4, 1), (0, 5, 0)], ids=["negative", "back", "step"]
)
def test_read_frames_refuses_bad_ranges(video: Path, start: int, stop: int, step: int):
    with pytest.raises(ValueError, match="bad frame range"):
        list(read_frames(video, start, stop, step))


def test_read_frames_refuses_an_index_of_unequal_lengths(video: Path):
    with pytest.raises(ValueError, match="same length"):
        list(read_frames(video, 40, 41, keyframes=[0, 30], keyframe_pts=[0]))


def test_rotated_video_is_measured_and_read_upright(media_dir: Path):
    path = write_video(media_dir / "portrait.mp4", frames=3, rotation=90)
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height) == (3, 240, 320)
    image = read_frame(path, 1)
    # A counter-clockwise quarter turn takes the stored frame's top row to the left column.
    expected = frame_image(1).transpose(Image.Transpose.ROTATE_90)
    assert image.size == (240, 320)
    assert mean_difference(image, expected) < 3


def test_rows_padded_in_memory_are_read_right(media_dir: Path):
    # 328 pixels of RGB are 984 bytes, which FFmpeg pads to an aligned row length.
    path = write_video(media_dir / "wide.mp4", frames=3, size=(328, 248))
    assert mean_difference(read_frame(path, 2), frame_image(2, (328, 248))) < 3


def test_truncated_videos_are_refused(truncated_video: Path, faststart_video: Path, tmp_path):
    # The index (moov) is at the end of a plain MP4: cutting it leaves nothing to read.
    with pytest.raises(MediaError, match=r"^truncated\.mp4: not a readable video"):
        probe_video(truncated_video)
    # With the index first, the frames it lists are missing.
    cut = truncated_copy(faststart_video, tmp_path / "cut.mp4")
    with pytest.raises(MediaError, match=r"^cut\.mp4: the video is truncated$"):
        probe_video(cut)


def test_files_that_are_not_videos_are_refused(tmp_path: Path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(MediaError, match=r"^junk\.mp4: not a readable video"):
        probe_video(junk)
    picture = tmp_path / "picture.jpg"
    frame_image(0).save(picture)
    with pytest.raises(MediaError, match=r"^picture\.jpg: not a video$"):
        probe_video(picture)
    with pytest.raises(MediaError, match=r"^sound\.mp4: the file has no video stream$"):
        probe_video(write_audio(tmp_path / "sound.mp4"))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match=r"^empty\.mp4: "):
        probe_video(empty)
