"""Real media files for the media adapter's tests, made with Pillow and PyAV."""

from __future__ import annotations

from pathlib import Path

import av
from PIL import Image, ImageChops, ImageDraw, ImageStat


def frame_image(number: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """Frame ``number`` of the sample videos: a flat colour that changes a lot from one frame
    to the next, and a white square moving right, so a frame off by one is easy to tell."""
    width, height = size
    shade = (number * 37) % 200 + 20
    image = Image.new("RGB", size, (shade, 255 - shade, 96))
    left = (number * 2) % max(width - 40, 1)
    ImageDraw.Draw(image).rectangle((left, height // 3, left + 39, height // 3 + 39), "white")
    return image


def write_video(
    path: Path,
    frames: int = 120,
    size: tuple[int, int] = (320, 240),
    *,
    fps: int = 25,
    keyint: int = 30,
    bframes: int = 0,
    faststart: bool = False,
    rotation: int = 0,
) -> Path:
    """An H.264 MP4 of ``frame_image(0..frames-1)`` with a keyframe every ``keyint`` frames."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {
            "preset": "ultrafast",
            "crf": "12",
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes={bframes}",
        }
        if rotation:
            stream.set_display_rotation(rotation)
        for number in range(frames):
            frame = av.VideoFrame.from_image(frame_image(number, size))
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_audio(path: Path) -> Path:
    """An MP4 holding a short silent AAC track and no video."""
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "mono"
        for number in range(10):
            frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
            frame.planes[0].update(bytes(4096))
            frame.pts, frame.sample_rate = number * 1024, 44100
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    """The mean absolute difference of two same-size RGB images, per channel value (0-255)."""
    assert first.size == second.size, (first.size, second.size)
    difference = ImageChops.difference(first.convert("RGB"), second.convert("RGB"))
    return sum(ImageStat.Stat(difference).mean) / 3


def truncated_copy(source: Path, target: Path, keep: float = 0.5) -> Path:
    """``target`` holding the first ``keep`` of ``source``'s bytes."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target
