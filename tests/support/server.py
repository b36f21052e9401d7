"""``labelyard serve`` in a subprocess, on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.services import free_port


class Server:
    """``labelyard serve`` on ``database_url``, its output in ``log``; ``env`` adds to the
    environment it inherits. The first admin is ``root``, its password printed once."""

    def __init__(
        self, data_dir: Path, database_url: str, *, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"serve-{self.port}.log"
        environment = {
            **os.environ,
            "LABELYARD_DATA_DIR": str(data_dir),
            "LABELYARD_DATABASE_URL": database_url,
            "LABELYARD_ADMIN_USERNAME": "root",
            **(env or {}),
        }
        environment.pop("LABELYARD_ADMIN_PASSWORD", None)
        command = [
            str(Path(sys.executable).parent / "labelyard"),
            "serve",
            "--port",
            str(self.port),
        ]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"labelyard serve exited:\n{self.output()}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"labelyard serve did not answer:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
