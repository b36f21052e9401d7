"""Operations on the in-process runner: lifecycle, failures, cancel, retry, restarts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from labelyard.app import create_app
from labelyard.domain import Operation, utcnow
from labelyard.services import operations
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, NotFound
from labelyard.services.uow import UnitOfWork


def submit(app, kind, params=None, owner=None) -> str:
    with UnitOfWork(app.state.session_factory) as uow:
        operation = operations.create(
            uow, kind=kind, params=params or {}, owner_id=owner.id if owner else None
        )
        uow.commit()
    app.state.runner.submit(operation.id)
    return operation.id


def load(app, operation_id) -> Operation:
    with UnitOfWork(app.state.session_factory, writes=False) as uow:
        return uow.session.get_one(Operation, operation_id)


def wait_done(app, operation_id, timeout=10.0) -> Operation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        operation = load(app, operation_id)
        if operation.is_done:
            return operation
        time.sleep(0.02)
    raise AssertionError(f"operation still {load(app, operation_id).status}")


def wait_status(app, operation_id, status, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while load(app, operation_id).status != status:
        assert time.monotonic() < deadline, f"never reached {status}"
        time.sleep(0.02)


def test_an_operation_runs_to_its_result(app):
    operation = wait_done(app, submit(app, "test.steps", {"count": 3}))
    assert operation.status == "finished"
    assert operation.progress == 1.0
    assert operation.result["steps"] == 3
    assert operation.attempts == 1
    assert operation.started <= operation.finished


def test_a_handler_failure_keeps_its_message(app):
    operation = wait_done(app, submit(app, "test.fail", {"file": "cat.jpg"}))
    assert (operation.status, operation.message) == ("failed", "cat.jpg: the image is truncated")


def test_a_message_naming_a_file_with_a_nul_byte_is_kept_written_out(app):
    # PostgreSQL's text holds no NUL byte: the failure must still be recorded.
    operation = wait_done(app, submit(app, "test.fail", {"file": "c\x00t.jpg"}))
    assert (operation.status, operation.message) == (
        "failed", "c\\x00t.jpg: the image is truncated",
    )  # fmt: skip


def test_a_bug_is_reported_without_its_internals(app):
    operation = wait_done(app, submit(app, "test.crash"))
    assert operation.status == "failed"
    assert operation.message.startswith("Internal error (RuntimeError)")
    assert "a bug" not in operation.message


def test_an_unknown_kind_fails(app):
    operation = wait_done(app, submit(app, "no.such.kind"))
    assert (operation.status, operation.message) == (
        "failed",
        "Unknown operation kind 'no.such.kind'.",
    )


def test_an_operation_runs_once_however_often_it_is_delivered(app):
    runtime = app.state.runtime
    with UnitOfWork(app.state.session_factory) as uow:
        operation = operations.create(uow, kind="test.echo")
        uow.commit()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: runtime.run(operation.id), range(4)))
    assert load(app, operation.id).attempts == 1


def test_cancel_a_started_operation_stops_it_at_a_step(app, factory):
    owner = factory.user("owner")
    operation_id = submit(app, "test.steps", {"count": 200, "seconds": 0.02}, owner)
    wait_status(app, operation_id, "started")
    with UnitOfWork(app.state.session_factory) as uow:
        operations.cancel(uow, Actor.of(owner), operation_id)
    operation = wait_done(app, operation_id)
    assert operation.status == "cancelled"
    assert operation.progress < 1.0


def test_a_failed_operation_can_be_retried(app, factory):
    owner, other = factory.user("owner"), factory.user("other")
    operation_id = submit(app, "test.crash", owner=owner)
    wait_done(app, operation_id)
    with UnitOfWork(app.state.session_factory) as uow:
        with pytest.raises(NotFound):
            operations.retry(uow, app.state.runner, Actor.of(other), operation_id)
        operations.retry(uow, app.state.runner, Actor.of(owner), operation_id)
    operation = wait_done(app, operation_id)
    assert operation.attempts == 2
    with UnitOfWork(app.state.session_factory) as uow, pytest.raises(Conflict):
        operations.cancel(uow, Actor.of(owner), operation_id)


def test_a_restart_fails_what_the_last_run_left_unfinished(app, settings, engine):
    with UnitOfWork(app.state.session_factory) as uow:
        queued = operations.create(uow, kind="test.echo")
        started = operations.create(uow, kind="test.echo")
        started.status, started.started = "started", utcnow()
        done = operations.create(uow, kind="test.echo")
        done.status = "finished"
        uow.commit()
    restarted = create_app(settings, engine=engine)
    for operation_id in (queued.id, started.id):
        operation = load(restarted, operation_id)
        assert (operation.status, operation.message) == ("failed", operations.RESTART_MESSAGE)
    assert load(restarted, done.id).status == "finished"


def test_started_operations_with_a_silent_worker_are_failed(app):
    now = utcnow()
    with UnitOfWork(app.state.session_factory) as uow:
        silent = operations.create(uow, kind="test.echo")
        silent.status, silent.started, silent.heartbeat = "started", now, now - timedelta(minutes=5)
        alive = operations.create(uow, kind="test.echo")
        alive.status, alive.started, alive.heartbeat = "started", now, now
        uow.commit()
        count = operations.fail_unfinished(
            uow, operations.LOST_WORKER_MESSAGE, stale_after=timedelta(seconds=60)
        )
    assert count == 1
    assert load(app, silent.id).message == operations.LOST_WORKER_MESSAGE
    assert load(app, alive.id).status == "started"


def test_operations_over_http(client, factory, app):
    owner, other = factory.user("owner"), factory.user("other")
    operation_id = submit(app, "test.crash", owner=owner)
    wait_done(app, operation_id)
    url = f"/api/v1/operations/{operation_id}"
    body = client.get(url, headers=factory.headers(owner)).json()
    assert (body["status"], body["kind"], body["attempts"]) == ("failed", "test.crash", 1)
    assert client.get(url, headers=factory.headers(other)).status_code == 404
    listed = client.get("/api/v1/operations", headers=factory.headers(owner)).json()
    assert [item["id"] for item in listed["results"]] == [operation_id]
    retried = client.post(f"{url}/retry", headers=factory.headers(owner))
    assert retried.status_code == 202
    assert wait_done(app, operation_id).attempts == 2
    assert client.post(f"{url}/cancel", headers=factory.headers(owner)).status_code == 409
