"""Operations on RQ with a real redis-server and `labelyard worker` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from labelyard.adapters.db.engine import make_engine, make_session_factory, migrate
from labelyard.adapters.queue.rq import RqRunner
from labelyard.app import create_app
from labelyard.config import Settings
from labelyard.domain import Operation
from labelyard.services import operations
from labelyard.services.access import Actor
from labelyard.services.uow import UnitOfWork
from tests.factories import Factory
from tests.support.media import jpeg

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def queue(redis_url, fresh_database_url, tmp_path):
    """A fresh database and an empty Redis database, the runner, and a way to start
    `labelyard worker` processes on them."""
    Redis.from_url(redis_url).flushdb()
    engine = make_engine(Settings(database_url=fresh_database_url).resolved_database_url)
    migrate(engine)
    session_factory = make_session_factory(engine)
    runner = RqRunner(redis_url)
    workers: list[subprocess.Popen] = []
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LABELYARD_DATA_DIR": str(tmp_path / "data"),
        "LABELYARD_DATABASE_URL": fresh_database_url,
        "LABELYARD_REDIS_URL": redis_url,
        "LABELYARD_OPERATION_MODULES": "tests.support.operations",
        "LABELYARD_OPERATION_HEARTBEAT_SECONDS": "0.2",
        "LABELYARD_OPERATION_STALE_SECONDS": "1.5",
    }

    def start_worker(*args: str) -> subprocess.Popen:
        command = [str(Path(sys.executable).parent / "labelyard"), "worker", *args]
        log = (tmp_path / f"worker-{len(workers)}.log").open("w")
        workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        return workers[-1]

    def submit(kind: str, params: dict | None = None, owner_id: int | None = None) -> str:
        with UnitOfWork(session_factory) as uow:
            operation = operations.create(uow, kind=kind, params=params or {}, owner_id=owner_id)
            uow.commit()
        runner.submit(operation.id)
        return operation.id

    def load(operation_id: str) -> Operation:
        with UnitOfWork(session_factory, writes=False) as uow:
            return uow.session.get_one(Operation, operation_id)

    def wait(operation_id: str, statuses: set[str], timeout: float = 30) -> Operation:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            operation = load(operation_id)
            if operation.status in statuses:
                return operation
            time.sleep(0.05)
        logs = "\n".join(p.read_text() for p in tmp_path.glob("worker-*.log"))
        raise AssertionError(f"{operation_id} is {load(operation_id).status}\n{logs}")

    class Queue:
        pass

    q = Queue()
    q.session_factory, q.runner, q.start_worker = session_factory, runner, start_worker
    q.submit, q.load, q.wait = submit, load, wait
    yield q
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=10)
    runner.shutdown()
    engine.dispose()


def test_a_worker_runs_queued_operations(queue):
    ids = [queue.submit("test.echo", {"n": n}) for n in range(3)]
    worker = queue.start_worker("--burst")
    assert worker.wait(timeout=60) == 0
    for n, operation_id in enumerate(ids):
        operation = queue.load(operation_id)
        assert (operation.status, operation.result["params"]) == ("finished", {"n": n})


def test_failures_reach_the_operation(queue):
    failing = queue.submit("test.fail", {"file": "dog.png"})
    queue.start_worker("--burst").wait(timeout=60)
    operation = queue.load(failing)
    assert (operation.status, operation.message) == ("failed", "dog.png: the image is truncated")


def test_several_workers_share_the_work(queue):
    ids = [queue.submit("test.steps", {"count": 4, "seconds": 0.1}) for _ in range(8)]
    queue.start_worker()
    queue.start_worker()
    pids = {queue.wait(operation_id, {"finished"}).result["pid"] for operation_id in ids}
    assert len(pids) == 2


def test_a_killed_worker_fails_its_operation_which_can_be_retried(queue):
    owner = Factory(queue.session_factory).user("owner")
    slow = queue.submit("test.steps", {"count": 1000, "seconds": 0.05}, owner_id=owner.id)
    doomed = queue.start_worker()
    started = queue.wait(slow, {"started"})
    assert started.attempts == 1
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)

    # Another worker notices the silent heartbeat and fails the operation.
    queue.start_worker()
    failed = queue.wait(slow, {"failed"})
    assert failed.message == operations.LOST_WORKER_MESSAGE
    assert failed.progress < 1.0

    with UnitOfWork(queue.session_factory) as uow:
        operations.retry(uow, queue.runner, Actor.of(owner), slow)
    finished = queue.wait(slow, {"finished"})
    assert finished.attempts == 2
    assert finished.result["steps"] == 1000


def test_the_worker_needs_redis(tmp_path):
    env = {**os.environ, "LABELYARD_DATA_DIR": str(tmp_path)}
    env.pop("LABELYARD_REDIS_URL", None)
    command = [str(Path(sys.executable).parent / "labelyard"), "worker", "--burst"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "LABELYARD_REDIS_URL" in result.stderr


def test_task_data_runs_on_a_queue_worker(queue, redis_url, fresh_database_url, tmp_path):
    """The server only enqueues; a `labelyard worker` sharing its database and storage
    turns the upload into frames, segments and jobs."""
    settings = Settings(
        data_dir=tmp_path / "data", database_url=fresh_database_url, redis_url=redis_url
    )
    app = create_app(settings)
    factory = Factory(app.state.session_factory)
    admin = factory.admin()
    headers = factory.headers(admin)
    with TestClient(app) as client:
        task = client.post("/api/v1/tasks", headers=headers, json={"name": "queued"}).json()
        files = [(f"client_files[{n}]", (f"{n}.jpg", jpeg(shade=n))) for n in range(3)]
        response = client.post(f"/api/v1/tasks/{task['id']}/data", headers=headers, files=files)
        assert response.status_code == 202, response.text
        status = client.get(f"/api/v1/tasks/{task['id']}/status", headers=headers).json()
        assert status["state"] == "Queued"  # no worker yet
        queue.start_worker("--burst").wait(timeout=60)
        status = client.get(f"/api/v1/tasks/{task['id']}/status", headers=headers).json()
        assert status == {"state": "Finished", "message": ""}
        meta = client.get(f"/api/v1/tasks/{task['id']}/data/meta", headers=headers).json()
        assert [frame["name"] for frame in meta["frames"]] == ["0.jpg", "1.jpg", "2.jpg"]
    app.state.runner.shutdown()
