"""How fast the media adapter decodes, and how much memory it takes.

Prints seconds and peak RSS for: probing 1,000 generated 1920x1080 JPEGs, building image
chunks of 36 of them, and probing then reading every frame of a generated 10,000-frame
1280x720 H.264 video (plus a few seeks and one video chunk). Each step runs in a fresh process
so its peak RSS is its own. Run: ``.venv/bin/python bench/media_decode.py [--frames N]``.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
from PIL import Image

from labelyard.adapters.media.chunks import chunk_ranges, image_chunk, video_chunk
from labelyard.adapters.media.images import load_image, probe_image
from labelyard.adapters.media.video import probe_video, read_frame, read_frames

IMAGES = 1000
IMAGE_SIZE = (1920, 1080)
CHUNK_SIZE = 36
VIDEO_SIZE = (1280, 720)


def make_jpegs(folder: Path, count: int) -> list[Path]:
    """``count`` 1080p JPEGs: ten distinct pictures (gradient + noise, like a busy photo for
    the entropy decoder) written under many names."""
    pictures = []
    for seed in range(10):
        gradient = Image.linear_gradient("L").resize(IMAGE_SIZE).rotate(seed * 36)
        noise = Image.effect_noise(IMAGE_SIZE, 40 + seed)
        colour = Image.merge("RGB", (gradient, noise, Image.blend(gradient, noise, 0.5)))
        buffer = io.BytesIO()
        colour.save(buffer, "JPEG", quality=90)
        pictures.append(buffer.getvalue())
    paths = []
    for index in range(count):
        path = folder / f"frame_{index:05d}.jpg"
        path.write_bytes(pictures[index % len(pictures)])
        paths.append(path)
    return paths


def make_video(path: Path, frames: int) -> None:
    """A moving gradient, written straight into yuv420p planes (no RGB conversion), encoded
    with x264's ultrafast preset and its default keyframe interval (250 frames)."""
    width, height = VIDEO_SIZE
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # zerolatency: sliced threads instead of frame threads, a quarter faster here.
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23"}
        chroma = bytes([128]) * (width // 2 * height // 2)
        ramp = bytes(range(256)) * (width // 256 + 2)
        for number in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            shift = 4 * number % 256
            frame.planes[0].update(ramp[shift : shift + frame.planes[0].line_size] * height)
            frame.planes[1].update(chroma)
            frame.planes[2].update(chroma)
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed(step: Callable[..., str], *args: object) -> tuple[float, float, str]:
    started = time.perf_counter()
    detail = step(*args)
    return time.perf_counter() - started, _peak_rss_mib(), detail


def step_baseline() -> str:
    return "imports only"


def step_probe_images(folder: str) -> str:
    paths = sorted(Path(folder).glob("*.jpg"))
    sizes = {(info.width, info.height) for info in map(probe_image, paths)}
    return f"{len(paths)} JPEGs, sizes {sorted(sizes)}"


def step_image_chunks(folder: str) -> str:
    paths = sorted(Path(folder).glob("*.jpg"))
    total = 0
    ranges = chunk_ranges(len(paths), CHUNK_SIZE)
    for start, stop in ranges:
        total += len(image_chunk((load_image(path) for path in paths[start:stop]), 70))
    return f"{len(ranges)} chunks of up to {CHUNK_SIZE}, quality 70, {total / 2**20:.0f} MiB"


def step_probe_video(video: str) -> str:
    info = probe_video(video)
    return f"{info.frame_count} frames {info.width}x{info.height}, {len(info.keyframes)} keyframes"


def step_read_video(video: str) -> str:
    count = sum(1 for _ in read_frames(video, 0, sys.maxsize))
    return f"{count} frames decoded to RGB images"


def step_seek_video(video: str) -> str:
    info = probe_video(video)
    numbers = random.Random(1).sample(range(info.frame_count), 20)
    for number in numbers:
        read_frame(video, number, info.keyframes, info.keyframe_pts)
    return f"probe + 20 random frames with the keyframe index ({len(info.keyframes)} keyframes)"


def step_video_chunk(video: str) -> str:
    info = probe_video(video)
    frames = read_frames(video, 0, CHUNK_SIZE)
    size = len(video_chunk(frames, info.fps, 70))
    return f"decode + encode {CHUNK_SIZE} frames, {size / 1024:.0f} KiB"


def _run(name: str, step: Callable[..., str], *args: object) -> None:
    # A fresh process per step: ru_maxrss is a high-water mark that never comes down.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        seconds, peak, detail = pool.submit(_timed, step, *args).result()
    print(f"{name:<38} {seconds:8.2f} s {peak:8.0f} MiB   {detail}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=IMAGES)
    parser.add_argument("--frames", type=int, default=10_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="labelyard-bench-") as scratch:
        folder = Path(scratch) / "jpegs"
        folder.mkdir()
        video = Path(scratch) / "video.mp4"
        started = time.perf_counter()
        make_jpegs(folder, arguments.images)
        print(f"generated {arguments.images} JPEGs in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        make_video(video, arguments.frames)
        megabytes = video.stat().st_size / 2**20
        print(
            f"generated a {arguments.frames}-frame video ({megabytes:.0f} MiB) "
            f"in {time.perf_counter() - started:.1f} s\n"
        )
        print(f"{'step':<38} {'time':>10} {'peak RSS':>12}")
        _run("baseline (fresh process)", step_baseline)
        _run("probe_image x all JPEGs", step_probe_images, str(folder))
        _run("image_chunk (load_image + JPEG q70)", step_image_chunks, str(folder))
        _run("probe_video", step_probe_video, str(video))
        _run("read_frames, every frame", step_read_video, str(video))
        _run("read_frame x 20, seeking", step_seek_video, str(video))
        _run("video_chunk of 36 frames", step_video_chunk, str(video))


if __name__ == "__main__":
    main()
