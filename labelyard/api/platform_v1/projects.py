"""Spaces, their projects, and a project's workflow."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from labelyard.api.deps import ActorDep, UowDep
from labelyard.api.platform_v1.wire import iso, project_json, space_json
from labelyard.domain import DEFAULT_STAGES, Workflow
from labelyard.services.workflow import items, stages
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
    workflow = stages.change(uow.session, project, stages.parse(stage_list), actor.id)
    uow.commit()
    return workflow_json(workflow)
