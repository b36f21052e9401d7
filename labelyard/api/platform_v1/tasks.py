"""Seed 003's tasks: a work item's stages as tasks, by dataset and by client (a space)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import Response
from pydantic import Field

from labelyard.api.deps import ActorDep, SettingsDep, UowDep
from labelyard.api.platform_v1.wire import iso, space_json, user_email
from labelyard.domain import Dataset, Outcome, Project, Space, User, WorkKind, utcnow
from labelyard.services.access import Actor
from labelyard.services.errors import InvalidInput
from labelyard.services.uow import UnitOfWork
from labelyard.services.workflow import items, work_tasks
from labelyard.services.workflow.items import CamelWrite
from labelyard.services.workflow.projects import get_dataset, get_space, member_by_email
from labelyard.services.workflow.work_tasks import StageTask

router = APIRouter(tags=["work: tasks (seed 003)"])

KIND_LISTS = {
    WorkKind.FILE: "file_tasks",
    WorkKind.LABEL: "label_tasks",
    WorkKind.FRAME_ATTRIBUTE: "frame_attribute_tasks",
    WorkKind.DATASET_ATTRIBUTE: "dataset_attribute_tasks",
}


class Shaper:
    """TaskResource JSON, with the users, projects and datasets it names loaded once."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session
        self.now = utcnow()

    def __call__(self, task: StageTask) -> dict[str, Any]:
        item = task.item
        stage = item.workflow.stages[task.index]
        project = self.session.get_one(Project, item.project_id)
        dataset = self.session.get(Dataset, item.dataset_id) if item.dataset_id else None
        assignee = self.session.get(User, task.assignee_id) if task.assignee_id else None
        return {
            "id": task.id,
            "workItemID": item.uuid,
            "kind": item.kind,
            "stage": task.task_type,
            "review": stage.review,
            "status": task.status,
            "projectID": project.uuid,
            "dataset": dataset.uuid if dataset else None,
            "datasetId": item.dataset_id,
            "asset": item.asset_id,
            "taskId": item.task_id,
            "frame": item.frame,
            "object": (
                {"type": item.object_kind, "id": item.object_id} if item.object_kind else None
            ),
            "assignee": user_email(assignee),
            "due": iso(item.due_at),
            "delayed": task.index == item.stage_index and item.is_delayed(self.now),
            "difficulty": item.difficulty,
            "metadata": item.meta,
            "feedback": {"comments": item.feedback},
            "createdAt": iso(item.created_date),
            "updatedAt": iso(item.updated_date),
        }


@router.get("/datasets/{dataset_id}/tasks")
def read_dataset_tasks(dataset_id: str, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    """Every stage of every work item on the dataset that the caller may see."""
    dataset = get_dataset(uow.session, actor, dataset_id)
    shape = Shaper(uow)
    return {"tasks": [shape(task) for task in work_tasks.in_dataset(uow.session, actor, dataset)]}


@router.post("/datasets/{dataset_id}/file-tasks", status_code=204)
def make_file_tasks(dataset_id: str, actor: ActorDep, uow: UowDep) -> Response:
    """Make the file tasks the dataset lacks (and its dataset attribute task), in each
    project whose task uses it; asking again makes nothing twice."""
    dataset = get_dataset(uow.session, actor, dataset_id)
    work_tasks.make_file_tasks(uow.session, actor, dataset)
    uow.commit()
    return Response(status_code=204)


@router.post("/datasets/{dataset_id}/label-tasks", status_code=204)
def make_label_tasks(dataset_id: str, actor: ActorDep, uow: UowDep) -> Response:
    """Make a label task for each object of the dataset's annotations (and a frame
    attribute task for each tag) that has none yet."""
    dataset = get_dataset(uow.session, actor, dataset_id)
    work_tasks.make_label_tasks(uow.session, actor, dataset)
    uow.commit()
    return Response(status_code=204)


@router.post("/tasks/{task_id}")
def update_task(
    task_id: str, body: items.ItemUpdate, actor: ActorDep, uow: UowDep
) -> dict[str, Any]:
    """Change who does the task (an email; null unassigns), its due time, difficulty or
    metadata. The assignee is the one of the stage the work item is in."""
    task = work_tasks.get(uow.session, actor, task_id, for_update=True)
    item = task.item
    if "assignee" in body.model_fields_set and task.index != item.stage_index:
        raise InvalidInput.on(
            "assignee", f'The work item is in stage "{item.task_type}", not "{task.task_type}".'
        )
    project = uow.session.get_one(Project, item.project_id)
    items.update(uow.session, actor, project, item, body)
    uow.commit()
    return Shaper(uow)(task)


class ReviewBody(CamelWrite):
    comments: list[str] = Field(default_factory=list, max_length=100)


@router.post("/tasks/{task_id}/accept")
def accept_task(
    task_id: str,
    actor: ActorDep,
    uow: UowDep,
    settings: SettingsDep,
    body: ReviewBody | None = Body(default=None),
) -> dict[str, Any]:
    """The review outcome OK: the work item moves on to its next stage, or is completed."""
    return _review(uow, actor, task_id, Outcome.OK, body, settings.lease_seconds)


@router.post("/tasks/{task_id}/reject")
def reject_task(
    task_id: str,
    actor: ActorDep,
    uow: UowDep,
    settings: SettingsDep,
    body: ReviewBody | None = Body(default=None),
) -> dict[str, Any]:
    """The review outcome NOT_OK: back to its labeller for rework, with the comments."""
    return _review(uow, actor, task_id, Outcome.NOT_OK, body, settings.lease_seconds)


def _review(
    uow: UnitOfWork,
    actor: Actor,
    task_id: str,
    outcome: Outcome,
    body: ReviewBody | None,
    lease_seconds: float,
) -> dict[str, Any]:
    task = work_tasks.get(uow.session, actor, task_id, for_update=True)
    comments = body.comments if body is not None else []
    reviewed = work_tasks.review(
        uow.session, actor, task, outcome, comments, lease_seconds=lease_seconds
    )
    uow.commit()
    return Shaper(uow)(reviewed)


@router.get("/clients/{client_id}/tasks")
def read_client_tasks(
    client_id: str, actor: ActorDep, uow: UowDep, email: str | None = None
) -> dict[str, Any]:
    """The tasks a user of the client (the space) holds now, by kind; without ``email``,
    the caller's own. Another user's are those of the projects the caller manages."""
    space = get_space(uow.session, actor, client_id)
    user_id = actor.id
    if email:
        user_id = member_by_email(uow.session, space.id, email, "email").id
    shape = Shaper(uow)
    answer: dict[str, list[dict[str, Any]]] = {name: [] for name in KIND_LISTS.values()}
    for task in work_tasks.of_user(uow.session, actor, space.id, user_id):
        answer[KIND_LISTS[WorkKind(task.item.kind)]].append(shape(task))
    return answer


@router.get("/clients/{client_id}/delayed-tasks")
def read_delayed_tasks(client_id: str, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    """Work past its due time and not done, with the space (client) it is in."""
    space: Space = get_space(uow.session, actor, client_id)
    shape = Shaper(uow)
    tasks = work_tasks.delayed(uow.session, actor, space.id, shape.now)
    return {"delayed tasks": [{**shape(task), "space": space_json(space)} for task in tasks]}
