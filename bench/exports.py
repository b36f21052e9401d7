"""How fast annotations export and import in the field's formats, and in what memory.

Builds the app in-process (``create_app``, SQLite in a temporary data dir, in-process
operations) and, through FastAPI's ``TestClient``: a task whose data is a 10,000-frame
video (64x48), one job, and 50 boxes on every frame (500,000) saved with one PUT. Then:
COCO 1.0 export (from the first GET to the 201 that says it is ready), its download, the
import of that file back into the task (PUT with the file to the 201), and a YOLO 1.1
export. Each step prints seconds and the process's peak RSS during it (bench and server
are one process: before each step what earlier steps freed is handed back and the peak
reset through /proc/self/clear_refs; the RSS the step starts from is shown too).
Run: ``.venv/bin/python bench/exports.py [--frames N] [--boxes-per-frame M]``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import gc
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import orjson

from labelyard.app import create_app
from labelyard.config import Settings
from labelyard.services import auth
from labelyard.services.uow import UnitOfWork

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.media import mp4

API = "/api/v1"
ADMIN = ("bench-admin", "bench-password-1")
FRAMES = 10_000
BOXES_PER_FRAME = 50
TARGETS = {"export": (10.0, 500.0), "import": (15.0, 1024.0)}


def reset_peak() -> None:
    """Hand back what earlier steps freed (the collector's garbage, malloc's free pages),
    then start the peak from here: a step's peak is its own."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_mib() -> float:
    """The RSS now: what a step's peak starts from (memory earlier steps left)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def wait(client: Any, method: str, url: str, **kwargs: Any) -> Any:
    # A poll costs ~15 ms of this one process's CPU: every 50 ms, polls took a fifth of
    # it from the operation being measured. Clients poll every second or more.
    while True:
        response = client.request(method, url, **kwargs)
        if response.status_code != 202:
            return response
        time.sleep(0.2)


def build_task(client: Any, scratch: Path, frames: int) -> tuple[int, int, int]:
    app: Any = client.app
    with UnitOfWork(app.state.session_factory) as uow:
        auth.create_superuser(uow, username=ADMIN[0], email="b@example.com", password=ADMIN[1])
    login = client.post(f"{API}/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    client.headers["Authorization"] = f"Token {login.json()['key']}"
    task = client.post(
        f"{API}/tasks",
        json={"name": "exports bench", "labels": [{"name": "car"}, {"name": "person"}],
              "segment_size": frames},
    ).json()  # fmt: skip
    video = mp4(scratch / "video.mp4", frames=frames, width=64, height=48, gop=250)
    posted = client.post(
        f"{API}/tasks/{task['id']}/data",
        data={"image_quality": "70", "use_cache": "true"},
        files=[("client_files[0]", ("video.mp4", video.read_bytes()))],
    )
    posted.raise_for_status()
    while client.get(f"{API}/tasks/{task['id']}/status").json()["state"] not in (
        "Finished",
        "Failed",
    ):
        time.sleep(0.1)
    job_id = client.get(f"{API}/tasks/{task['id']}").json()["segments"][0]["jobs"][0]["id"]
    return task["id"], job_id, task["labels"][0]["id"]


def boxes(frames: int, per_frame: int, label_id: int) -> bytes:
    shapes = []
    for frame in range(frames):
        for n in range(per_frame):
            x, y = (n * 7) % 50, (n * 3) % 36
            shapes.append({"type": "rectangle", "frame": frame, "label_id": label_id,
                           "points": [x, y, x + 10.5, y + 8.25]})  # fmt: skip
    return orjson.dumps({"shapes": shapes})


def step(name: str, action: Any, rows: list[tuple[str, float, float, str]]) -> Any:
    reset_peak()
    start = current_mib()
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    peak = peak_mib()
    kind = name.split()[0]
    target = ""
    if kind in TARGETS:
        limit_s, limit_mib = TARGETS[kind]
        ok = seconds <= limit_s and peak <= limit_mib
        target = f"{'ok' if ok else 'MISSED'} <= {limit_s:g} s, <= {limit_mib:g} MiB"
    rows.append((name, seconds, peak, target))
    print(
        f"  {name:<34} {seconds:7.2f} s {peak:7.0f} MiB (from {start:4.0f})  {target}", flush=True
    )
    return result


def run(frames: int, per_frame: int) -> None:
    with tempfile.TemporaryDirectory(prefix="labelyard-bench-") as name:
        scratch = Path(name)
        settings = Settings(
            data_dir=scratch / "data",
            database_url=f"sqlite:///{scratch / 'db.sqlite3'}",
            max_request_bytes=2**30,
            max_annotation_bytes=2**30,
        )
        app = create_app(settings)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Using `httpx` with")
            from fastapi.testclient import TestClient
        with TestClient(app) as client:
            print(f"{frames:,} frames x {per_frame} boxes = {frames * per_frame:,} boxes; "
                  f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
            rows: list[tuple[str, float, float, str]] = []
            task_id, job_id, label_id = step(
                "setup: task with a video", lambda: build_task(client, scratch, frames), rows
            )
            body = boxes(frames, per_frame, label_id)
            url = f"{API}/jobs/{job_id}/annotations"
            headers = {"Content-Type": "application/json"}
            put = functools.partial(client.put, url, content=body, headers=headers)
            saved = step("setup: PUT the boxes", put, rows)
            saved.raise_for_status()
            del body, saved, put
            task_url = f"{API}/tasks/{task_id}/annotations"

            def export(format_name: str) -> bytes:
                params = {"format": format_name}
                assert client.get(task_url, params=params).status_code == 202
                ready = wait(client, "GET", task_url, params=params)
                if ready.status_code != 201:
                    raise RuntimeError(f"export {format_name}: {ready.status_code} {ready.text}")
                return b""

            def download(format_name: str) -> bytes:
                got = client.get(task_url, params={"format": format_name, "action": "download"})
                got.raise_for_status()
                return got.content

            def import_file(format_name: str, content: bytes) -> None:
                params = {"format": format_name}
                files = {"annotation_file": ("export.zip", content)}
                first = client.put(task_url, params=params, files=files)
                if first.status_code != 202:
                    raise RuntimeError(f"import: {first.status_code} {first.text}")
                done = wait(client, "PUT", task_url, params=params)
                if done.status_code != 201:
                    raise RuntimeError(f"import {format_name}: {done.status_code} {done.text}")

            step("export COCO 1.0", lambda: export("COCO 1.0"), rows)
            content = step("  download it", lambda: download("COCO 1.0"), rows)
            print(f"  {'':<34} {len(content) / 1e6:7.1f} MB zip")
            step("import COCO 1.0", functools.partial(import_file, "COCO 1.0", content), rows)
            del content
            count = len(client.get(f"{API}/jobs/{job_id}/annotations").json()["shapes"])
            print(f"  {'':<34} {count:,} boxes after the import")
            step("export YOLO 1.1", lambda: export("YOLO 1.1"), rows)
    print("targets: export <= 10 s and <= 500 MB peak RSS; import <= 15 s and <= 1 GB.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--boxes-per-frame", type=int, default=BOXES_PER_FRAME)
    arguments = parser.parse_args()
    run(arguments.frames, arguments.boxes_per_frame)


if __name__ == "__main__":
    main()
