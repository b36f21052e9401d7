"""Storage fixtures: moto's S3 server on loopback for the session, and a ``storage`` fixture
that runs each contract test against the local directory and against S3."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from labelyard.adapters.storage import LocalStorage, S3Storage, Storage, UrlSigner

SECRET = b"test-secret"


def make_s3(endpoint: str) -> S3Storage:
    """An S3Storage on a bucket no other test uses."""
    return S3Storage(
        f"test-{uuid.uuid4().hex[:16]}",
        endpoint_url=endpoint,
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
    )


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each backend in turn: LocalStorage in tmp_path, S3Storage on a fresh moto bucket."""
    if request.param == "local":
        return LocalStorage(tmp_path / "media", UrlSigner(SECRET))
    return make_s3(request.getfixturevalue("s3_endpoint"))
