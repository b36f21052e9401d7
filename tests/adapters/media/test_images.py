"""Images: verifying and measuring uploads, loading upright RGB, JPEG frames and previews."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from labelyard.adapters.media.errors import MediaError
from labelyard.adapters.media.images import (
    ImageInfo,
    encode_jpeg,
    load_image,
    make_preview,
    probe_image,
)
from tests.adapters.media.samples import frame_image, mean_difference

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _oriented_jpeg(path: Path, orientation: int) -> Path:
    """A 100x50 JPEG, blue with a red block in its stored top-left corner, with an EXIF
    orientation tag."""
    image = Image.new("RGB", (100, 50), BLUE)
    ImageDraw.Draw(image).rectangle((0, 0, 15, 15), RED)
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif, quality=95)
    return path


def _near(pixel: object, colour: tuple[int, int, int]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) < 40 for a, b in zip(pixel, colour, strict=True))


@pytest.mark.parametrize(
    ("extension", "pillow_format"),
    [("jpg", "JPEG"), ("png", "PNG"), ("bmp", "BMP"), ("webp", "WEBP"), ("tiff", "TIFF")],
)
def test_probe_image_reports_size_and_format(tmp_path: Path, extension: str, pillow_format: str):
    path = tmp_path / f"frame.{extension}"
    frame_image(3, (64, 48)).save(path, format=pillow_format)
    assert probe_image(path) == ImageInfo(width=64, height=48, format=pillow_format)


@pytest.mark.parametrize(
    ("orientation", "size"), [(1, (100, 50)), (3, (100, 50)), (6, (50, 100)), (8, (50, 100))]
)
def test_probe_image_measures_after_exif_orientation(
    tmp_path: Path, orientation: int, size: tuple[int, int]
):
    info = probe_image(_oriented_jpeg(tmp_path / "photo.jpg", orientation))
    assert (info.width, info.height) == size


def test_load_image_turns_the_picture_upright(tmp_path: Path):
    image = load_image(_oriented_jpeg(tmp_path / "photo.jpg", 6))
    # Orientation 6: the stored picture is shown turned a quarter clockwise, so its
    # top-left corner ends up at the top right.
    assert image.mode == "RGB" and image.size == (50, 100)
    assert _near(image.getpixel((45, 5)), RED)
    assert _near(image.getpixel((5, 5)), BLUE)


def test_truncated_jpeg_is_refused(tmp_path: Path):
    path = tmp_path / "broken.jpg"
    buffer = io.BytesIO()
    Image.effect_noise((400, 300), 50).convert("RGB").save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(MediaError, match=r"^broken\.jpg: the image is truncated$"):
        probe_image(path)
    with pytest.raises(MediaError, match=r"^broken\.jpg: the image is truncated$"):
        load_image(path)


def test_corrupted_png_is_refused(tmp_path: Path):
    buffer = io.BytesIO()
    frame_image(0, (64, 48)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 30] = bytes(20)  # damage the pixel data, not the header
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(data))
    with pytest.raises(MediaError, match=r"^damaged\.png: the image is corrupted \("):
        probe_image(path)


def test_files_that_are_not_images_are_refused(tmp_path: Path):
    junk = tmp_path / "random.jpg"
    junk.write_bytes(zlib.compress(b"not an image") * 50)
    with pytest.raises(MediaError, match=r"^random\.jpg: not a recognised image format$"):
        probe_image(junk)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match=r"^empty\.png: "):
        probe_image(empty)
    with pytest.raises(MediaError, match=r"^upload\.png: the file is empty$"):
        load_image(b"", name="upload.png")
    with pytest.raises(MediaError, match=r"^image: not a recognised image format$"):
        load_image(b"junk")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [40, 100], ids=["over the limit", "over twice the limit"])
def test_decompression_bombs_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int
):
    path = tmp_path / "bomb.png"
    Image.new("L", (side, side)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(MediaError, match=r"^bomb\.png: the image is too large"):
        probe_image(path)
    with pytest.raises(MediaError, match=r"^bomb\.png: the image is too large"):
        load_image(path)


def test_load_image_from_bytes_converts_to_rgb():
    rgba = Image.new("RGBA", (8, 4), (10, 20, 30, 0))
    palette = Image.new("P", (8, 4), 0)
    palette.info["transparency"] = 0
    for source in (rgba, palette, Image.new("L", (8, 4), 77), Image.new("CMYK", (8, 4))):
        buffer = io.BytesIO()
        source.save(buffer, "TIFF" if source.mode == "CMYK" else "PNG")
        image = load_image(buffer.getvalue())
        assert (image.mode, image.size) == ("RGB", (8, 4)), source.mode
    buffer = io.BytesIO()
    Image.new("L", (8, 4), 77).save(buffer, "PNG")
    assert load_image(buffer.getvalue()).getpixel((0, 0)) == (77, 77, 77)


def test_sixteen_bit_images_are_scaled_to_eight_bits(tmp_path: Path):
    deep = Image.new("I;16", (4, 1))
    for x, value in enumerate((0, 1000, 2000, 4000)):
        deep.putpixel((x, 0), value)
    path = tmp_path / "depth.png"
    deep.save(path)
    image = load_image(path)
    assert [image.getpixel((x, 0)) for x in range(4)] == [
        (0, 0, 0),
        (63, 63, 63),
        (127, 127, 127),
        (255, 255, 255),
    ]


def test_encode_jpeg():
    source = frame_image(7)
    high, low = encode_jpeg(source, 95), encode_jpeg(source, 10)
    assert high[:3] == b"\xff\xd8\xff" and len(high) > len(low)
    decoded = Image.open(io.BytesIO(high))
    assert (decoded.format, decoded.size) == ("JPEG", (320, 240))
    assert mean_difference(decoded, source) < 2
    assert Image.open(io.BytesIO(encode_jpeg(Image.new("RGBA", (5, 5)), 70))).mode == "RGB"
    for quality in (0, 101):
        with pytest.raises(ValueError, match="quality"):
            encode_jpeg(source, quality)


@pytest.mark.parametrize(
    ("source", "size", "expected"),
    [((1000, 500), 256, (256, 128)), ((300, 900), 256, (85, 256)), ((100, 50), 256, (100, 50))],
)
def test_make_preview_keeps_the_aspect_ratio(
    source: tuple[int, int], size: int, expected: tuple[int, int]
):
    preview = Image.open(io.BytesIO(make_preview(frame_image(0, source), size)))
    assert (preview.format, preview.size) == ("JPEG", expected)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.99])
def test_the_quick_probe_finds_truncated_jpegs(tmp_path: Path, cut: float):
    whole = tmp_path / "whole.jpg"
    Image.effect_noise((640, 480), 60).convert("RGB").save(whole, "JPEG", quality=90)
    data = whole.read_bytes()
    cut_file = tmp_path / "cut.jpg"
    cut_file.write_bytes(data[: int(len(data) * cut)])
    assert probe_image(whole, thorough=False) == probe_image(whole)
    with pytest.raises(MediaError, match=r"cut\.jpg: the image is truncated"):
        probe_image(cut_file, thorough=False)


def test_the_quick_probe_accepts_bytes_after_the_end_marker(tmp_path: Path):
    path = tmp_path / "camera.jpg"
    frame_image(3).save(path, "JPEG")
    path.write_bytes(path.read_bytes() + b"\x00" * 100 + b"maker data")
    info = probe_image(path, thorough=False)
    assert (info.width, info.height) == (320, 240)
