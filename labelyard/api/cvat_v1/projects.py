"""``/projects``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from labelyard.api.cvat_v1.schemas import ProjectOut, TaskOut
from labelyard.api.deps import ActorDep, IdQuery, LinksDep, UowDep
from labelyard.api.pagination import Page, PageDep, paginate
from labelyard.api.routing import GatedRouter
from labelyard.services import projects, tasks

router = GatedRouter(prefix="/projects", tags=["projects"])


def project_filter(
    id: IdQuery = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
    owner: Annotated[str | None, Query(max_length=150)] = None,
    assignee: Annotated[str | None, Query(max_length=150)] = None,
    status: str | None = None,
    search: Annotated[str | None, Query(max_length=256)] = None,
    ordering: str | None = None,
) -> projects.ProjectFilter:
    return projects.ProjectFilter(id, name, owner, assignee, status, search, ordering)


@router.get("", response_model=Page[ProjectOut])
def list_projects(
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    links: LinksDep,
    page: PageDep,
    filters: Annotated[projects.ProjectFilter, Depends(project_filter)],
) -> Page[ProjectOut]:
    stmt = projects.list_projects(actor, filters)
    return paginate(uow.session, stmt, page, request, lambda p: ProjectOut.of(p, links))


@router.post("", status_code=201, response_model=ProjectOut)
def create_project(
    body: projects.ProjectCreate, actor: ActorDep, uow: UowDep, links: LinksDep
) -> ProjectOut:
    project = projects.create_project(uow, actor, body)
    uow.session.refresh(project)
    return ProjectOut.of(project, links)


@router.get("/{project_id:int}", response_model=ProjectOut)
def read_project(project_id: int, actor: ActorDep, uow: UowDep, links: LinksDep) -> ProjectOut:
    return ProjectOut.of(projects.get_project(uow, actor, project_id), links)


@router.put("/{project_id:int}", response_model=ProjectOut)
def replace_project(
    project_id: int, body: projects.ProjectCreate, actor: ActorDep, uow: UowDep, links: LinksDep
) -> ProjectOut:
    project = projects.update_project(uow, actor, project_id, body)
    uow.session.refresh(project)
    return ProjectOut.of(project, links)


@router.patch("/{project_id:int}", response_model=ProjectOut)
def update_project(
    project_id: int, body: projects.ProjectWrite, actor: ActorDep, uow: UowDep, links: LinksDep
) -> ProjectOut:
    project = projects.update_project(uow, actor, project_id, body)
    uow.session.refresh(project)
    return ProjectOut.of(project, links)


@router.delete("/{project_id:int}", status_code=204)
def delete_project(project_id: int, actor: ActorDep, uow: UowDep) -> Response:
    projects.delete_project(uow, actor, project_id)
    return Response(status_code=204)


@router.get("/{project_id:int}/tasks", response_model=Page[TaskOut])
def list_project_tasks(
    project_id: int, request: Request, actor: ActorDep, uow: UowDep, links: LinksDep, page: PageDep
) -> Page[TaskOut]:
    projects.get_project(uow, actor, project_id)
    stmt = tasks.list_tasks(actor, tasks.TaskFilter(project_id=project_id))
    return paginate(uow.session, stmt, page, request, lambda t: TaskOut.of(t, links))
