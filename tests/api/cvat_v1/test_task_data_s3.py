"""Seed 002's create flow (task, three JPEGs, status, meta, chunks, a frame, the preview) with
media in S3: a moto server on loopback, a fresh bucket per test. Every object must land in the
bucket and nothing under the local media dir."""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from labelyard.app import create_app
from labelyard.config import Settings
from tests.support.media import jpeg

API = "/api/v1"
IMAGES = [(f"00000000{n}.jpg", jpeg(64 + n * 8, 48, shade=n)) for n in (3, 1, 2)]


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str) -> Settings:
    return settings.model_copy(
        update={
            "storage": "s3",
            "s3_endpoint": s3_endpoint,
            "s3_bucket": f"test-{uuid.uuid4().hex[:16]}",
            "s3_access_key": "testing",
            "s3_secret_key": "testing",
        }
    )


@pytest.fixture
def s3_client(app: Any, engine: Any, s3_settings: Settings) -> Iterator[TestClient]:
    """A client of an app keeping media in S3 (``app`` is requested so that the database is
    emptied afterwards)."""
    s3_app = create_app(s3_settings, engine=engine)
    try:
        with TestClient(s3_app) as client:
            yield client
    finally:
        s3_app.state.runner.shutdown()


@pytest.fixture
def bucket(s3_settings: Settings) -> Any:
    s3 = boto3.resource(
        "s3",
        endpoint_url=s3_settings.s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    return s3.Bucket(s3_settings.s3_bucket)


def keys(bucket: Any) -> list[str]:
    return sorted(item.key for item in bucket.objects.all())


def local_media(settings: Settings) -> list[Path]:
    root = settings.media_dir
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def wait_status(client: TestClient, headers: dict[str, str], task_id: int) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while True:
        state = client.get(f"{API}/tasks/{task_id}/status", headers=headers).json()
        if state["state"] in ("Finished", "Failed"):
            return state
        assert time.monotonic() < deadline, f"still {state}"
        time.sleep(0.05)


def read_data(client: TestClient, headers: dict[str, str], task_id: int, **params: Any) -> Any:
    response = client.get(f"{API}/tasks/{task_id}/data", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response


@pytest.mark.parametrize("use_cache", ["true", "false"])
def test_seed_002_flow_with_media_in_s3(s3_client, factory, bucket, s3_settings, use_cache):
    client = s3_client
    headers = factory.headers(factory.admin())
    created = client.post(
        f"{API}/tasks", headers=headers, json={"name": "task", "labels": [{"name": "car"}]}
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    multipart = [(f"client_files[{i}]", image) for i, image in enumerate(IMAGES)]
    response = client.post(
        f"{API}/tasks/{task_id}/data",
        headers=headers,
        data={"image_quality": "70", "use_cache": use_cache},
        files=multipart,
    )
    assert response.status_code == 202, response.text
    assert wait_status(client, headers, task_id) == {"state": "Finished", "message": ""}

    # The three images are in the bucket, byte for byte; staged uploads are gone.
    stored = {key.rsplit("/", 1)[-1]: key for key in keys(bucket) if key.startswith("datasets/")}
    assert sorted(stored) == sorted(name for name, _ in IMAGES)
    for name, content in IMAGES:
        assert bucket.Object(stored[name]).get()["Body"].read() == content
    chunks = [f"tasks/{task_id}/chunks/compressed-0.zip", f"tasks/{task_id}/chunks/original-0.zip"]
    built_now = [] if use_cache == "true" else chunks
    assert [key for key in keys(bucket) if not key.startswith("datasets/")] == built_now

    task = client.get(f"{API}/tasks/{task_id}", headers=headers).json()
    assert (task["size"], task["mode"], task["data_compressed_chunk_type"]) == (
        3,
        "annotation",
        "imageset",
    )
    assert [(s["start_frame"], s["stop_frame"]) for s in task["segments"]] == [(0, 2)]
    meta = client.get(f"{API}/tasks/{task_id}/data/meta", headers=headers).json()
    assert [(f["name"], f["width"], f["height"]) for f in meta["frames"]] == [
        ("000000001.jpg", 72, 48),
        ("000000002.jpg", 80, 48),
        ("000000003.jpg", 88, 48),
    ]

    compressed = read_data(client, headers, task_id, type="chunk", number=0, quality="compressed")
    assert compressed.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(compressed.content)) as archive:
        assert archive.namelist() == ["000000.jpeg", "000001.jpeg", "000002.jpeg"]
    original = read_data(client, headers, task_id, type="chunk", number=0, quality="original")
    with zipfile.ZipFile(io.BytesIO(original.content)) as archive:
        assert [archive.read(name) for name in archive.namelist()] == [
            IMAGES[1][1],
            IMAGES[2][1],
            IMAGES[0][1],
        ]
    frame = read_data(client, headers, task_id, type="frame", number=2, quality="original")
    assert frame.content == IMAGES[0][1]
    preview = read_data(client, headers, task_id, type="preview")
    assert preview.headers["content-type"] == "image/jpeg" and preview.content[:2] == b"\xff\xd8"

    # Chunks and the preview were kept in the bucket, and nothing at all on local disk.
    assert [key for key in keys(bucket) if not key.startswith("datasets/")] == sorted(
        [*chunks, f"tasks/{task_id}/preview.jpeg"]
    )
    assert local_media(s3_settings) == []
