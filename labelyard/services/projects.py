"""Project use cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field
from sqlalchemy import Select, select

from labelyard.domain import Project, utcnow
from labelyard.domain.projects import BUG_TRACKER_MAX, NAME_MAX
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.errors import InvalidInput, NotFound, PermissionDenied
from labelyard.services.fields import Id, UserRef, WriteModel, is_id, pick_user_ref, resolve_user
from labelyard.services.labels import LabelIn, apply_labels
from labelyard.services.listing import filter_by_people, order_by
from labelyard.services.uow import UnitOfWork

READ_ONLY = frozenset({"id", "url", "created_date", "updated_date", "status", "tasks"})


class ProjectWrite(WriteModel):
    read_only = READ_ONLY

    name: str = Field(default="", min_length=1, max_length=NAME_MAX)
    labels: list[LabelIn] = Field(default_factory=list)
    owner: UserRef | None = None
    owner_id: Id | None = None
    assignee: UserRef | None = None
    assignee_id: Id | None = None
    bug_tracker: str = Field(default="", max_length=BUG_TRACKER_MAX)


class ProjectCreate(ProjectWrite):
    name: str = Field(min_length=1, max_length=NAME_MAX)


@dataclass
class ProjectFilter:
    id: int | None = None
    name: str | None = None
    owner: str | None = None
    assignee: str | None = None
    status: str | None = None
    search: str | None = None
    ordering: str | None = None


def list_projects(actor: Actor, filters: ProjectFilter) -> Select[Any]:
    stmt, columns = filter_by_people(
        select(Project).where(access.visible_projects(actor)), Project, filters
    )
    if filters.id is not None:
        stmt = stmt.where(Project.id == filters.id)
    if filters.status:
        stmt = stmt.where(Project.status == filters.status)
    columns |= {
        "id": Project.id,
        "status": Project.status,
        "created_date": Project.created_date,
        "updated_date": Project.updated_date,
    }
    return order_by(stmt, filters.ordering, columns, default="-id")


def get_project(uow: UnitOfWork, actor: Actor, project_id: int) -> Project:
    if not is_id(project_id):
        raise NotFound()
    project = uow.session.scalar(
        select(Project).where(Project.id == project_id, access.visible_projects(actor))
    )
    if project is None:
        raise NotFound()
    return project


def create_project(uow: UnitOfWork, actor: Actor, data: ProjectCreate) -> Project:
    if not access.can_create_project(actor):
        raise PermissionDenied()
    project = Project(name=data.name, bug_tracker=data.bug_tracker, owner_id=actor.id)
    uow.session.add(project)
    _write_people(uow, actor, project, data)
    apply_labels(uow, project.labels, data.labels)
    uow.commit()
    return project


def update_project(uow: UnitOfWork, actor: Actor, project_id: int, data: ProjectWrite) -> Project:
    project = get_project(uow, actor, project_id)
    if not access.can_change_project(actor, project):
        raise PermissionDenied()
    for name in {"name", "bug_tracker"} & data.model_fields_set:
        setattr(project, name, getattr(data, name))
    _write_people(uow, actor, project, data)
    if "labels" in data.model_fields_set:
        apply_labels(uow, project.labels, data.labels)
    project.updated_date = utcnow()
    uow.commit()
    return project


def delete_project(uow: UnitOfWork, actor: Actor, project_id: int) -> None:
    project = get_project(uow, actor, project_id)
    if not access.can_delete_project(actor, project):
        raise PermissionDenied()
    uow.session.delete(project)
    uow.commit()


def _write_people(uow: UnitOfWork, actor: Actor, project: Project, data: ProjectWrite) -> None:
    given, ref, path = pick_user_ref(data, "owner")
    if given:
        owner = resolve_user(uow, ref, path)
        if owner is None:
            raise InvalidInput.on(path, "This field may not be null.")
        if owner.id != project.owner_id and not _may_give(actor, project):
            raise PermissionDenied("Only the project's owner or an admin can change its owner.")
        project.owner = owner
    given, ref, path = pick_user_ref(data, "assignee")
    if given:
        project.assignee = resolve_user(uow, ref, path)


def _may_give(actor: Actor, project: Project) -> bool:
    return actor.is_admin or project.owner_id in (None, actor.id)
