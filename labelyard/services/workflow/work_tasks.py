"""Seed 003's tasks: the work face's older shape of the same work items.

A seed 003 *task* is one stage of a work item ("two stages such as Labelling and QA, two
tasks"), so its id is the item's UUID and the stage's task type (``<uuid>:<taskType>``).
Its status is the item's in the stage the item is in; stages the item has passed are
COMPLETED and those ahead of it NEW. Accepting or rejecting a task is the review outcome
OK or NOT_OK of that stage.

``file-tasks`` and ``label-tasks`` make the items a dataset needs, in the projects whose
tasks use the dataset: a *file task* for each frame of a single-frame dataset (for each
video of a sequence dataset) and a *dataset attribute* task for the dataset; a *label task*
for each object its annotations hold (a track is one object across its frames) and a
*frame attribute* task for each tag. Each is made once, however often they are asked for."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from labelyard.domain import (
    Asset,
    AssetKind,
    Dataset,
    Group,
    Job,
    Outcome,
    Project,
    Scene,
    Segment,
    Signal,
    Task,
    TaskFrame,
    WorkItem,
    WorkKind,
    WorkStatus,
    utcnow,
)
from labelyard.domain.annotations import ANNOTATION_TABLES
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, NotFound, PermissionDenied
from labelyard.services.workflow import items, signalling, signals
from labelyard.services.workflow.projects import canonical_uuid
from labelyard.services.workflow.signals import SignalRequest


@dataclass(frozen=True)
class StageTask:
    """One stage of one work item."""

    item: WorkItem
    index: int

    @property
    def id(self) -> str:
        return f"{self.item.uuid}:{self.item.workflow.stages[self.index].task_type}"

    @property
    def task_type(self) -> str:
        return self.item.workflow.stages[self.index].task_type

    @property
    def status(self) -> str:
        item = self.item
        if item.status == WorkStatus.COMPLETED or self.index < item.stage_index:
            return WorkStatus.COMPLETED
        if self.index == item.stage_index:
            return item.status
        return WorkStatus.FAILED if item.status == WorkStatus.FAILED else WorkStatus.NEW

    @property
    def assignee_id(self) -> int | None:
        item = self.item
        if self.index == item.stage_index and item.status != WorkStatus.COMPLETED:
            return item.assignee_id
        if self.index > item.stage_index:
            return None
        review = item.workflow.stages[self.index].review
        return item.reviewer_id if review else item.labeller_id


def stage_tasks(item: WorkItem) -> list[StageTask]:
    return [StageTask(item, index) for index in range(len(item.workflow.stages))]


def visible_anywhere(actor: Actor) -> ColumnElement[bool]:
    """Work items of every project the actor sees, as a filter (joined with Project)."""
    if actor.reads_everything or (
        actor.can_write and (actor.is_admin or Group.BUSINESS in actor.groups)
    ):
        return true()
    own = or_(
        WorkItem.assignee_id == actor.id,
        WorkItem.labeller_id == actor.id,
        WorkItem.reviewer_id == actor.id,
    )
    if not actor.can_write:
        return own
    return or_(own, Project.owner_id == actor.id, Project.assignee_id == actor.id)


def managed_anywhere(actor: Actor) -> ColumnElement[bool]:
    """Work items of the projects whose work the actor manages (joined with Project)."""
    if actor.reads_everything or (
        actor.can_write and (actor.is_admin or Group.BUSINESS in actor.groups)
    ):
        return true()
    if not actor.can_write:
        return false()
    return or_(Project.owner_id == actor.id, Project.assignee_id == actor.id)


def in_dataset(session: Session, actor: Actor, dataset: Dataset) -> list[StageTask]:
    found = session.scalars(
        select(WorkItem)
        .join(Project, Project.id == WorkItem.project_id)
        .where(
            WorkItem.dataset_id == dataset.id,
            access.in_visible_space(actor, Project.space_id),
            visible_anywhere(actor),
        )
        .order_by(WorkItem.id)
    )
    return [task for item in found for task in stage_tasks(item)]


def of_user(session: Session, actor: Actor, space_id: int, user_id: int) -> list[StageTask]:
    """The stages a user holds now in the space's projects: assigned or claimed. Another
    user's are those in the projects the actor manages."""
    seen = visible_anywhere(actor) if user_id == actor.id else managed_anywhere(actor)
    found = session.scalars(
        select(WorkItem)
        .join(Project, Project.id == WorkItem.project_id)
        .where(
            Project.space_id == space_id,
            WorkItem.assignee_id == user_id,
            WorkItem.status.in_([WorkStatus.NEW, WorkStatus.IN_PROGRESS]),
            seen,
        )
        .order_by(WorkItem.id)
    )
    return [StageTask(item, item.stage_index) for item in found]


def delayed(session: Session, actor: Actor, space_id: int, now: datetime) -> list[StageTask]:
    """Items past due and not done, in the stage they are in, most overdue first."""
    found = session.scalars(
        select(WorkItem)
        .join(Project, Project.id == WorkItem.project_id)
        .where(
            Project.space_id == space_id,
            WorkItem.due_at < now,
            WorkItem.status.in_([WorkStatus.NEW, WorkStatus.IN_PROGRESS]),
            visible_anywhere(actor),
        )
        .order_by(WorkItem.due_at, WorkItem.id)
    )
    return [StageTask(item, item.stage_index) for item in found]


def get(session: Session, actor: Actor, task_id: str, *, for_update: bool = False) -> StageTask:
    """A stage task by its id (``<work item uuid>:<taskType>``)."""
    item_ref, _, task_type = task_id.partition(":")
    key = canonical_uuid(item_ref)
    item = None
    if key is not None:
        stmt = (
            select(WorkItem)
            .join(Project, Project.id == WorkItem.project_id)
            .where(
                WorkItem.uuid == key,
                access.in_visible_space(actor, Project.space_id),
                visible_anywhere(actor),
            )
        )
        if for_update:
            stmt = stmt.with_for_update(of=WorkItem)
        item = session.scalars(stmt).first()
    if item is None:
        raise NotFound("No such task.")
    if not task_type:
        return StageTask(item, item.stage_index)
    for task in stage_tasks(item):
        if task.task_type == task_type:
            return task
    raise NotFound(f'The work item has no stage "{task_type}".')


def review(
    session: Session, actor: Actor, task: StageTask, outcome: Outcome, comments: Iterable[str],
    *, lease_seconds: float,
) -> StageTask:  # fmt: skip
    """Accept (OK) or reject (NOT_OK) a review stage; an unclaimed one is claimed first."""
    item = task.item
    project = session.get_one(Project, item.project_id)
    if not item.workflow.stages[task.index].review:
        raise Conflict(f'"{task.task_type}" is not a review stage: complete it instead.')
    if task.index != item.stage_index or item.status not in (
        WorkStatus.NEW,
        WorkStatus.IN_PROGRESS,
    ):
        raise signals.conflict(item, f'The task is for stage "{task.task_type}".')
    if item.status == WorkStatus.NEW or signals.lease_expired(item, utcnow()):
        signalling.send(
            session,
            actor,
            project,
            item.uuid,
            SignalRequest(Signal.START, task.task_type),
            lease_seconds=lease_seconds,
        )
    signalling.send(
        session,
        actor,
        project,
        item.uuid,
        SignalRequest(Signal.COMPLETE, task.task_type, outcome, tuple(comments)),
        lease_seconds=lease_seconds,
    )
    return StageTask(item, task.index)


# --- making the items a dataset needs -----------------------------------------------


def _projects_using(session: Session, actor: Actor, dataset: Dataset) -> list[tuple[Project, Task]]:
    tasks = session.scalars(
        select(Task)
        .join(Project, Project.id == Task.project_id)
        .where(Task.dataset_id == dataset.id, Project.space_id == dataset.space_id)
        .order_by(Task.id)
    ).all()
    if not tasks:
        raise Conflict(
            "No task of a project uses this dataset: make one with the dataset "
            "(POST /api/v1/tasks, then its data with dataset_ids) first."
        )
    used = [(task.project, task) for task in tasks if task.project is not None]
    if not any(access.manages_work(actor, project) for project, _ in used):
        raise PermissionDenied("Only a manager of the dataset's projects makes its tasks.")
    return [(project, task) for project, task in used if access.manages_work(actor, project)]


def make_file_tasks(session: Session, actor: Actor, dataset: Dataset) -> int:
    """A file task per frame (per video of a sequence dataset) and a dataset attribute
    task, in each project whose task uses the dataset; how many were made."""
    made = 0
    sequence = dataset.scene != Scene.IMAGE
    for project, task in _projects_using(session, actor, dataset):
        wanted: list[tuple[str, WorkKind, dict[str, Any]]] = []
        frames = session.execute(
            select(TaskFrame.frame, TaskFrame.asset_id, Asset.kind)
            .join(Asset, Asset.id == TaskFrame.asset_id)
            .where(TaskFrame.task_id == task.id)
            .order_by(TaskFrame.frame)
        ).all()
        seen_assets: set[int] = set()
        for frame, asset_id, kind in frames:
            video = kind == AssetKind.VIDEO
            if sequence or video:
                if asset_id in seen_assets:
                    continue
                seen_assets.add(asset_id)
                key = f"file:{task.id}:asset:{asset_id}"
            else:
                key = f"file:{task.id}:{frame}"
            wanted.append(
                (
                    key,
                    WorkKind.FILE,
                    {
                        "frame": frame,
                        "asset_id": asset_id,
                        "asset_type": "video" if (sequence or video) else "image",
                    },
                )
            )
        wanted.append((f"dataset_attribute:{task.id}", WorkKind.DATASET_ATTRIBUTE, {}))
        made += _make(session, project, task, dataset, wanted, actor.id)
    return made


def make_label_tasks(session: Session, actor: Actor, dataset: Dataset) -> int:
    """A label task per object (shape or track) and a frame attribute task per tag of the
    annotations of each project task that uses the dataset; how many were made."""
    made = 0
    for project, task in _projects_using(session, actor, dataset):
        jobs = (
            select(Job.id)
            .join(Segment, Segment.id == Job.segment_id)
            .where(Segment.task_id == task.id)
        )
        wanted: list[tuple[str, WorkKind, dict[str, Any]]] = []
        for kind, work_kind in (
            ("shapes", WorkKind.LABEL),
            ("tracks", WorkKind.LABEL),
            ("tags", WorkKind.FRAME_ATTRIBUTE),
        ):
            table = ANNOTATION_TABLES[kind]
            rows = session.execute(
                select(table.c.id, table.c.frame).where(table.c.job_id.in_(jobs))
            ).all()
            for object_id, frame in rows:
                wanted.append(
                    (
                        f"{kind[:-1]}:{object_id}",
                        work_kind,
                        {
                            "frame": frame,
                            "object_kind": kind[:-1],
                            "object_id": object_id,
                        },
                    )
                )
        made += _make(session, project, task, dataset, wanted, actor.id)
    return made


def _make(
    session: Session,
    project: Project,
    task: Task,
    dataset: Dataset,
    wanted: list[tuple[str, WorkKind, dict[str, Any]]],
    actor_id: int,
) -> int:
    items.lock_project(session, project)
    existing = set(
        session.scalars(
            select(WorkItem.source_key).where(
                WorkItem.project_id == project.id,
                WorkItem.source_key.in_([key for key, _, _ in wanted]),
            )
        )
    )
    batch = items.default_batch(session, project, actor_id)
    now = utcnow()
    count = 0
    for key, kind, values in wanted:
        if key in existing:
            continue
        item = items.new_item(session, project, batch, kind, now=now, source_key=key)
        item.task_id, item.dataset_id = task.id, dataset.id
        for name, value in values.items():
            setattr(item, name, value)
        count += 1
    session.flush()
    return count
