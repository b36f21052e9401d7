"""Video files: count frames and find keyframes without decoding, read frames by number."""

from __future__ import annotations

import bisect
import itertools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import av
from av.container import InputContainer
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream
from PIL import Image

from labelyard.adapters.media.errors import MediaError

VideoPath = str | os.PathLike[str]

# Demuxers that FFmpeg offers for still images (chosen by file extension or content); a
# picture they open is not a video, even though it shows up as a one-frame video stream.
_STILL_IMAGE_FORMATS = frozenset({"image2", "tty", "gif", "apng", "webp", "ico"})
_TRANSPOSE = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What data/meta needs of a video, plus the seek index for read_frames.

    ``width`` and ``height`` are as displayed (after the stream's rotation). ``keyframes`` are
    the frame numbers of keyframes; ``keyframe_pts`` their presentation timestamps in the
    stream's time base (empty when the file has no usable timestamps, so it cannot seek).
    ``fps`` is the average frame rate, 0.0 when the file does not tell.
    """

    frame_count: int
    width: int
    height: int
    fps: float
    keyframes: list[int]
    keyframe_pts: list[int] = field(default_factory=list)


@contextmanager
def open_video_stream(path: VideoPath) -> Iterator[tuple[InputContainer, VideoStream]]:
    """Open ``path`` and yield the container and its first real video stream (cover art and
    still images do not count); raises MediaError when there is none."""
    try:
        container = av.open(os.fspath(path), mode="r", metadata_errors="replace")
    except av.FFmpegError as error:
        raise MediaError(path, f"not a readable video ({_reason(error)})") from None
    try:
        format_name = container.format.name
        if format_name in _STILL_IMAGE_FORMATS or format_name.endswith("_pipe"):
            raise MediaError(path, "not a video")
        streams = [
            stream
            for stream in container.streams.video
            if not stream.disposition & Disposition.attached_pic
        ]
        if not streams:
            raise MediaError(path, "the file has no video stream")
        yield container, streams[0]
    finally:
        container.close()


def probe_video(path: VideoPath) -> VideoInfo:
    """Count the frames and find the keyframes of the video at ``path`` by reading its
    packets (only the first frame is decoded, to check that the stream is decodable).

    Frames are numbered in presentation order. Raises MediaError for unreadable, truncated
    or corrupted files and files without a video stream.
    """
    timestamps: list[int | None] = []
    is_keyframe: list[bool] = []
    first_frame: VideoFrame | None = None
    with open_video_stream(path) as (container, stream):
        declared = stream.frames
        try:
            last_corrupt = False
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                timestamps.append(packet.pts)
                is_keyframe.append(packet.is_keyframe)
                last_corrupt = packet.is_corrupt
                if first_frame is None:
                    first_frame = next(iter(stream.decode(packet)), None)
            if first_frame is None and timestamps:
                first_frame = next(iter(stream.decode(None)), None)
        except av.FFmpegError as error:
            raise MediaError(path, f"the video is corrupted ({_reason(error)})") from None
        if last_corrupt or 0 < len(timestamps) < declared:
            raise MediaError(path, "the video is truncated")
        if first_frame is None:
            raise MediaError(path, "the video has no decodable frames")
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
    keyframes, keyframe_pts = _keyframe_index(timestamps, is_keyframe)
    width, height = first_frame.width, first_frame.height
    if _rotation(first_frame) in (90, 270):
        width, height = height, width
    return VideoInfo(len(timestamps), width, height, fps, keyframes, keyframe_pts)


def read_frames(
    path: VideoPath,
    start: int,
    stop: int,
    step: int = 1,
    keyframes: Sequence[int] | None = None,
    keyframe_pts: Sequence[int] | None = None,
) -> Iterator[Image.Image]:
    """Decode frames ``start``, ``start + step``, ... below ``stop`` as upright RGB images
    (fewer when the video ends first).

    With the index from probe_video (``keyframes`` and ``keyframe_pts``), decoding starts at
    the last keyframe at or before ``start`` instead of at frame 0.
    """
    if start < 0 or stop < start or step < 1:
        raise ValueError(f"bad frame range: start={start}, stop={stop}, step={step}")
    seek = _seek_point(start, keyframes, keyframe_pts)
    with open_video_stream(path) as (container, stream):
        stream.thread_type = "AUTO"
        frames = _decode(path, container, stream)
        number = 0
        if seek is not None:
            number, pts = seek
            try:
                container.seek(pts, stream=stream, backward=True, any_frame=False)
            except av.FFmpegError as error:
                raise MediaError(path, f"cannot seek ({_reason(error)})") from None
            # Frames before the keyframe (an earlier keyframe's, or open-GOP leading
            # pictures) come out first; they are skipped, not counted.
            frames = itertools.dropwhile(lambda frame: frame.pts is None or frame.pts < pts, frames)
            first = next(frames, None)
            if first is None or first.pts != pts:
                raise MediaError(path, f"keyframe {number} is not where the index says")
            frames = itertools.chain([first], frames)
        reformatter = VideoReformatter()
        for frame in frames:
            if number >= stop:
                return
            if number >= start and (number - start) % step == 0:
                yield _to_image(frame, reformatter)
            number += 1


def read_frame(
    path: VideoPath,
    number: int,
    keyframes: Sequence[int] | None = None,
    keyframe_pts: Sequence[int] | None = None,
) -> Image.Image:
    """Frame ``number`` of the video as an upright RGB image (see read_frames)."""
    for image in read_frames(path, number, number + 1, 1, keyframes, keyframe_pts):
        return image
    raise MediaError(path, f"frame {number} is out of range")


def _keyframe_index(
    timestamps: Sequence[int | None], is_keyframe: Sequence[bool]
) -> tuple[list[int], list[int]]:
    if any(pts is None for pts in timestamps):
        # No presentation order to go by: number frames in decoding order, and do not seek.
        return [number for number, key in enumerate(is_keyframe) if key], []
    known = [pts for pts in timestamps if pts is not None]
    # Packets come in decoding order; with B-frames that is not the order of display.
    order = sorted(range(len(known)), key=known.__getitem__)
    index = [(number, known[packet]) for number, packet in enumerate(order) if is_keyframe[packet]]
    return [number for number, _ in index], [pts for _, pts in index]


def _seek_point(
    start: int, keyframes: Sequence[int] | None, keyframe_pts: Sequence[int] | None
) -> tuple[int, int] | None:
    if not keyframes or not keyframe_pts:
        return None
    if len(keyframes) != len(keyframe_pts):
        raise ValueError("keyframes and keyframe_pts must have the same length")
    position = bisect.bisect_right(keyframes, start) - 1
    if position < 0 or keyframes[position] == 0:
        return None
    return keyframes[position], keyframe_pts[position]


def _decode(
    path: VideoPath, container: InputContainer, stream: VideoStream
) -> Iterator[VideoFrame]:
    try:
        yield from container.decode(stream)
    except av.FFmpegError as error:
        raise MediaError(path, f"the video is corrupted ({_reason(error)})") from None


def _to_image(frame: VideoFrame, reformatter: VideoReformatter) -> Image.Image:
    # VideoFrame.to_image makes a new colour converter for every frame and copies the
    # pixels row by row in Python: reusing one and letting Pillow read the rows with their
    # stride is over twice as fast at 720p.
    plane = reformatter.reformat(frame, format="rgb24").planes[0]
    size = (plane.width, plane.height)
    image = Image.frombytes("RGB", size, bytes(plane), "raw", "RGB", plane.line_size, 1)
    rotation = _rotation(frame)
    return image.transpose(_TRANSPOSE[rotation]) if rotation else image


def _rotation(frame: VideoFrame) -> int:
    """The counter-clockwise turn (0, 90, 180 or 270) that shows the frame upright."""
    return round(frame.rotation / 90) % 4 * 90


def _reason(error: av.FFmpegError) -> str:
    return error.strerror or type(error).__name__
