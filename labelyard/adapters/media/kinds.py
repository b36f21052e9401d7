"""Telling images, videos and archives apart by their content, never by their name."""

from __future__ import annotations

import os
import tarfile
import zipfile
from typing import Literal

from PIL import Image

from labelyard.adapters.media.errors import MediaError
from labelyard.adapters.media.video import open_video_stream

MediaKind = Literal["image", "video", "archive"]


def classify(path: str | os.PathLike[str]) -> MediaKind:
    """Whether the file at ``path`` is an image, a video or an archive (zip or tar, plain or
    compressed), judged by its bytes; raises MediaError for empty and unsupported files.

    Only the header is looked at: use probe_image / probe_video to verify the whole file.
    """
    if os.stat(path).st_size == 0:
        raise MediaError(path, "the file is empty")
    if _is_image(path):
        return "image"
    if _is_tar(path) or zipfile.is_zipfile(path):
        return "archive"
    try:
        with open_video_stream(path):
            return "video"
    except MediaError:
        pass
    raise MediaError(path, "unsupported file type")


def _is_image(path: str | os.PathLike[str]) -> bool:
    try:
        with Image.open(path) as image:
            # Pillow recognises MPEG video headers but cannot decode them.
            return image.format != "MPEG"
    except Image.DecompressionBombError:
        return True  # an image, if too large a one: probe_image says so
    except Exception:  # any failure to identify means "not an image"
        return False


def _is_tar(path: str | os.PathLike[str]) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, EOFError, tarfile.TarError):
        return False
