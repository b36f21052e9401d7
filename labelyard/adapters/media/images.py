"""Still images: verify and measure uploads, load them upright, encode JPEG frames and previews."""

from __future__ import annotations

import io
import mmap
import os
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from labelyard.adapters.media.errors import MediaError

# EXIF orientations 5-8 turn the picture by 90 degrees, so its width and height swap.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N"})

ImageSource = str | os.PathLike[str] | bytes


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What data/meta reports for an image frame: its upright size and the file's format."""

    width: int
    height: int
    format: str


def probe_image(path: str | os.PathLike[str], *, thorough: bool = True) -> ImageInfo:
    """Decode the whole image at ``path`` and return its size as displayed (after EXIF
    orientation) and its format (Pillow's name, e.g. ``"JPEG"``).

    With ``thorough=False`` a JPEG is not decoded: its headers are read and its last scan
    must end with the end-of-image marker, which finds truncated files at a fraction of
    the cost (task creation probes thousands of them).

    Raises MediaError for unrecognised, truncated or corrupted files and for images over
    Pillow's ``Image.MAX_IMAGE_PIXELS`` (decompression bombs).
    """
    with _open(path, name=None) as image:
        width, height = image.size
        if image.format == "JPEG" and not thorough:
            _check_jpeg_ends(path)
        else:
            if image.format == "JPEG":
                # Scaled-down decoding still entropy-decodes every scan, so truncation and
                # broken data are found as with a full decode, at about half the cost.
                image.draft(image.mode, (1, 1))
            _load(image, path, name=None)
        orientation = image.getexif().get(ExifTags.Base.Orientation)
        if orientation in _SWAPPING_ORIENTATIONS:
            width, height = height, width
        return ImageInfo(width=width, height=height, format=image.format or "unknown")


def _check_jpeg_ends(path: str | os.PathLike[str]) -> None:
    """A complete JPEG has an end-of-image marker after its last start-of-scan. Inside
    entropy-coded data every 0xFF byte is followed by 0x00, so neither marker can appear
    there by chance; trailing bytes after the marker (some cameras add them) are fine."""
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        last_scan = data.rfind(b"\xff\xda")
        if last_scan < 0 or data.rfind(b"\xff\xd9") < last_scan:
            raise MediaError(path, "the image is truncated")


def load_image(source: ImageSource, *, name: str | None = None) -> Image.Image:
    """Decode an image file or its bytes into an upright (EXIF-transposed) RGB image.

    ``name`` is used in error messages when ``source`` is bytes. Images with 16/32-bit
    samples are scaled to 8 bits by their maximum, as CVAT does for its chunks.
    """
    with _open(source, name) as image:
        _load(image, source, name)
        ImageOps.exif_transpose(image, in_place=True)
        return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB mode (the image itself when it already is)."""
    if image.mode == "RGB":
        return image
    if image.mode in _HIGH_DEPTH_MODES:
        image = _to_8_bits(image)
    elif image.mode in ("P", "PA") or "transparency" in image.info:
        # Going through RGBA applies a palette's transparency instead of warning about it.
        image = image.convert("RGBA")
    return image.convert("RGB")


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """``image`` as JPEG bytes; ``quality`` is CVAT's image_quality, 1 (worst) to 100."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be between 1 and 100, not {quality}")
    if image.mode not in ("RGB", "L"):
        image = to_rgb(image)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def make_preview(image: Image.Image, size: int = 256, *, quality: int = 85) -> bytes:
    """A JPEG thumbnail of ``image`` fitting in ``size`` x ``size``, keeping the aspect ratio
    (CVAT's task and job previews are 256 x 256 at most)."""
    if size < 1:
        raise ValueError(f"preview size must be positive, not {size}")
    thumbnail = image.copy()
    thumbnail.thumbnail((size, size))
    return encode_jpeg(thumbnail, quality)


def _open(source: ImageSource, name: str | None) -> Image.Image:
    label = _label(source, name)
    file: str | os.PathLike[str] | io.BytesIO = (
        io.BytesIO(source) if isinstance(source, bytes) else source
    )
    if isinstance(source, bytes) and not source:
        raise MediaError(label, "the file is empty")
    try:
        image = Image.open(file)
    except UnidentifiedImageError:
        raise MediaError(label, "not a recognised image format") from None
    except Image.DecompressionBombError:
        raise MediaError(label, _too_large_reason()) from None
    except FileNotFoundError:
        raise
    except Exception as error:  # decoders raise many types on hostile input
        raise MediaError(label, _unreadable_reason(error, source)) from error
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.width * image.height > limit:
        image.close()
        raise MediaError(label, _too_large_reason(image.width, image.height))
    return image


def _load(image: Image.Image, source: ImageSource, name: str | None) -> None:
    try:
        image.load()
    except Exception as error:  # decoders raise many types on hostile input
        label = _label(source, name)
        if "truncated" in str(error):
            raise MediaError(label, "the image is truncated") from error
        raise MediaError(label, _unreadable_reason(error, source)) from error


def _to_8_bits(image: Image.Image) -> Image.Image:
    if image.mode != "F":
        image = image.convert("I")
    extrema = image.getextrema()
    highest = float(extrema[1]) if isinstance(extrema[1], int | float) else 0.0
    scale = 255.0 / highest if highest > 0 else 1.0
    return image.point(lambda value: value * scale).convert("L")


def _label(source: ImageSource, name: str | None) -> str:
    if name:
        return name
    return "image" if isinstance(source, bytes) else os.fspath(source)


def _too_large_reason(width: int | None = None, height: int | None = None) -> str:
    size = f" ({width} x {height} pixels)" if width and height else ""
    return f"the image is too large{size}; the limit is {Image.MAX_IMAGE_PIXELS} pixels"


def _unreadable_reason(error: Exception, source: ImageSource) -> str:
    message = str(error) or type(error).__name__
    if not isinstance(source, bytes):
        # Pillow puts the full path in some messages; clients must not see server paths.
        message = message.replace(os.fspath(source), os.path.basename(os.fspath(source)))
    return f"the image is corrupted ({message})"
