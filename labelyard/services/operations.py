"""Background operations: the record, the runner protocol, and running one.

A request creates an Operation and hands its id to a runner; whichever process picks it
up calls ``execute``, which looks up the handler registered for the operation's kind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from labelyard.domain import Operation, OperationStatus, utcnow
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, LabelyardError, NotFound
from labelyard.services.uow import UnitOfWork

log = logging.getLogger(__name__)

# Progress reports closer together than this are not written: per-file reports over
# thousands of files would otherwise cost a transaction each.
PROGRESS_INTERVAL = 0.5
RESTART_MESSAGE = "Interrupted: the server restarted while this operation ran. Retry it."
LOST_WORKER_MESSAGE = "Interrupted: the worker running this operation stopped. Retry it."


class OperationRunner(Protocol):
    """Runs operations somewhere: in this process, or on queue workers."""

    def submit(self, operation_id: str) -> None:
        """Arrange for ``execute`` to run the operation (it is already committed)."""

    def shutdown(self) -> None:
        """Stop taking work; wait for what runs here."""


class OperationCancelled(Exception):
    """Raised inside a handler when someone asked to cancel its operation."""


class OperationContext:
    """What a handler gets: its parameters, a way to report progress, and the process's
    dependencies (settings, database, storage) through ``deps``."""

    def __init__(self, operation: Operation, deps: Any, session_factory: sessionmaker[Session]):
        self.operation_id = operation.id
        self.kind = operation.kind
        self.params = dict(operation.params)
        self.owner_id = operation.owner_id
        self.attempt = operation.attempts
        self.deps = deps
        self.session_factory = session_factory
        self._last_progress = 0.0

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def progress(
        self,
        fraction: float,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        force: bool = False,
    ) -> None:
        """Record progress (0-1), an optional message and details (counters, per-file
        errors), at most every PROGRESS_INTERVAL seconds unless ``force``; raises
        OperationCancelled when a cancel was asked for, so handlers stop at a step."""
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        values: dict[str, Any] = {"progress": min(max(fraction, 0.0), 1.0), "heartbeat": utcnow()}
        if message is not None:
            values["message"] = storable(message)
        if details is not None:
            values["details"] = details
        with self.uow() as uow:
            uow.session.execute(
                update(Operation).where(Operation.id == self.operation_id).values(**values)
            )
            cancel = uow.session.scalar(
                select(Operation.cancel_requested).where(Operation.id == self.operation_id)
            )
            uow.commit()
        if cancel:
            raise OperationCancelled()


Handler = Callable[[OperationContext], dict[str, Any] | None]


@dataclass
class HandlerRegistry:
    """Operation kinds and their handlers; an object, so tests can build their own."""

    handlers: dict[str, Handler] = field(default_factory=dict)

    def register(self, kind: str) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            if kind in self.handlers:
                raise ValueError(f"operation kind {kind!r} is already registered")
            self.handlers[kind] = handler
            return handler

        return add

    def get(self, kind: str) -> Handler | None:
        return self.handlers.get(kind)


def create(
    uow: UnitOfWork,
    *,
    kind: str,
    params: dict[str, Any] | None = None,
    owner_id: int | None = None,
    target: str = "",
) -> Operation:
    """A queued operation, added to the unit of work; submit it after the commit."""
    operation = Operation(kind=kind, params=params or {}, owner_id=owner_id, target=target)
    uow.session.add(operation)
    uow.flush()
    return operation


def get_operation(uow: UnitOfWork, actor: Actor, operation_id: str) -> Operation:
    operation = uow.session.get(Operation, operation_id)
    if operation is None or not (actor.is_admin or operation.owner_id == actor.id):
        raise NotFound()
    return operation


def latest_for(uow: UnitOfWork, target: str, kind: str) -> Operation | None:
    return uow.session.scalar(
        select(Operation)
        .where(Operation.target == target, Operation.kind == kind)
        .order_by(Operation.created.desc())
        .limit(1)
    )


def retry(uow: UnitOfWork, runner: OperationRunner, actor: Actor, operation_id: str) -> Operation:
    operation = get_operation(uow, actor, operation_id)
    if operation.status not in (OperationStatus.FAILED, OperationStatus.CANCELLED):
        raise Conflict(
            f"Only a failed or cancelled operation can be retried; it is {operation.status}."
        )
    operation.status = OperationStatus.QUEUED
    operation.progress = 0.0
    operation.message = ""
    operation.result = None
    operation.cancel_requested = False
    operation.started = operation.finished = operation.heartbeat = None
    uow.commit()
    runner.submit(operation.id)
    return operation


def cancel(uow: UnitOfWork, actor: Actor, operation_id: str) -> Operation:
    """A queued operation is cancelled at once; a started one at its next progress step."""
    operation = get_operation(uow, actor, operation_id)
    if operation.is_done:
        raise Conflict(f"The operation has already {operation.status}.")
    if operation.status == OperationStatus.QUEUED:
        _finish(operation, OperationStatus.CANCELLED, "Cancelled before it started.")
    else:
        operation.cancel_requested = True
    uow.commit()
    return operation


def fail_unfinished(uow: UnitOfWork, message: str, *, stale_after: timedelta | None = None) -> int:
    """Mark operations that can no longer finish as failed: all queued and started ones
    (an in-process runner after a restart), or with ``stale_after``, started ones whose
    heartbeat stopped that long ago (a queue worker died)."""
    now = utcnow()
    condition: ColumnElement[bool]
    if stale_after is None:
        condition = Operation.status.in_([OperationStatus.QUEUED, OperationStatus.STARTED])
    else:
        limit = now - stale_after
        condition = (Operation.status == OperationStatus.STARTED) & or_(
            Operation.heartbeat < limit, Operation.heartbeat.is_(None) & (Operation.started < limit)
        )
    result = uow.session.execute(
        update(Operation)
        .where(condition)
        .values(status=OperationStatus.FAILED, message=message, finished=now)
        .execution_options(synchronize_session=False)
    )
    uow.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _finish(operation: Operation, status: OperationStatus, message: str) -> None:
    operation.status = status
    operation.message = storable(message)
    operation.finished = utcnow()


def execute(
    operation_id: str,
    *,
    registry: HandlerRegistry,
    session_factory: sessionmaker[Session],
    deps: Any,
    heartbeat_seconds: float = 5.0,
) -> None:
    """Run one operation to its end, recording start, heartbeats, result or failure.
    Errors the user can act on (LabelyardError, and handlers' own messages) become the
    operation's message; anything else is logged and reported as an internal error."""
    now = utcnow()
    with UnitOfWork(session_factory) as uow:
        # Claim it with one conditional update, so two workers never both run it.
        claimed = uow.session.execute(
            update(Operation)
            .where(Operation.id == operation_id, Operation.status == OperationStatus.QUEUED)
            .values(
                status=OperationStatus.STARTED,
                started=now,
                heartbeat=now,
                attempts=Operation.attempts + 1,
            )
        )
        uow.commit()
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return  # cancelled meanwhile, or taken by another worker
    with UnitOfWork(session_factory, writes=False) as uow:
        operation = uow.session.get_one(Operation, operation_id)
        context = OperationContext(operation, deps, session_factory)
    handler = registry.get(context.kind)
    if handler is None:
        message = f"Unknown operation kind {context.kind!r}."
        _record_end(session_factory, operation_id, OperationStatus.FAILED, message, None)
        return

    stop = threading.Event()
    beat = threading.Thread(
        target=_beat, args=(session_factory, operation_id, stop, heartbeat_seconds), daemon=True
    )
    beat.start()
    try:
        result = handler(context)
    except OperationCancelled:
        _record_end(session_factory, operation_id, OperationStatus.CANCELLED, "Cancelled.", None)
    except (LabelyardError, UserFacingError) as exc:
        detail = exc.detail if isinstance(exc, LabelyardError) else str(exc)
        _record_end(session_factory, operation_id, OperationStatus.FAILED, detail, None)
    except Exception as exc:
        log.exception("operation %s (%s) failed", operation_id, context.kind)
        message = f"Internal error ({type(exc).__name__}); the server log has the details."
        _record_end(session_factory, operation_id, OperationStatus.FAILED, message, None)
    else:
        _record_end(session_factory, operation_id, OperationStatus.FINISHED, "", result or {})
    finally:
        stop.set()
        beat.join()


def storable(message: str) -> str:
    """``message`` as a text column holds it: a NUL byte (a file name may carry one into
    a message) is written out, which PostgreSQL's text could not store."""
    return message.replace("\x00", "\\x00")


class UserFacingError(Exception):
    """An operation failure whose message is meant for the user (it names the bad file,
    the bad URL, ...). Adapters' own error types may subclass it."""


def _record_end(
    session_factory: sessionmaker[Session],
    operation_id: str,
    status: OperationStatus,
    message: str,
    result: dict[str, Any] | None,
) -> None:
    with UnitOfWork(session_factory) as uow:
        operation = uow.session.get(Operation, operation_id)
        if operation is None:
            return
        _finish(operation, status, message)
        if status == OperationStatus.FINISHED:
            operation.progress = 1.0
            operation.result = result
        uow.commit()


def _beat(
    session_factory: sessionmaker[Session], operation_id: str, stop: threading.Event, every: float
) -> None:
    while not stop.wait(every):
        try:
            with UnitOfWork(session_factory) as uow:
                running = (Operation.id == operation_id) & (
                    Operation.status == OperationStatus.STARTED
                )
                uow.session.execute(update(Operation).where(running).values(heartbeat=utcnow()))
                uow.commit()
        except Exception:  # a missed beat is not worth failing the operation for
            log.warning("heartbeat of operation %s failed", operation_id, exc_info=True)
