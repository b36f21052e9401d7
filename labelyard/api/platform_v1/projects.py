"""Spaces, their projects, and a project's workflow."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body
from fastapi.responses import Response
from pydantic import Field

from labelyard.api.deps import ActorDep, UowDep
from labelyard.api.platform_v1.wire import iso, project_json, space_json
from labelyard.domain import DEFAULT_STAGES, User, Workflow
from labelyard.services.workflow import items, stages
from labelyard.services.workflow import projects as spaces
from labelyard.services.workflow.items import CamelWrite
from labelyard.services.workflow.projects import (
    get_project,
    get_space,
    list_spaces,
    space_projects,
)

router = APIRouter(tags=["work: projects"])


@router.get("/spaces")
def read_spaces(actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    """The spaces the caller belongs to (the default one is everyone's)."""
    return {"items": [space_json(space) for space in uow.session.scalars(list_spaces(actor))]}


class SpaceCreate(CamelWrite):
    name: str = Field(min_length=1, max_length=256)


class MemberAdd(CamelWrite):
    email: str = Field(min_length=1, max_length=254)


@router.post("/spaces", status_code=201)
def create_space(body: SpaceCreate, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    """A new space (admins): its members are those added to it."""
    space = spaces.create_space(uow.session, actor, body.name)
    uow.commit()
    return space_json(space)


@router.get("/spaces/{space_id}/members")
def read_members(space_id: str, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    space = spaces.get_space(uow.session, actor, space_id)
    return {"items": [member_json(user) for user in spaces.members(uow.session, space)]}


@router.post("/spaces/{space_id}/members", status_code=201)
def add_member(space_id: str, body: MemberAdd, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    """Add a user (by email or user name) to a space (admins)."""
    space = spaces.get_space(uow.session, actor, space_id)
    user = spaces.add_member(uow.session, actor, space, body.email)
    uow.commit()
    return member_json(user)


@router.delete("/spaces/{space_id}/members/{user_id}", status_code=204)
def remove_member(space_id: str, user_id: str, actor: ActorDep, uow: UowDep) -> Response:
    space = spaces.get_space(uow.session, actor, space_id)
    spaces.remove_member(uow.session, actor, space, user_id)
    uow.commit()
    return Response(status_code=204)


def member_json(user: User) -> dict[str, Any]:
    return {"id": user.uuid, "username": user.username, "email": user.email, "legacyId": user.id}


@router.get("/spaces/{space_id}/projects")
def read_space_projects(space_id: str, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    space = get_space(uow.session, actor, space_id)
    projects = uow.session.scalars(space_projects(space))
    return {"items": [project_json(project, space) for project in projects]}


@router.get("/spaces/{space_id}/projects/{project_id}")
def read_space_project(
    space_id: str, project_id: str, actor: ActorDep, uow: UowDep
) -> dict[str, Any]:
    space = get_space(uow.session, actor, space_id)
    return project_json(get_project(uow.session, actor, project_id, space=space), space)


class ProjectChange(CamelWrite):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=10_000)
    data_type: Literal["image", "image_sequence"] | None = None
    space_id: str | None = Field(default=None, alias="spaceID", max_length=64)


@router.patch("/spaces/{space_id}/projects/{project_id}")
def change_project(
    space_id: str, project_id: str, body: ProjectChange, actor: ActorDep, uow: UowDep
) -> dict[str, Any]:
    """Name, description and dataType (the project's managers); ``spaceID`` moves it,
    with the datasets its tasks use, to another space (admins)."""
    space = spaces.get_space(uow.session, actor, space_id)
    project = spaces.get_project(uow.session, actor, project_id, space=space)
    items.check_manager(actor, project)
    if body.name is not None:
        project.name = body.name
    if body.description is not None:
        project.description = body.description
    if body.data_type is not None:
        project.data_type = body.data_type
    if body.space_id is not None:
        space = spaces.get_space(uow.session, actor, body.space_id)
        spaces.move_project(uow.session, actor, project, space)
    uow.commit()
    return project_json(project, space)


def workflow_json(workflow: Workflow) -> dict[str, Any]:
    return {
        "version": workflow.version,
        "stages": [stage.to_json() for stage in workflow.stages],
        "createdAt": iso(workflow.created_date),
    }


@router.get("/projects/{project_id}/workflow")
def read_workflow(project_id: str, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    """The project's current workflow (labeling -> review until it is changed)."""
    project = get_project(uow.session, actor, project_id)
    workflow = stages.newest(uow.session, project)
    if workflow is None:
        return {
            "version": 1,
            "stages": [stage.to_json() for stage in DEFAULT_STAGES],
            "createdAt": None,
        }
    return workflow_json(workflow)


@router.put("/projects/{project_id}/workflow")
def change_workflow(
    project_id: str,
    actor: ActorDep,
    uow: UowDep,
    stage_list: list[dict[str, Any]] = Body(embed=True, alias="stages"),
) -> dict[str, Any]:
    """A new version of the workflow: ``{"stages": [{"taskType", "assignment"
    ("queue" | "assigned"), "review", "sampleRate"}]}``. Items already made keep the
    version they were made with; new items get this one."""
    project = get_project(uow.session, actor, project_id)
    items.check_manager(actor, project)
    items.lock_project(uow.session, project)
    workflow = stages.change(uow.session, project, stages.parse(stage_list), actor.id)
    uow.commit()
    return workflow_json(workflow)
