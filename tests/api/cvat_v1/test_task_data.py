"""Task data: upload, status, meta, chunks, frames, previews (seed 002's create flow)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from tests.support.media import jpeg, mp4

API = "/api/v1"


def create_task(client, headers, **fields):
    body = {"name": "task", "labels": [{"name": "car"}], **fields}
    response = client.post(f"{API}/tasks", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_status(client, headers, task_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"{API}/tasks/{task_id}/status", headers=headers).json()
        if state["state"] in ("Finished", "Failed"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"still {state}")


def chunk_names(client, headers, task_id, number=0):
    chunk = client.get(
        f"{API}/tasks/{task_id}/data", headers=headers, params={"type": "chunk", "number": number}
    )
    with zipfile.ZipFile(io.BytesIO(chunk.content)) as archive:
        return archive.namelist()


def upload(client, headers, task_id, files, **form):
    data = {"image_quality": "70", **form}
    multipart = [(f"client_files[{i}]", (name, content)) for i, (name, content) in enumerate(files)]
    return client.post(f"{API}/tasks/{task_id}/data", headers=headers, data=data, files=multipart)


@pytest.mark.parametrize("use_cache", ["true", "false"])
def test_seed_002_create_upload_poll_meta_chunk(client, factory, use_cache):
    admin = factory.admin()
    headers = factory.headers(admin)
    task_id = create_task(client, headers)
    images = [(f"00000000{n}.jpg", jpeg(64 + n * 8, 48, shade=n)) for n in (3, 1, 2)]
    response = upload(client, headers, task_id, images, use_cache=use_cache)
    assert response.status_code == 202, response.text
    assert sorted(response.json()["client_files"]) == sorted(name for name, _ in images)
    assert wait_status(client, headers, task_id) == {"state": "Finished", "message": ""}

    task = client.get(f"{API}/tasks/{task_id}", headers=headers).json()
    assert (task["size"], task["mode"], task["state"]) == (3, "annotation", "in_progress")
    assert task["data_compressed_chunk_type"] == "imageset"
    assert len(task["segments"]) == 1 and task["segments"][0]["stop_frame"] == 2
    meta = client.get(f"{API}/tasks/{task_id}/data/meta", headers=headers).json()
    assert [(f["name"], f["width"], f["height"]) for f in meta["frames"]] == [
        ("000000001.jpg", 72, 48),
        ("000000002.jpg", 80, 48),
        ("000000003.jpg", 88, 48),
    ]
    assert meta["size"] == 3 and meta["image_quality"] == 70

    chunk = client.get(
        f"{API}/tasks/{task_id}/data",
        headers=headers,
        params={"type": "chunk", "number": 0, "quality": "compressed"},
    )
    assert chunk.status_code == 200
    with zipfile.ZipFile(io.BytesIO(chunk.content)) as archive:
        assert archive.namelist() == ["000000.jpeg", "000001.jpeg", "000002.jpeg"]
    original = client.get(
        f"{API}/tasks/{task_id}/data",
        headers=headers,
        params={"type": "chunk", "number": 0, "quality": "original"},
    )
    with zipfile.ZipFile(io.BytesIO(original.content)) as archive:
        assert archive.read(archive.namelist()[0]) == images[1][1]
    frame = client.get(
        f"{API}/tasks/{task_id}/data",
        headers=headers,
        params={"type": "frame", "number": 2, "quality": "original"},
    )
    assert frame.content == images[0][1]
    preview = client.get(f"{API}/tasks/{task_id}/data", headers=headers, params={"type": "preview"})
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    missing = client.get(
        f"{API}/tasks/{task_id}/data", headers=headers, params={"type": "chunk", "number": 1}
    )
    assert missing.status_code == 404


def test_a_video_task(client, factory, tmp_path):
    admin = factory.admin()
    headers = factory.headers(admin)
    task_id = create_task(client, headers, segment_size=20)
    video = mp4(tmp_path / "clip.mp4", frames=50)
    response = upload(
        client,
        headers,
        task_id,
        [("clip.mp4", video.read_bytes())],
        chunk_size="10",
        frame_filter="step=2",
    )
    assert response.status_code == 202, response.text
    assert wait_status(client, headers, task_id)["state"] == "Finished"
    task = client.get(f"{API}/tasks/{task_id}", headers=headers).json()
    assert (task["size"], task["mode"], task["data_compressed_chunk_type"]) == (
        25,
        "interpolation",
        "video",
    )
    meta = client.get(f"{API}/tasks/{task_id}/data/meta", headers=headers).json()
    assert meta["frames"] == [{"width": 160, "height": 120, "name": "clip.mp4"}]
    chunk = client.get(
        f"{API}/tasks/{task_id}/data", headers=headers, params={"type": "chunk", "number": 2}
    )
    assert chunk.status_code == 200 and chunk.headers["content-type"] == "video/mp4"


def test_appending_data_adds_segments_and_jobs(client, factory):
    admin = factory.admin()
    headers = factory.headers(admin)
    task_id = create_task(client, headers, segment_size=2)
    upload(client, headers, task_id, [(f"a{n}.jpg", jpeg(shade=n)) for n in range(3)])
    assert wait_status(client, headers, task_id)["state"] == "Finished"
    assert len(chunk_names(client, headers, task_id)) == 3  # now cached
    upload(client, headers, task_id, [(f"b{n}.jpg", jpeg(shade=n)) for n in range(2)])
    assert wait_status(client, headers, task_id)["state"] == "Finished"
    task = client.get(f"{API}/tasks/{task_id}", headers=headers).json()
    assert task["size"] == 5
    assert [(s["start_frame"], s["stop_frame"]) for s in task["segments"]] == [
        (0, 1),
        (2, 2),
        (3, 4),
    ]
    names = [
        f["name"]
        for f in client.get(f"{API}/tasks/{task_id}/data/meta", headers=headers).json()["frames"]
    ]
    assert names == ["a0.jpg", "a1.jpg", "a2.jpg", "b0.jpg", "b1.jpg"]
    assert len(chunk_names(client, headers, task_id)) == 5  # the cached chunk was rebuilt


def test_a_broken_image_fails_the_task_data_and_leaves_nothing(client, factory):
    admin = factory.admin()
    headers = factory.headers(admin)
    task_id = create_task(client, headers)
    good = jpeg()
    files = [("good.jpg", good), ("broken.jpg", good[: len(good) // 2])]
    assert upload(client, headers, task_id, files).status_code == 202
    state = wait_status(client, headers, task_id)
    assert state["state"] == "Failed"
    assert "broken.jpg" in state["message"]
    task = client.get(f"{API}/tasks/{task_id}", headers=headers).json()
    assert (task["size"], task["segments"]) == (0, [])
    # A retry with good files works.
    assert upload(client, headers, task_id, [("good.jpg", good)]).status_code == 202
    assert wait_status(client, headers, task_id)["state"] == "Finished"
