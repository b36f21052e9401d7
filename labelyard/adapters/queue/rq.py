"""Operations on RQ: the server enqueues, `labelyard worker` processes run them."""

from __future__ import annotations

import uuid

from redis import Redis
from rq import Queue, SimpleWorker

QUEUE_NAME = "labelyard"
ENTRY_POINT = "labelyard.worker.run_queued"
# Operations report their own progress and failures; RQ only has to deliver them.
JOB_TIMEOUT = 7 * 24 * 3600
FAILURE_TTL = 7 * 24 * 3600


class RqRunner:
    """Enqueues operation ids on Redis; any number of workers on any machines share them."""

    def __init__(self, redis_url: str, queue_name: str = QUEUE_NAME) -> None:
        self.connection = Redis.from_url(redis_url)
        self.queue = Queue(queue_name, connection=self.connection)

    def submit(self, operation_id: str) -> None:
        # A retried operation is enqueued again under a new job id.
        self.queue.enqueue(
            ENTRY_POINT,
            operation_id,
            job_id=f"{operation_id}_{uuid.uuid4().hex[:8]}",
            job_timeout=JOB_TIMEOUT,
            result_ttl=0,
            failure_ttl=FAILURE_TTL,
        )

    def shutdown(self) -> None:
        self.connection.close()


def work(redis_url: str, *, burst: bool = False, queue_name: str = QUEUE_NAME) -> None:
    """Process jobs until stopped (or, with ``burst``, until the queue is empty).

    A SimpleWorker runs jobs in its own process, without forking one per job: the
    database pool and decoders stay warm, and killing the worker stops its job.
    """
    connection = Redis.from_url(redis_url)
    worker = SimpleWorker([Queue(queue_name, connection=connection)], connection=connection)
    worker.work(burst=burst, with_scheduler=False)
