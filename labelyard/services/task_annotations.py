"""A task's annotations: its jobs' annotations seen together. Writes are split by the
jobs' frame ranges; reads merge the jobs, dropping the copies that overlapping segments
hold of one object."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import select

from labelyard.domain import Job, Task, utcnow
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.annotations import (
    KINDS,
    TABLES,
    Action,
    AnnotationsIn,
    TrackIn,
    apply_changes,
    check_total_version,
    load_objects,
    lock_job,
)
from labelyard.services.errors import FieldErrors, PermissionDenied
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork


def _jobs(task: Task) -> list[Job]:
    return [job for segment in task.segments for job in segment.jobs]


def read(uow: UnitOfWork, actor: Actor, task_id: int) -> dict[str, Any]:
    """All of the task's annotations; ``version`` is the sum of its jobs' versions, so it
    changes whenever any of them does."""
    task = get_task(uow, actor, task_id)
    jobs = _jobs(task)
    merged: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    seen: set[bytes] = set()
    for job in jobs:
        for kind, items in load_objects(uow, job.id).items():
            for item in items:
                identity = orjson.dumps({k: v for k, v in item.items() if k != "id"} | {"k": kind},
                                        option=orjson.OPT_SORT_KEYS)  # fmt: skip
                if identity not in seen:
                    seen.add(identity)
                    merged[kind].append(item)
    return {"version": sum(job.annotation_version for job in jobs), **merged}


def write(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    body: AnnotationsIn,
    *,
    action: Action | None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """PUT (``action=None``) or create: each object goes to every job whose frames hold
    it (a track to each job its shapes reach, with those shapes). Update and delete go to
    the job that holds each id."""
    task = get_task(uow, actor, task_id)
    if not access.can_change_task(actor, task):
        raise PermissionDenied()
    jobs = [lock_job(uow, actor, job.id) for job in _jobs(task)]
    check_total_version(jobs, body.version, if_match)
    given = {kind: list(getattr(body, kind)) for kind in KINDS}
    if action in ("update", "delete"):
        parts = _by_owner(uow, jobs, given)
    else:
        parts = _by_frames(jobs, given)
    answer: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for job in jobs:
        part = parts.get(job.id)
        if part is None and action is not None:
            continue
        written = apply_changes(uow, job, part or {kind: [] for kind in KINDS}, action)
        for kind in KINDS:
            answer[kind] += written[kind]
        job.annotation_version += 1
    task.updated_date = utcnow()
    uow.commit()
    return {"version": sum(job.annotation_version for job in jobs), **answer}


def _by_frames(jobs: list[Job], given: dict[str, list[Any]]) -> dict[int, dict[str, list[Any]]]:
    parts: dict[int, dict[str, list[Any]]] = defaultdict(lambda: {kind: [] for kind in KINDS})
    errors = FieldErrors()
    for kind in KINDS:
        for index, item in enumerate(given[kind]):
            placed = False
            for job in jobs:
                first, last = job.segment.start_frame, job.segment.stop_frame
                if isinstance(item, TrackIn):
                    shapes = [s for s in item.shapes if first <= s.frame <= last]
                    if shapes:
                        start = shapes[0].frame
                        parts[job.id][kind].append(
                            item.model_copy(update={"shapes": shapes, "frame": start})
                        )
                        placed = True
                elif first <= item.frame <= last:
                    parts[job.id][kind].append(item)
                    placed = True
            if not placed:
                errors.add(
                    f"{kind}.{index}.frame", f"Frame {item.frame} is not a frame of this task."
                )
    errors.raise_if_any()
    return dict(parts)


def _by_owner(
    uow: UnitOfWork, jobs: list[Job], given: dict[str, list[Any]]
) -> dict[int, dict[str, list[Any]]]:
    parts: dict[int, dict[str, list[Any]]] = defaultdict(lambda: {kind: [] for kind in KINDS})
    job_ids = [job.id for job in jobs]
    errors = FieldErrors()
    for kind in KINDS:
        table = TABLES[kind]
        ids = [item.id for item in given[kind] if item.id is not None]
        rows = uow.session.execute(
            select(table.c.id, table.c.job_id).where(
                table.c.id.in_(ids), table.c.job_id.in_(job_ids)
            )
        )
        owners = {object_id: job_id for object_id, job_id in rows}
        for index, item in enumerate(given[kind]):
            owner = owners.get(item.id) if item.id is not None else None
            if owner is None:
                errors.add(f"{kind}.{index}.id", f"No {kind[:-1]} {item.id} in this task.")
            else:
                parts[owner][kind].append(item)
    errors.raise_if_any()
    return dict(parts)


def clear(uow: UnitOfWork, actor: Actor, task_id: int, if_match: str | None = None) -> None:
    write(uow, actor, task_id, AnnotationsIn(), action=None, if_match=if_match)
