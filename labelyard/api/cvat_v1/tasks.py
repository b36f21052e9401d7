"""``/tasks``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from labelyard.api.cvat_v1 import backups as backup_routes
from labelyard.api.cvat_v1.schemas import JobOut, TaskOut
from labelyard.api.deps import ActorDep, ChangingActorDep, IdQuery, LinksDep, UowDep
from labelyard.api.pagination import Page, PageDep, paginate
from labelyard.api.routing import GatedRouter
from labelyard.services import dataset_versions, frames, jobs, tasks

router = GatedRouter(prefix="/tasks", tags=["tasks"])


def task_filter(
    id: IdQuery = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
    owner: Annotated[str | None, Query(max_length=150)] = None,
    assignee: Annotated[str | None, Query(max_length=150)] = None,
    status: str | None = None,
    state: str | None = None,
    mode: str | None = None,
    project_id: IdQuery = None,
    subset: str | None = None,
    search: Annotated[str | None, Query(max_length=256)] = None,
    ordering: str | None = None,
) -> tasks.TaskFilter:
    return tasks.TaskFilter(
        id, name, owner, assignee, status, state, mode, project_id, subset, search, ordering
    )


@router.get("", response_model=Page[TaskOut])
def list_tasks(
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    links: LinksDep,
    page: PageDep,
    filters: Annotated[tasks.TaskFilter, Depends(task_filter)],
) -> Page[TaskOut]:
    stmt = tasks.list_tasks(actor, filters)
    return paginate(uow.session, stmt, page, request, lambda t: TaskOut.of(t, links))


@router.post(
    "",
    status_code=201,
    response_model=TaskOut | backup_routes.TaskRestored,
    responses=backup_routes.IMPORT_RESPONSES,
    openapi_extra=backup_routes.CREATE_BODY,
)
async def create_task(
    body: Annotated[tasks.TaskCreate | None, Depends(backup_routes.read_task_body)],
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    links: LinksDep,
    action: backup_routes.ImportAction = None,
    rq_id: backup_routes.RqId = None,
) -> Any:
    """Create a task without data; with ``source_task_id``, a copy of that task: its
    project, labels, workflow settings and team (seed 000). With ``action=import``:
    restore the backup sent as a multipart ``task_file`` into a new task of yours (202
    with an ``rq_id``); the same call with that ``rq_id`` polls it: 202, 201 with the new
    task's ``id``, or 400 with why the backup was refused."""
    if body is None:
        return await backup_routes.imported(request, uow, actor, rq_id)

    def create(data: tasks.TaskCreate) -> TaskOut:
        task = tasks.create_task(uow, actor, data)
        uow.session.refresh(task)
        return TaskOut.of(task, links)

    return await run_in_threadpool(create, body)


@router.get("/{task_id:int}", response_model=TaskOut, responses=backup_routes.EXPORT_RESPONSES)
def read_task(
    task_id: int,
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    links: LinksDep,
    action: backup_routes.ExportAction = None,
) -> Any:
    """The task. With ``action=export``: a backup of it, its media, labels, jobs and
    annotations (202 while it is made, 201 when ready); ``action=download`` sends it."""
    if action is not None:
        return backup_routes.exported(request, uow, actor, task_id, action)
    return TaskOut.of(tasks.get_task(uow, actor, task_id), links)


@router.put("/{task_id:int}", response_model=TaskOut)
def replace_task(
    task_id: int, body: tasks.TaskReplace, actor: ActorDep, uow: UowDep, links: LinksDep
) -> TaskOut:
    task = tasks.update_task(uow, actor, task_id, body)
    uow.session.refresh(task)
    return TaskOut.of(task, links)


@router.patch("/{task_id:int}", response_model=TaskOut)
def update_task(
    task_id: int, body: tasks.TaskWrite, actor: ActorDep, uow: UowDep, links: LinksDep
) -> TaskOut:
    task = tasks.update_task(uow, actor, task_id, body)
    uow.session.refresh(task)
    return TaskOut.of(task, links)


@router.delete("/{task_id:int}", status_code=204)
def delete_task(task_id: int, request: Request, actor: ActorDep, uow: UowDep) -> Response:
    """Deletes the task with its jobs, annotations and cached chunks (its dataset stays)."""
    tasks.delete_task(uow, actor, task_id)
    frames.forget_media(request.app.state.storage, task_id)
    return Response(status_code=204)


@router.get("/{task_id:int}/jobs", response_model=list[JobOut])
def list_task_jobs(task_id: int, actor: ActorDep, uow: UowDep, links: LinksDep) -> list[JobOut]:
    tasks.get_task(uow, actor, task_id)
    stmt = jobs.list_jobs(actor, jobs.JobFilter(task_id=task_id))
    return [JobOut.of(job, links) for job in uow.session.scalars(stmt).unique()]


PUBLISHED: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "Published: an empty body; Location names the dataset's versions.",
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
}


@router.get("/{task_id:int}/publish", status_code=202, response_class=Response, responses=PUBLISHED)
def publish_task(task_id: int, request: Request, actor: ChangingActorDep, uow: UowDep) -> Response:
    """Seed 001's 提送至AI平台: the task's annotations become its dataset's next version
    (an empty answer, as the seed shows; ``GET /datasets/{id}/versions`` follows it)."""
    version = dataset_versions.publish(uow, request.app.state.runner, actor, task_id)
    return Response(
        status_code=202,
        headers={"Location": str(request.url_for("list_versions", dataset_id=version.dataset_id))},
    )
