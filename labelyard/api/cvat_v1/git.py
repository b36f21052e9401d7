"""``/git/repository``: a task's git repository, as CVAT's git integration serves it.

CVAT mounts these at the server's root, not under ``/api/v1`` (its client strips
``/api/v1`` from the API's address to reach them); app.py mounts them there and, for
clients and proxies that know only the API's prefix, under ``/api/v1`` too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from labelyard.api.deps import ActorDep, ChangingActorDep, LinksDep, SettingsDep, UowDep
from labelyard.domain import Operation, OperationStatus
from labelyard.services import git, operations

router = APIRouter(prefix="/git/repository", tags=["git"])


def _runner(request: Request) -> operations.OperationRunner:
    runner: operations.OperationRunner = request.app.state.runner
    return runner


RunnerDep = Annotated[operations.OperationRunner, Depends(_runner)]


class Started(BaseModel):
    """CVAT's answer to create and push: the id to poll ``check/{rq_id}`` with (here an
    operation's id, also readable at ``/api/v1/operations/{id}``)."""

    rq_id: str


class UrlOut(BaseModel):
    value: str | None


class StatusOut(BaseModel):
    value: str | None
    error: str | None


class RepositoryOut(BaseModel):
    url: UrlOut
    status: StatusOut
    format: str | None


class CheckOut(BaseModel):
    """RQ's job statuses, as CVAT answers them (``unknown`` for an id it does not know);
    ``stderr`` says why a failed one failed."""

    status: str
    stderr: str | None = None
    progress: float | None = None
    message: str | None = None


def _started(operation: Operation) -> Started:
    return Started(rq_id=operation.id)


@router.post("/create/{task_id}", status_code=202, response_model=Started)
def link_repository(
    task_id: int,
    body: git.LinkIn,
    actor: ActorDep,
    uow: UowDep,
    runner: RunnerDep,
    settings: SettingsDep,
) -> Started:
    """Link the task to a repository: ``{"path": "<url> [<file path>]", "format": F}``.
    Whether the repository can be read is checked in the background: poll
    ``check/{rq_id}``, or read ``get/{task_id}``."""
    return _started(git.link_repository(uow, runner, actor, settings, task_id, body))


@router.get("/get/{task_id}", response_model=RepositoryOut)
def read_repository(task_id: int, actor: ActorDep, uow: UowDep, runner: RunnerDep) -> RepositoryOut:
    """The linked repository and its status (all null when there is none)."""
    state = git.repository_state(uow, runner, actor, task_id)
    return RepositoryOut(
        url=UrlOut(value=state.url),
        status=StatusOut(value=state.status, error=state.error),
        format=state.link.format if state.link else None,
    )


@router.get("/push/{task_id}", response_model=Started)
def push_repository(
    task_id: int, actor: ChangingActorDep, uow: UowDep, runner: RunnerDep, links: LinksDep
) -> Started:
    """Start pushing the task's annotations to its repository (a GET, as in CVAT)."""
    return _started(git.push(uow, runner, actor, task_id, links.of("tasks", task_id)))


@router.get("/check/{rq_id}", response_model=CheckOut, response_model_exclude_none=True)
def check(rq_id: str, actor: ActorDep, uow: UowDep) -> CheckOut:
    operation = git.find_operation(uow, actor, rq_id)
    if operation is None:
        return CheckOut(status="unknown")
    failed = operation.status in (OperationStatus.FAILED, OperationStatus.CANCELLED)
    return CheckOut(
        status=operation.status,
        stderr=operation.message if failed else None,
        progress=operation.progress,
        message=operation.message or None,
    )


@router.get("/meta/get", response_model=dict[str, str])
def statuses(actor: ActorDep, uow: UowDep) -> dict[str, str]:
    """Every visible task that has a repository, with its status (by task id)."""
    return git.statuses(uow, actor)
