"""Task use cases: create (also by copying a task), read, list, change, delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field
from sqlalchemy import Select, select

from labelyard.domain import (
    Label,
    Project,
    Task,
    TaskState,
    TaskTeamMember,
    TeamRole,
    utcnow,
)
from labelyard.domain.tasks import BUG_TRACKER_MAX, NAME_MAX, SUBSET_MAX
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labelyard.services.fields import (
    Count,
    Id,
    UserRef,
    WriteModel,
    is_id,
    pick_user_ref,
    resolve_user,
)
from labelyard.services.labels import AttributeIn, LabelIn, apply_labels
from labelyard.services.listing import filter_by_people, order_by
from labelyard.services.uow import UnitOfWork

READ_ONLY = frozenset(
    {
        "id", "url", "mode", "status", "size", "segments", "jobs", "created_date",
        "updated_date", "data", "data_chunk_size", "data_compressed_chunk_type",
        "data_original_chunk_type", "dimension", "team",
    }
)  # fmt: skip
# Settings a copy takes from its source: seed 000's template, workflow and team.
WORKFLOW_FIELDS = ("segment_size", "overlap", "z_order", "image_quality", "bug_tracker", "subset")


class TaskWrite(WriteModel):
    """The fields PATCH (and PUT) may set; each applies only when it is sent."""

    read_only = READ_ONLY | {"project_id", "project", "source_task_id"}

    name: str = Field(default="", min_length=1, max_length=NAME_MAX)
    labels: list[LabelIn] = Field(default_factory=list)
    owner: UserRef | None = None
    owner_id: Id | None = None
    assignee: UserRef | None = None
    assignee_id: Id | None = None
    bug_tracker: str = Field(default="", max_length=BUG_TRACKER_MAX)
    overlap: Count | None = None
    segment_size: Count = 0
    z_order: bool = False
    image_quality: int = Field(default=70, ge=0, le=100)
    subset: str = Field(default="", max_length=SUBSET_MAX)
    state: TaskState = TaskState.NOT_STARTED


class TaskReplace(TaskWrite):
    name: str = Field(min_length=1, max_length=NAME_MAX)


class TaskCreate(TaskWrite):
    """A new task; with ``source_task_id`` it is a copy of that task (seed 000)."""

    read_only = READ_ONLY | {"state"}

    name: str = Field(default="", max_length=NAME_MAX)
    project_id: Id | None = None
    source_task_id: Id | None = None


@dataclass
class TaskFilter:
    id: int | None = None
    name: str | None = None
    owner: str | None = None
    assignee: str | None = None
    status: str | None = None
    state: str | None = None
    mode: str | None = None
    project_id: int | None = None
    subset: str | None = None
    search: str | None = None
    ordering: str | None = None


def list_tasks(actor: Actor, filters: TaskFilter) -> Select[Any]:
    stmt, columns = filter_by_people(
        select(Task).where(access.visible_tasks(actor)), Task, filters, Task.mode, Task.status
    )
    exact = {
        Task.id: filters.id,
        Task.status: filters.status,
        Task.state: filters.state,
        Task.mode: filters.mode,
        Task.project_id: filters.project_id,
        Task.subset: filters.subset,
    }
    for column, value in exact.items():
        if value is not None:
            stmt = stmt.where(column == value)
    columns |= {
        "id": Task.id,
        "status": Task.status,
        "state": Task.state,
        "mode": Task.mode,
        "project_id": Task.project_id,
        "subset": Task.subset,
        "size": Task.size,
        "created_date": Task.created_date,
        "updated_date": Task.updated_date,
    }
    return order_by(stmt, filters.ordering, columns, default="-id")


def get_task(uow: UnitOfWork, actor: Actor, task_id: int) -> Task:
    if not is_id(task_id):
        raise NotFound()
    task = uow.session.scalar(select(Task).where(Task.id == task_id, access.visible_tasks(actor)))
    if task is None:
        raise NotFound()
    return task


def create_task(uow: UnitOfWork, actor: Actor, data: TaskCreate) -> Task:
    if data.source_task_id is not None:
        return _copy_task(uow, actor, data)
    if not data.name:
        raise InvalidInput.on("name", "This field is required.")
    project = _project_for_new_task(uow, actor, data.project_id)
    if project is not None and data.labels:
        raise InvalidInput.on("labels", "A task in a project uses the project's labels.")
    task = Task(name=data.name, project=project, owner_id=actor.id)
    _write_settings(task, data, data.model_fields_set)
    uow.session.add(task)
    _write_people(uow, actor, task, data)
    apply_labels(uow, task.own_labels, data.labels)
    uow.commit()
    return task


def _project_for_new_task(uow: UnitOfWork, actor: Actor, project_id: int | None) -> Project | None:
    if not access.can_create_task(actor):
        raise PermissionDenied()
    if project_id is None:
        return None
    project = uow.session.scalar(
        select(Project).where(Project.id == project_id, access.visible_projects(actor))
    )
    if project is None:
        raise InvalidInput.on("project_id", f'Invalid pk "{project_id}" - object does not exist.')
    if not access.can_create_task(actor, project):
        raise PermissionDenied("Only the project's owner or assignee can add tasks to it.")
    return project


def _copy_task(uow: UnitOfWork, actor: Actor, data: TaskCreate) -> Task:
    assert data.source_task_id is not None
    for name in ("labels", "project_id"):
        if name in data.model_fields_set:
            raise InvalidInput.on(name, "A copy takes this from its source task.")
    try:
        source = get_task(uow, actor, data.source_task_id)
    except NotFound:
        raise InvalidInput.on(
            "source_task_id", f'Invalid pk "{data.source_task_id}" - object does not exist.'
        ) from None
    _project_for_new_task(uow, actor, source.project_id)
    task = Task(
        name=data.name or f"{source.name} (copy)"[:NAME_MAX],
        project=source.project,
        owner_id=actor.id,
        assignee_id=source.assignee_id,
        source_task_id=source.id,
        dimension=source.dimension,
    )
    for name in WORKFLOW_FIELDS:
        setattr(task, name, getattr(source, name))
    _write_settings(task, data, data.model_fields_set)
    uow.session.add(task)
    _write_people(uow, actor, task, data)
    apply_labels(uow, task.own_labels, [_label_template(label) for label in source.own_labels])
    task.team = [TaskTeamMember(user_id=user_id, role=role) for user_id, role in _team_of(source)]
    uow.commit()
    return task


def _label_template(label: Label) -> LabelIn:
    return LabelIn(
        name=label.name,
        color=label.color,
        attributes=[
            AttributeIn(
                name=spec.name,
                mutable=spec.mutable,
                input_type=spec.input_type,
                default_value=spec.default_value,
                values=list(spec.values),
            )
            for spec in label.attributes
        ],
    )


def _team_of(task: Task) -> list[tuple[int, str]]:
    """The task's declared team, then whoever its jobs are assigned to, in job order."""
    team = [(member.user_id, member.role) for member in task.team]
    for segment in task.segments:
        for job in segment.jobs:
            if job.assignee_id is not None:
                team.append((job.assignee_id, TeamRole.ANNOTATOR))
            if job.reviewer_id is not None:
                team.append((job.reviewer_id, TeamRole.REVIEWER))
    return list(dict.fromkeys(team))


def update_task(uow: UnitOfWork, actor: Actor, task_id: int, data: TaskWrite) -> Task:
    task = get_task(uow, actor, task_id)
    if not access.can_change_task(actor, task):
        raise PermissionDenied()
    fields = data.model_fields_set
    if task.segments:
        for name in {"segment_size", "overlap", "image_quality"} & fields:
            if getattr(data, name) != getattr(task, name):
                raise InvalidInput.on(name, "This cannot change once the task has data.")
    _write_settings(task, data, fields - {"state"})
    _write_people(uow, actor, task, data)
    if "state" in fields:
        change_state(actor, task, data.state)
    if "labels" in fields:
        if task.project is not None:
            raise InvalidInput.on("labels", "This task uses its project's labels; edit those.")
        apply_labels(uow, task.own_labels, data.labels)
    task.updated_date = utcnow()
    uow.commit()
    return task


def change_state(actor: Actor, task: Task, state: TaskState) -> None:
    if state == task.state:
        return
    if not access.can_manage_task(actor, task):
        raise PermissionDenied("Only a manager of the task can change its state.")
    if not task.can_move_to(state):
        raise Conflict(f"A task in state {task.state} cannot move to {state}.")
    if state == TaskState.IN_PROGRESS and not task.segments:
        raise Conflict("The task has no data yet; it starts when its data is added.")
    task.state = state


def delete_task(uow: UnitOfWork, actor: Actor, task_id: int) -> None:
    task = get_task(uow, actor, task_id)
    if not access.can_delete_task(actor, task):
        raise PermissionDenied()
    uow.session.delete(task)
    uow.commit()


def _write_settings(task: Task, data: TaskWrite, fields: set[str]) -> None:
    for name in ("name", "bug_tracker", "overlap", "segment_size", "z_order", "image_quality",
                 "subset"):  # fmt: skip
        if name in fields:
            setattr(task, name, getattr(data, name))


def _write_people(uow: UnitOfWork, actor: Actor, task: Task, data: TaskWrite) -> None:
    given, ref, path = pick_user_ref(data, "owner")
    if given:
        owner = resolve_user(uow, ref, path)
        if owner is None:
            raise InvalidInput.on(path, "This field may not be null.")
        if (
            owner.id != task.owner_id
            and task.id is not None
            and not access.can_manage_task(actor, task)
        ):
            raise PermissionDenied("Only a manager of the task can change its owner.")
        task.owner = owner
    given, ref, path = pick_user_ref(data, "assignee")
    if given:
        task.assignee = resolve_user(uow, ref, path)
