"""Operation runners for tests."""

from __future__ import annotations

from typing import Any


class HeldRunner:
    """Keeps submitted operations queued until ``release``: a request that comes after
    the one that started an operation certainly finds it still queued."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.held: list[str] = []

    def submit(self, operation_id: str) -> None:
        self.held.append(operation_id)

    def release(self) -> None:
        for operation_id in self.held:
            self.runner.submit(operation_id)
        self.held = []

    def shutdown(self) -> None:
        self.runner.shutdown()
