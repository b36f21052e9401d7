"""Storage fixtures: moto's S3 server on loopback for the session, and a ``storage`` fixture
that runs each contract test against the local directory and against S3."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from labelyard.adapters.storage import LocalStorage, S3Storage, Storage, UrlSigner

SECRET = b"test-secret"
STARTUP_SECONDS = 30


def _moto_server() -> str:
    beside_python = Path(sys.executable).parent / "moto_server"
    found = str(beside_python) if beside_python.exists() else shutil.which("moto_server")
    if not found:
        pytest.fail("moto_server is missing: install the test extra (pip install -e '.[test]').")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server running for this test session."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [_moto_server(), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"moto_server exited early:\n{log_path.read_text()}")
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer:\n{log_path.read_text()}")
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


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
