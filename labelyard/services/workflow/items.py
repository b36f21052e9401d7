"""Work items: making them, finding them, listing them with filters, changing them."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from sqlalchemy import Integer, Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from labelyard.adapters.storage import Storage
from labelyard.domain import (
    DEFAULT_BATCH,
    Asset,
    Dataset,
    Project,
    WorkBatch,
    WorkItem,
    WorkKind,
    WorkStatus,
    utcnow,
)
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.errors import InvalidInput, NotFound, PermissionDenied
from labelyard.services.fields import MAX_INT, JsonObject, WriteModel
from labelyard.services.uow import UnitOfWork
from labelyard.services.workflow import stages
from labelyard.services.workflow.placement import place
from labelyard.services.workflow.projects import canonical_uuid, member_by_email

MAX_DUE_SECONDS = 2_592_000  # 30 days, as seed 004 bounds dueInSeconds
MAX_FILTER_IDS = 100
URL_MAX = 2000


class CamelWrite(WriteModel):
    """A work-face body: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, alias_generator=to_camel, populate_by_name=False
    )


class WorkItemCreate(CamelWrite):
    asset_url: str | None = Field(default=None, max_length=URL_MAX)
    asset_id: int | None = Field(default=None, ge=0, le=MAX_INT)
    batch_id: int | None = Field(default=None, ge=1, le=MAX_INT)
    results_url: str = Field(default="", max_length=URL_MAX)
    taxonomy_version_id: str | None = Field(default=None, max_length=36)
    metadata: JsonObject = Field(default_factory=dict)
    due_in_seconds: int | None = Field(default=None, ge=1, le=MAX_DUE_SECONDS)
    difficulty: int = Field(default=0, ge=0, le=100)
    asset_type: Literal["image", "video", "external"] = "image"
    labels: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _names_an_asset(self) -> WorkItemCreate:
        if self.asset_id is None and not self.asset_url:
            raise ValueError("Give assetId (or assetUrl, a path from upload-urls).")
        return self

    @field_validator("taxonomy_version_id")
    @classmethod
    def _a_uuid(cls, value: str | None) -> str | None:
        if value is not None and canonical_uuid(value) is None:
            raise ValueError("A UUID.")
        return value


@dataclass
class ItemFilter:
    work_item_ids: list[str] = field(default_factory=list)
    batch_ids: list[int] = field(default_factory=list)
    status: WorkStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    assignee_id: int | None = None
    kinds: tuple[WorkKind, ...] = ()
    dataset_id: int | None = None


def default_batch(session: Session, project: Project, actor_id: int | None) -> WorkBatch:
    batch = session.scalars(
        select(WorkBatch).where(WorkBatch.project_id == project.id, WorkBatch.name == DEFAULT_BATCH)
    ).first()
    if batch is None:
        batch = WorkBatch(project_id=project.id, name=DEFAULT_BATCH, created_by_id=actor_id)
        session.add(batch)
        session.flush()
    return batch


def default_batch_if_any(uow: UnitOfWork, project: Project) -> None:
    """Make the project's Default batch if it has none yet (for a reading unit of work:
    a project's batches always include it)."""
    exists = uow.session.scalar(
        select(WorkBatch.id).where(
            WorkBatch.project_id == project.id, WorkBatch.name == DEFAULT_BATCH
        )
    )
    if exists is None:
        uow.start_writing()
        try:
            default_batch(uow.session, project, None)
            uow.commit()
        except IntegrityError:  # made meanwhile by another request
            uow.session.rollback()


def check_manager(actor: Actor, project: Project) -> None:
    if not access.manages_work(actor, project):
        raise PermissionDenied("Only a manager of the project does this.")


def create(
    session: Session, storage: Storage, actor: Actor, project: Project, data: WorkItemCreate
) -> WorkItem:
    """One new item in the project's current workflow, at its first stage."""
    check_manager(actor, project)
    lock_project(session, project)
    batch = _batch(session, project, data.batch_id, actor.id)
    asset = _asset(session, project, data)
    now = utcnow()
    item = new_item(session, project, batch, WorkKind.FILE, now=now)
    item.asset_url = data.asset_url or ""
    item.asset_type = data.asset_type
    item.results_url = data.results_url
    item.taxonomy_version_id = data.taxonomy_version_id
    item.meta = data.metadata
    item.difficulty = data.difficulty
    set_due(item, data.due_in_seconds, now)
    if asset is not None:
        where = place(session, storage, project, asset)
        item.asset_id, item.dataset_id = asset.id, asset.dataset_id
        item.task_id, item.frame = where.task_id, where.frame
    session.flush()
    return item


def lock_project(session: Session, project: Project) -> None:
    """Item makers of one project take turns (a row lock on PostgreSQL; SQLite's write
    transaction already serializes them): the first makes the Default batch, the workflow's
    first version and the work task, which the others then find, and each new frame of a
    work task gets the next number."""
    session.execute(select(Project.id).where(Project.id == project.id).with_for_update())


def new_item(
    session: Session,
    project: Project,
    batch: WorkBatch,
    kind: WorkKind,
    *,
    now: datetime,
    source_key: str | None = None,
) -> WorkItem:
    workflow = stages.current(session, project)
    item = WorkItem(
        project_id=project.id,
        batch_id=batch.id,
        workflow=workflow,
        workflow_id=workflow.id,
        kind=kind.value,
        status=WorkStatus.NEW,
        source_key=source_key,
        meta={},
        label_meta={},
        feedback=[],
        created_date=now,
        updated_date=now,
    )
    item.enter(0)
    session.add(item)
    return item


def set_due(item: WorkItem, due_in_seconds: int | None, now: datetime) -> None:
    item.due_in_seconds = due_in_seconds
    item.due_at = now + timedelta(seconds=due_in_seconds) if due_in_seconds else None


def _batch(session: Session, project: Project, batch_id: int | None, actor_id: int) -> WorkBatch:
    if batch_id is None:
        return default_batch(session, project, actor_id)
    batch = session.get(WorkBatch, batch_id)
    if batch is None or batch.project_id != project.id:
        raise InvalidInput.on("batchId", f"No batch {batch_id} in this project.")
    return batch


def _asset(session: Session, project: Project, data: WorkItemCreate) -> Asset | None:
    """The stored asset the item works on: by id, or by the path an upload URL gave.
    Another URL is kept as the item's ``assetUrl`` with nothing stored behind it."""
    in_space = (
        select(Asset)
        .join(Dataset, Dataset.id == Asset.dataset_id)
        .where(Dataset.space_id == project.space_id)
    )
    if data.asset_id is not None:
        asset = session.scalars(in_space.where(Asset.id == data.asset_id)).first()
        if asset is None:
            raise InvalidInput.on("assetId", f"No asset {data.asset_id} in this space.")
        return asset
    if data.asset_url:
        return session.scalars(
            in_space.where(Asset.extra["uploadPath"].as_string() == data.asset_url).limit(1)
        ).first()
    return None


def get(
    session: Session, actor: Actor, project: Project, item_uuid: str, *, for_update: bool = False
) -> WorkItem:
    key = canonical_uuid(item_uuid)
    item = None
    if key is not None:
        stmt = _by_uuid(access.sees_all_work(actor, project), for_update)
        values = {"project_id": project.id, "uuid": key, "actor_id": actor.id}
        item = session.scalars(stmt, values).first()
    if item is None:
        raise NotFound("No such work item.")
    return item


@functools.cache
def _by_uuid(sees_all: bool, for_update: bool) -> Select[WorkItem]:
    # Built once with parameters: making the expressions cost more than running them.
    stmt = select(WorkItem).where(
        WorkItem.project_id == bindparam("project_id"), WorkItem.uuid == bindparam("uuid")
    )
    if not sees_all:
        stmt = stmt.where(access.worked_on_by(bindparam("actor_id", type_=Integer)))
    return stmt.with_for_update(of=WorkItem) if for_update else stmt


def listing(actor: Actor, project: Project, filters: ItemFilter) -> Select[WorkItem]:
    stmt = select(WorkItem).where(
        WorkItem.project_id == project.id, access.visible_work_items(actor, project)
    )
    if filters.work_item_ids:
        stmt = stmt.where(WorkItem.uuid.in_(filters.work_item_ids))
    if filters.batch_ids:
        stmt = stmt.where(WorkItem.batch_id.in_(filters.batch_ids))
    if filters.status is not None:
        stmt = stmt.where(WorkItem.status == filters.status)
    if filters.created_from is not None:
        stmt = stmt.where(WorkItem.created_date >= filters.created_from)
    if filters.created_to is not None:
        stmt = stmt.where(WorkItem.created_date <= filters.created_to)
    if filters.updated_from is not None:
        stmt = stmt.where(WorkItem.updated_date >= filters.updated_from)
    if filters.updated_to is not None:
        stmt = stmt.where(WorkItem.updated_date <= filters.updated_to)
    if filters.assignee_id is not None:
        stmt = stmt.where(WorkItem.assignee_id == filters.assignee_id)
    if filters.kinds:
        stmt = stmt.where(WorkItem.kind.in_([kind.value for kind in filters.kinds]))
    if filters.dataset_id is not None:
        stmt = stmt.where(WorkItem.dataset_id == filters.dataset_id)
    return stmt


class ItemUpdate(CamelWrite):
    """Seed 003's task update: who does it, by when, how hard it is, its metadata."""

    assignee: str | None = Field(default=None, max_length=254)
    due: datetime | None = None
    difficulty: int | None = Field(default=None, ge=0, le=100)
    metadata: JsonObject | None = None


def update(
    session: Session, actor: Actor, project: Project, item: WorkItem, data: ItemUpdate
) -> WorkItem:
    check_manager(actor, project)
    fields = data.model_fields_set
    if "assignee" in fields:
        if item.status in (WorkStatus.COMPLETED, WorkStatus.FAILED):
            raise InvalidInput.on("assignee", f"The work item is {item.status}; reopen it first.")
        if data.assignee:
            user = member_by_email(session, project.space_id, data.assignee, "assignee")
            if item.in_review and user.id == item.labeller_id:
                raise InvalidInput.on("assignee", "Nobody reviews their own labelling.")
            if item.assignee_id != user.id and item.status == WorkStatus.IN_PROGRESS:
                # Handing a claimed item to someone else ends the first claim.
                item.status = WorkStatus.NEW
                item.leased_until = None
            item.assignee_id = user.id
        else:
            item.assignee_id = None
            item.status = WorkStatus.NEW if item.status == WorkStatus.IN_PROGRESS else item.status
            item.leased_until = None
    if "due" in fields:
        due = data.due
        if due is not None and due.tzinfo is None:
            raise InvalidInput.on("due", "Give a time zone (Z for UTC).")
        item.due_at = due
        item.due_in_seconds = None
    if data.difficulty is not None:
        item.difficulty = data.difficulty
    if data.metadata is not None:
        item.meta = data.metadata
    item.updated_date = utcnow()
    session.flush()
    return item
