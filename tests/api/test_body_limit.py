"""Body size limits: one for ordinary requests, larger ones for uploads and annotation
saves; declared lengths are refused at once, chunked bodies as they pass the limit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from labelyard.app import create_app

MiB = 1024 * 1024


@pytest.fixture
def small_limits(settings, engine, app):
    limited = settings.model_copy(
        update={
            "max_request_bytes": MiB,
            "max_upload_bytes": 3 * MiB,
            "max_annotation_bytes": 2 * MiB,
        }
    )
    limited_app = create_app(limited, engine=engine)
    with TestClient(limited_app) as client:
        yield client
    limited_app.state.runner.shutdown()


def chunked(size: int):
    sent = 0
    while sent < size:
        piece = min(64 * 1024, size - sent)
        sent += piece
        yield b"x" * piece


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/tasks", MiB),
        ("/api/v1/tasks/1/data", 3 * MiB),
        ("/api/v1/jobs/1/annotations", 2 * MiB),
        ("/api/v1/tasks/1/annotations", 2 * MiB),
    ],
)
def test_each_path_has_its_limit(small_limits, path, allowed):
    under = small_limits.post(path, content=b"x" * (allowed - 10))
    assert under.status_code != 413
    over = small_limits.post(path, content=b"x" * (allowed + 10))
    assert over.status_code == 413
    assert str(allowed) in over.json()["detail"]


def test_a_chunked_upload_is_refused_once_it_passes_the_limit(small_limits, factory):
    admin = factory.admin()
    task = factory.task(admin)
    headers = {**factory.headers(admin), "content-type": "application/json"}
    url = f"/api/v1/tasks/{task.id}/data"
    response = small_limits.post(url, headers=headers, content=chunked(4 * MiB))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    fine = small_limits.post(url, headers=headers, content=chunked(2 * MiB))
    assert fine.status_code == 400  # under the limit: read, and refused as bad JSON
