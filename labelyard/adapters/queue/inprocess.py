"""The default runner: a few threads in the server process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class InProcessRunner:
    """Runs operations on a thread pool inside this process. Queued work lives only in
    memory, so the server marks unfinished operations failed when it starts again."""

    def __init__(self, run: Callable[[str], None], workers: int = 2) -> None:
        self._run = run
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="operation")

    def submit(self, operation_id: str) -> None:
        self._pool.submit(self._guarded, operation_id)

    def _guarded(self, operation_id: str) -> None:
        try:
            self._run(operation_id)
        except Exception:  # execute() records failures; this is a last line of defence
            log.exception("operation %s crashed its runner", operation_id)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
