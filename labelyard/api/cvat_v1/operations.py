"""``/operations``: background work and its progress (every seed's "progress id")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from labelyard.api.deps import ActorDep, UowDep
from labelyard.api.pagination import Page, PageDep, paginate
from labelyard.api.routing import GatedRouter
from labelyard.domain import Operation
from labelyard.services import operations
from labelyard.services.listing import order_by

router = GatedRouter(prefix="/operations", tags=["operations"])


class OperationOut(BaseModel):
    id: str
    kind: str
    status: str
    progress: float
    message: str
    result: dict[str, Any] | None
    target: str
    owner_id: int | None
    attempts: int
    created: datetime
    started: datetime | None
    finished: datetime | None

    @classmethod
    def of(cls, operation: Operation) -> OperationOut:
        return cls(
            id=operation.id,
            kind=operation.kind,
            status=operation.status,
            progress=operation.progress,
            message=operation.message,
            result=operation.result,
            target=operation.target,
            owner_id=operation.owner_id,
            attempts=operation.attempts,
            created=operation.created,
            started=operation.started,
            finished=operation.finished,
        )


@router.get("", response_model=Page[OperationOut])
def list_operations(
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    target: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[OperationOut]:
    """Your operations, newest first (an admin's: everyone's)."""
    stmt = select(Operation)
    if not actor.is_admin:
        stmt = stmt.where(Operation.owner_id == actor.id)
    for column, value in ((Operation.kind, kind), (Operation.status, status),
                          (Operation.target, target)):  # fmt: skip
        if value is not None:
            stmt = stmt.where(column == value)
    stmt = order_by(stmt, None, {"id": Operation.created}, default="-id")
    return paginate(uow.session, stmt, page, request, OperationOut.of)


def _runner(request: Request) -> operations.OperationRunner:
    runner: operations.OperationRunner = request.app.state.runner
    return runner


RunnerDep = Annotated[operations.OperationRunner, Depends(_runner)]


@router.get("/{operation_id}", response_model=OperationOut)
def read_operation(operation_id: str, actor: ActorDep, uow: UowDep) -> OperationOut:
    return OperationOut.of(operations.get_operation(uow, actor, operation_id))


@router.post("/{operation_id}/retry", status_code=202, response_model=OperationOut)
def retry_operation(
    operation_id: str, actor: ActorDep, uow: UowDep, runner: RunnerDep
) -> OperationOut:
    """Queue a failed or cancelled operation again, with the same parameters."""
    return OperationOut.of(operations.retry(uow, runner, actor, operation_id))


@router.post("/{operation_id}/cancel", response_model=OperationOut)
def cancel_operation(operation_id: str, actor: ActorDep, uow: UowDep) -> OperationOut:
    """Cancel a queued operation now, or a started one at its next step."""
    return OperationOut.of(operations.cancel(uow, actor, operation_id))
