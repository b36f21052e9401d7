"""How long creating a task with data takes over real HTTP, and how much memory it takes.

Starts ``labelyard serve`` (SQLite, operations in the server process) on a free port with a
fresh data dir, logs in, and measures: (a) 1,000 generated 1920x1080 JPEGs uploaded as
client_files in one multipart POST /tasks/{id}/data, with use_cache=true and then with
use_cache=false; (b) a generated 10,000-frame 1280x720 H.264 video with use_cache=true;
(c) the first compressed chunk of the use_cache=true JPEG task and of the video task, cold
(built on demand) and warm. Run: ``.venv/bin/python bench/task_creation.py [--quick]``.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
from PIL import Image

IMAGE_SIZE = (1920, 1080)
VIDEO_SIZE = (1280, 720)
VIDEO_GOP = 32
ADMIN = ("admin", "bench-password-1")
POLL_SECONDS = 0.1
WARM_READS = 20
TARGET_IMAGES_S = 10.0
TARGET_VIDEO_S = 15.0
TARGET_COLD_MS = 1500.0
TARGET_WARM_MS = 50.0


# --- media -------------------------------------------------------------------------------


def make_jpegs(folder: Path, count: int) -> list[Path]:
    """``count`` 1080p JPEGs of about 300 KB: eight pictures (gradient + noise, which keeps the
    entropy decoder as busy as a photo does), each file made unique by a JPEG comment so no
    two uploads are the same bytes."""
    pictures = []
    for seed in range(8):
        gradient = Image.linear_gradient("L").resize(IMAGE_SIZE).rotate(seed * 45)
        noise = Image.effect_noise(IMAGE_SIZE, 10 + seed % 4)
        mirrored = noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        colour = Image.merge("RGB", (gradient, Image.blend(gradient, noise, 0.5), mirrored))
        buffer = io.BytesIO()
        colour.save(buffer, "JPEG", quality=88)
        pictures.append(buffer.getvalue())
    paths = []
    for index in range(count):
        comment = f"labelyard bench image {index}".encode()
        segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
        picture = pictures[index % len(pictures)]
        path = folder / f"image_{index:05d}.jpg"
        path.write_bytes(picture[:2] + segment + picture[2:])  # right after SOI
        paths.append(path)
    return paths


def make_video(path: Path, frames: int) -> None:
    """A moving gradient (x264 ultrafast, a keyframe every 32 frames, 30 fps). The picture
    repeats every 64 frames, so those are encoded once and their packets written again with
    later timestamps: every GOP is closed, and decoding the file costs what a fresh encode
    would, while generating it takes a fraction of a second instead of a minute."""
    width, height = VIDEO_SIZE
    period = 2 * VIDEO_GOP
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        gop = str(VIDEO_GOP)
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23",
                          "g": gop, "keyint_min": gop, "sc_threshold": "0"}  # fmt: skip
        chroma = bytes([128]) * (width // 2 * height // 2)
        ramp = bytes(range(256)) * (width // 256 + 2)
        packets = []
        for number in range(period):
            frame = av.VideoFrame(width, height, "yuv420p")
            shift = 4 * number % 256
            frame.planes[0].update(ramp[shift : shift + frame.planes[0].line_size] * height)
            frame.planes[1].update(chroma)
            frame.planes[2].update(chroma)
            frame.pts = number
            packets.extend(stream.encode(frame))
        packets.extend(stream.encode(None))
        saved = [(bytes(p), p.pts, p.dts, p.is_keyframe, p.time_base) for p in packets]
        for number in range(frames):
            data, pts, dts, keyframe, time_base = saved[number % period]
            later = number // period * period
            packet = av.Packet(data)
            packet.pts, packet.dts, packet.time_base = pts + later, dts + later, time_base
            packet.is_keyframe = keyframe
            packet.stream = stream
            container.mux(packet)


# --- process figures -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reset_peak(pid: int | str) -> None:
    # Writing 5 to clear_refs resets VmHWM (Linux 4.0+), so each phase gets its own peak.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_mib(pid: int | str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def rss_mib(pid: int | str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def cpu_seconds(pid: int) -> float:
    # utime and stime are fields 14 and 15; the command name before them may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def steal_seconds() -> float:
    # Time this VM's CPUs were ready but the hypervisor ran something else (/proc/stat's
    # 8th figure); when it is large, every figure here is inflated and noisy.
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


class Server:
    """``labelyard serve`` in a subprocess, with its output in ``log``."""

    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "serve.log"
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("LABELYARD_")}  # fmt: skip
        env |= {
            "LABELYARD_DATA_DIR": str(data_dir),
            "LABELYARD_ADMIN_USERNAME": ADMIN[0],
            "LABELYARD_ADMIN_PASSWORD": ADMIN[1],
        }
        command = [
            str(Path(sys.executable).parent / "labelyard"),
            "serve",
            "--port",
            str(self.port),
        ]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.process.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"labelyard serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"labelyard serve did not answer:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- measurements ------------------------------------------------------------------------


@dataclass
class Creation:
    name: str
    upload_s: float
    finished_s: float
    target_s: float | None
    server_peak_mib: float
    bench_peak_mib: float
    server_cpu_s: float


@dataclass
class ChunkRead:
    name: str
    cold_ms: float
    warm_ms: float
    detail: str


def create_task(api: httpx.Client, name: str) -> int:
    response = api.post("/tasks", json={"name": name, "labels": [{"name": "car"}]})
    response.raise_for_status()
    return int(response.json()["id"])


def add_data(
    api: httpx.Client,
    server: Server,
    name: str,
    files: list[Path],
    *,
    use_cache: bool,
    frames: int,
    target_s: float | None,
) -> tuple[int, Creation]:
    """A new task given ``files`` in one multipart POST; timed from the POST to Finished."""
    task_id = create_task(api, name)
    reset_peak(server.pid)
    reset_peak("self")
    cpu_before = cpu_seconds(server.pid)
    form = {"image_quality": "70", "use_cache": "true" if use_cache else "false"}
    with ExitStack() as stack:
        # Open files, not bytes: httpx then streams the body instead of holding it all.
        multipart = [
            (f"client_files[{index}]", (path.name, stack.enter_context(path.open("rb"))))
            for index, path in enumerate(files)
        ]
        started = time.perf_counter()
        response = api.post(f"/tasks/{task_id}/data", data=form, files=multipart)
        uploaded = time.perf_counter()
    if response.status_code != 202:
        raise RuntimeError(f"POST data answered {response.status_code}: {response.text}")
    while True:
        state = api.get(f"/tasks/{task_id}/status").json()
        if state["state"] == "Finished":
            break
        if state["state"] == "Failed":
            raise RuntimeError(f"{name}: the data operation failed: {state['message']}")
        time.sleep(POLL_SECONDS)
    finished = time.perf_counter()
    creation = Creation(
        name,
        uploaded - started,
        finished - started,
        target_s,
        peak_mib(server.pid),
        peak_mib("self"),
        cpu_seconds(server.pid) - cpu_before,
    )
    size = api.get(f"/tasks/{task_id}").json()["size"]
    if size != frames:
        raise RuntimeError(f"{name}: the task has {size} frames, expected {frames}")
    return task_id, creation


def read_first_chunk(api: httpx.Client, name: str, task_id: int) -> ChunkRead:
    """Chunk 0 at compressed quality: the first read builds it, the next ones are served."""
    params = {"type": "chunk", "number": 0, "quality": "compressed"}
    timings = []
    for _ in range(1 + WARM_READS):
        started = time.perf_counter()
        response = api.get(f"/tasks/{task_id}/data", params=params)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    kind = response.headers["content-type"]
    detail = f"{len(response.content) / 1024:.0f} KiB {kind}"
    if kind == "application/zip":
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            detail += f", {len(archive.namelist())} frames"
    return ChunkRead(name, timings[0], statistics.median(timings[1:]), detail)


# --- report ------------------------------------------------------------------------------


def _verdict(value: float, target: float | None) -> str:
    if target is None:
        return ""
    return "ok" if value <= target else "MISSED"


def report(creations: list[Creation], reads: list[ChunkRead], quick: bool, noise: str) -> None:
    print()
    print(f"{'task data':<38} {'upload':>8} {'Finished':>9} {'target':>7} {'':>6} "
          f"{'server peak':>11} {'bench peak':>10} {'server CPU':>10}")  # fmt: skip
    for c in creations:
        target = f"{c.target_s:.0f} s" if c.target_s is not None else "-"
        print(f"{c.name:<38} {c.upload_s:6.2f} s {c.finished_s:7.2f} s {target:>7} "
              f"{_verdict(c.finished_s, c.target_s):>6} {c.server_peak_mib:7.0f} MiB "
              f"{c.bench_peak_mib:6.0f} MiB {c.server_cpu_s:8.1f} s")  # fmt: skip
    print()
    print(f"{'first compressed chunk':<38} {'cold':>9} {'':>6} {'warm (median)':>14} {'':>6}")
    for r in reads:
        cold, warm = _verdict(r.cold_ms, TARGET_COLD_MS), _verdict(r.warm_ms, TARGET_WARM_MS)
        print(f"{r.name:<38} {r.cold_ms:6.0f} ms {cold:>6} {r.warm_ms:11.1f} ms {warm:>6}   "
              f"{r.detail}")  # fmt: skip
    print()
    print(f"targets: JPEGs Finished <= {TARGET_IMAGES_S:.0f} s and video <= {TARGET_VIDEO_S:.0f} s "
          f"with use_cache; first chunk <= {TARGET_COLD_MS / 1000:.1f} s cold, "
          f"<= {TARGET_WARM_MS:.0f} ms warm.")  # fmt: skip
    print(
        "upload = until the POST answers 202; Finished = from the POST to status Finished "
        f"(polled every {POLL_SECONDS} s); peaks are VmHWM, reset before each step."
    )
    print(noise)
    if quick:
        print("--quick: fewer images and frames than the targets are set for.")


def measure(
    api: httpx.Client, server: Server, jpegs: list[Path], video: Path, frames: int
) -> tuple[list[Creation], list[ChunkRead]]:
    """Steps (a), (b) and (c), in that order, on one logged-in client."""
    creations, reads = [], []
    for use_cache in (True, False):
        name = f"(a) {len(jpegs)} JPEGs, use_cache={str(use_cache).lower()}"
        target = TARGET_IMAGES_S if use_cache else None
        task_id, creation = add_data(
            api, server, name, jpegs, use_cache=use_cache, frames=len(jpegs), target_s=target
        )
        creations.append(creation)
        print(f"  {name}: Finished in {creation.finished_s:.2f} s", flush=True)
        if use_cache:
            reads.append(read_first_chunk(api, f"(c) JPEG task ({len(jpegs)})", task_id))
    name = f"(b) {frames}-frame video, use_cache=true"
    task_id, creation = add_data(
        api, server, name, [video], use_cache=True, frames=frames, target_s=TARGET_VIDEO_S
    )
    creations.append(creation)
    print(f"  {name}: Finished in {creation.finished_s:.2f} s", flush=True)
    reads.append(read_first_chunk(api, f"(c) video task ({frames})", task_id))
    return creations, reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="JPEGs to upload (1000)")
    parser.add_argument("--frames", type=int, default=None, help="video frames (10000)")
    parser.add_argument("--quick", action="store_true", help="100 images and 1000 frames")
    arguments = parser.parse_args()
    images = arguments.images or (100 if arguments.quick else 1000)
    frames = arguments.frames or (1000 if arguments.quick else 10_000)

    with tempfile.TemporaryDirectory(prefix="labelyard-bench-") as scratch_name:
        scratch = Path(scratch_name)
        (scratch / "jpegs").mkdir()
        started = time.perf_counter()
        jpegs = make_jpegs(scratch / "jpegs", images)
        average = sum(p.stat().st_size for p in jpegs) / len(jpegs) / 1024
        print(f"generated {images} JPEGs ({average:.0f} KB average) "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        video = scratch / "video.mp4"
        started = time.perf_counter()
        make_video(video, frames)
        print(f"generated a {frames}-frame video ({video.stat().st_size / 2**20:.1f} MiB) "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip

        # The server fsyncs every file it stores; without this, those fsyncs would also
        # flush the ~330 MB just generated, which is the benchmark's cost, not the server's.
        os.sync()
        server = Server(scratch / "data")
        try:
            print(f"labelyard serve: pid {server.pid}, {server.base}, "
                  f"{rss_mib(server.pid):.0f} MiB RSS when idle", flush=True)  # fmt: skip
            started, steal_before = time.perf_counter(), steal_seconds()
            with httpx.Client(base_url=f"{server.base}/api/v1", timeout=600) as api:
                login = api.post("/auth/login", data={"username": ADMIN[0], "password": ADMIN[1]})
                login.raise_for_status()
                api.headers["Authorization"] = f"Token {login.json()['key']}"
                creations, reads = measure(api, server, jpegs, video, frames)
            steal, wall = steal_seconds() - steal_before, time.perf_counter() - started
            noise = f"CPU steal during the measurements: {steal:.1f} s over {wall:.0f} s"
            noise += f" on {os.cpu_count()} CPUs."
            report(creations, reads, arguments.quick, noise)
        except BaseException:
            print(f"--- labelyard serve output ---\n{server.log.read_text()[-5000:]}",
                  file=sys.stderr)  # fmt: skip
            raise
        finally:
            server.stop()


if __name__ == "__main__":
    main()
