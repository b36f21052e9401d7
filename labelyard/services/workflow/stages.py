"""A project's workflow: versions of an ordered list of stages."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelyard.domain import DEFAULT_STAGES, Assignment, Project, Stage, Workflow
from labelyard.domain.workflow import REVIEW_TASK_TYPES
from labelyard.services.errors import FieldErrors

TASK_TYPE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_STAGES = 20


def newest(session: Session, project: Project) -> Workflow | None:
    return session.scalars(
        select(Workflow)
        .where(Workflow.project_id == project.id)
        .order_by(Workflow.version.desc())
        .limit(1)
    ).first()


def current(session: Session, project: Project) -> Workflow:
    """The project's newest workflow version; the default one (labeling -> review) is
    made on first use."""
    workflow = newest(session, project)
    if workflow is None:
        workflow = Workflow(
            project_id=project.id,
            version=1,
            stage_data=[stage.to_json() for stage in DEFAULT_STAGES],
        )
        session.add(workflow)
        session.flush()
    return workflow


def change(session: Session, project: Project, stages: list[Stage], actor_id: int) -> Workflow:
    """A new version with these stages; items already made keep the version they have."""
    newest = session.scalar(
        select(func.max(Workflow.version)).where(Workflow.project_id == project.id)
    )
    workflow = Workflow(
        project_id=project.id,
        version=(newest or 0) + 1,
        stage_data=[stage.to_json() for stage in stages],
        created_by_id=actor_id,
    )
    session.add(workflow)
    session.flush()
    return workflow


def parse(data: Any) -> list[Stage]:
    """Stages from the wire: ``[{"taskType", "assignment", "review", "sampleRate"}]``;
    every bad value is named. The first stage labels: review needs something to review."""
    errors = FieldErrors()
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_STAGES:
        errors.add("stages", f"A list of 1 to {MAX_STAGES} stages.")
        errors.raise_if_any()
    stages: list[Stage] = []
    seen: set[str] = set()
    for index, entry in enumerate(data):
        where = f"stages.{index}"
        if not isinstance(entry, dict):
            errors.add(where, "A stage is an object with a taskType.")
            continue
        unknown = set(entry) - {"taskType", "assignment", "review", "sampleRate"}
        for name in sorted(unknown):
            errors.add(f"{where}.{name}", "Unknown field.")
        task_type = entry.get("taskType")
        if not isinstance(task_type, str) or not TASK_TYPE.fullmatch(task_type):
            errors.add(f"{where}.taskType", "Lower-case letters, digits, _ or -, up to 32.")
            continue
        if task_type in seen:
            errors.add(f"{where}.taskType", f'"{task_type}" is already a stage.')
        seen.add(task_type)
        assignment = entry.get("assignment", Assignment.QUEUE.value)
        if assignment not in {a.value for a in Assignment}:
            errors.add(f"{where}.assignment", 'One of "assigned", "queue".')
            continue
        review = entry.get("review", task_type in REVIEW_TASK_TYPES)
        if not isinstance(review, bool):
            errors.add(f"{where}.review", "true or false.")
            continue
        rate = entry.get("sampleRate")
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                errors.add(f"{where}.sampleRate", "A number from 0 to 1.")
                continue
            if not review:
                errors.add(f"{where}.sampleRate", "Only a review stage samples.")
                continue
        if index == 0 and review:
            errors.add(f"{where}.review", "The first stage labels; a review needs work to review.")
            continue
        stages.append(Stage(task_type, Assignment(assignment), review, rate))
    errors.raise_if_any()
    return stages
