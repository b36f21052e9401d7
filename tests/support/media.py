"""Real media for tests: JPEGs made with Pillow, MP4s made with PyAV."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image


def picture(width: int = 64, height: int = 48, shade: int = 0) -> Image.Image:
    """A gradient that differs with ``shade``, so that frames can be told apart."""
    red = Image.linear_gradient("L").rotate(90).resize((width, height))
    blue = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (red, Image.new("L", (width, height), shade % 256), blue))


def jpeg(width: int = 64, height: int = 48, shade: int = 0, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    picture(width, height, shade).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def mp4(path: Path, frames: int = 60, width: int = 160, height: int = 120, gop: int = 15) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop)}
        for number in range(frames):
            frame = av.VideoFrame.from_image(picture(width, height, number * 4))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
