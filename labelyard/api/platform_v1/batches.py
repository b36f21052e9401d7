"""``/projects/{projectID}/batches``: named groups of a project's work items."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import case, func, select

from labelyard.api.deps import ActorDep, UowDep
from labelyard.api.platform_v1.wire import PageQueryDep, batch_json, page_json
from labelyard.api.routing import GatedRouter
from labelyard.domain import Project, WorkBatch, WorkItem, WorkStatus
from labelyard.services import keyset
from labelyard.services.errors import InvalidInput, NotFound
from labelyard.services.fields import JsonObject
from labelyard.services.uow import UnitOfWork
from labelyard.services.workflow import items
from labelyard.services.workflow.items import CamelWrite
from labelyard.services.workflow.projects import get_project

router = GatedRouter(prefix="/projects/{project_id}/batches", tags=["work: batches"])


class BatchCreate(CamelWrite):
    name: str = Field(min_length=1, max_length=256)
    metadata: JsonObject = Field(default_factory=dict)


class BatchUpdate(CamelWrite):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: JsonObject | None = None


@router.get("")
def list_batches(
    project_id: str, actor: ActorDep, uow: UowDep, paging: PageQueryDep
) -> dict[str, Any]:
    """Each batch with ``totalCount`` and ``completedCount`` of its items."""
    project = get_project(uow.session, actor, project_id)
    items.default_batch_if_any(uow, project)
    result = keyset.page(
        uow.session,
        select(WorkBatch).where(WorkBatch.project_id == project.id),
        WorkBatch.id,
        codec=paging.codec,
        scope=f"batches:{project.uuid}",
        limit=paging.limit,
        cursor=paging.cursor,
        direction=paging.direction,
    )
    counts = _counts(uow, [batch.id for batch in result.rows])
    return page_json(
        result, "batch", lambda batch: batch_json(batch, project, counts.get(batch.id, (0, 0)))
    )


@router.post("", status_code=201)
def create_batch(
    project_id: str, body: BatchCreate, actor: ActorDep, uow: UowDep
) -> dict[str, Any]:
    project = get_project(uow.session, actor, project_id)
    items.check_manager(actor, project)
    _check_name_free(uow, project, body.name)
    batch = WorkBatch(
        project_id=project.id, name=body.name, meta=body.metadata, created_by_id=actor.id
    )
    uow.session.add(batch)
    uow.commit()
    return batch_json(batch, project)


@router.patch("/{batch_id}")
def update_batch(
    project_id: str, batch_id: str, body: BatchUpdate, actor: ActorDep, uow: UowDep
) -> dict[str, Any]:
    project = get_project(uow.session, actor, project_id)
    batch = _batch(uow, project, batch_id)
    items.check_manager(actor, project)
    if body.name is not None and body.name != batch.name:
        _check_name_free(uow, project, body.name)
        batch.name = body.name
    if body.metadata is not None:
        batch.meta = body.metadata
    uow.commit()
    return batch_json(batch, project)


def _batch(uow: UnitOfWork, project: Project, batch_id: str) -> WorkBatch:
    batch = None
    if batch_id.isascii() and batch_id.isdigit() and len(batch_id) < 10:
        batch = uow.session.get(WorkBatch, int(batch_id))
    if batch is None or batch.project_id != project.id:
        raise NotFound("No such batch.")
    return batch


def _check_name_free(uow: UnitOfWork, project: Project, name: str) -> None:
    taken = uow.session.scalar(
        select(WorkBatch.id).where(WorkBatch.project_id == project.id, WorkBatch.name == name)
    )
    if taken is not None:
        raise InvalidInput.on("name", f'The project already has a batch "{name}".')


def _counts(uow: UnitOfWork, batch_ids: list[int]) -> dict[int, tuple[int, int]]:
    if not batch_ids:
        return {}
    done = func.sum(case((WorkItem.status == WorkStatus.COMPLETED, 1), else_=0))
    rows = uow.session.execute(
        select(WorkItem.batch_id, func.count(), done)
        .where(WorkItem.batch_id.in_(batch_ids))
        .group_by(WorkItem.batch_id)
    )
    return {batch_id: (total, int(completed or 0)) for batch_id, total, completed in rows}
