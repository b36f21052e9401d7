"""CVAT's data chunks: what ``GET /tasks/{id}/data?type=chunk&number=N`` returns.

An ``imageset`` chunk is a zip of frames; a ``video`` chunk is an MP4. ``quality=compressed``
chunks hold re-encoded frames (image_chunk, video_chunk), ``quality=original`` ones the
uploaded files (original_chunk).
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
from av.video.stream import VideoStream
from PIL import Image

from labelyard.adapters.media.images import encode_jpeg, to_rgb

# CVAT's rule of thumb (engine/task.py): 36 frames of 1920x1080 per image chunk, scaled by
# the first image's area to between 2 and 72 frames; video chunks hold 36 frames.
_REFERENCE_AREA = 1920 * 1080
_REFERENCE_FRAMES = 36
_MIN_IMAGE_CHUNK, _MAX_IMAGE_CHUNK = 2, 72
_VIDEO_CODEC = "libx264"


def chunk_ranges(size: int, chunk_size: int) -> list[tuple[int, int]]:
    """The frame ranges ``(start, stop)``, stop excluded, of the chunks of ``size`` frames:
    chunk N holds frames ``N * chunk_size`` to ``min((N + 1) * chunk_size, size) - 1``."""
    if size < 0 or chunk_size < 1:
        raise ValueError(f"bad chunking: size={size}, chunk_size={chunk_size}")
    return [(start, min(start + chunk_size, size)) for start in range(0, size, chunk_size)]


def default_chunk_size(width: int, height: int, *, video: bool = False) -> int:
    """The chunk size CVAT picks when a task does not set one: 36 for video; for images,
    ``36 * 1920 * 1080 // (width * height)`` kept between 2 and 72 (a 5472x3648 photo gives 3,
    as in the recorded ``data/meta``)."""
    if width < 1 or height < 1:
        raise ValueError(f"bad frame size: {width}x{height}")
    if video:
        return _REFERENCE_FRAMES
    frames = _REFERENCE_FRAMES * _REFERENCE_AREA // (width * height)
    return max(_MIN_IMAGE_CHUNK, min(_MAX_IMAGE_CHUNK, frames))


def image_chunk(images: Iterable[Image.Image], quality: int) -> bytes:
    """A compressed ``imageset`` chunk: an uncompressed zip of the frames as JPEGs named
    ``000000.jpeg``, ``000001.jpeg``, ... (CVAT's ZipCompressedChunkWriter)."""
    return jpeg_zip(encode_jpeg(image, quality) for image in images)


def jpeg_zip(jpegs: Iterable[bytes]) -> bytes:
    """Already encoded JPEGs as an ``imageset`` chunk (see image_chunk)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as chunk:
        for index, jpeg in enumerate(jpegs):
            chunk.writestr(f"{index:06d}.jpeg", jpeg)
    return buffer.getvalue()


def original_chunk(files: Iterable[tuple[str, str | os.PathLike[str]]]) -> bytes:
    """An original ``imageset`` chunk: an uncompressed zip of the files, each ``(name, path)``
    stored under ``name``. CVAT names them ``f"{index:06d}{extension}"``."""
    buffer = io.BytesIO()
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as chunk:
        for name, path in files:
            if name in seen:
                raise ValueError(f"two files of the chunk are named {name!r}")
            seen.add(name)
            chunk.write(Path(path), arcname=name)
    return buffer.getvalue()


def video_chunk(images: Iterable[Image.Image], fps: float | Fraction, quality: int) -> bytes:
    """A ``video`` chunk: the frames as an H.264 MP4 (yuv420p, constrained baseline, which
    the browser decoders of CVAT's UI handle).

    ``quality`` 1-100 maps to x264's CRF as CVAT does (100 -> 0, here 1; 1 -> 51). All frames must
    have one size; an odd width or height is padded by repeating the last column or row,
    so every pixel keeps its coordinates.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"video quality must be between 1 and 100, not {quality}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, not {fps}")
    rate = Fraction(fps).limit_denominator(1001)
    # CRF 0 is lossless, which needs a profile above baseline: quality 100 gets CRF 1.
    crf = max(1, round(51 * (100 - quality) / 99))
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = cast(VideoStream, container.add_stream(_VIDEO_CODEC, rate=rate))
        stream.pix_fmt = "yuv420p"
        # CVAT's Mpeg4CompressedChunkWriter options; a faster preset, as chunks may be
        # made on request.
        stream.options = {
            "profile": "baseline",
            "coder": "0",
            "crf": str(crf),
            "wpredp": "0",
            "flags": "-loop",
            "preset": "veryfast",
        }
        size: tuple[int, int] | None = None
        for index, image in enumerate(images):
            if size is None:
                size = image.size
                stream.width, stream.height = _even(size[0]), _even(size[1])
            elif image.size != size:
                raise ValueError(f"frame {index} is {image.size}, the chunk's frames are {size}")
            frame = av.VideoFrame.from_image(_pad_to_even(to_rgb(image)))
            frame.pts = index
            container.mux(stream.encode(frame))
        if size is None:
            raise ValueError("a video chunk needs at least one frame")
        container.mux(stream.encode(None))
    return buffer.getvalue()


def _even(length: int) -> int:
    return length + length % 2


def _pad_to_even(image: Image.Image) -> Image.Image:
    # x264 cannot encode yuv420p at odd sizes; CVAT stretches the frame by a pixel instead,
    # which moves every pixel a little.
    width, height = image.size
    if width % 2 == 0 and height % 2 == 0:
        return image
    padded = Image.new(image.mode, (_even(width), _even(height)))
    padded.paste(image, (0, 0))
    if width % 2:
        padded.paste(image.crop((width - 1, 0, width, height)), (width, 0))
    if height % 2:
        padded.paste(padded.crop((0, height - 1, padded.width, height)), (0, height))
    return padded
