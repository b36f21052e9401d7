"""A task's annotations: its jobs' annotations seen together. Writes are split by the
jobs' frame ranges; reads merge the jobs, dropping the copies that overlapping segments
hold of one object."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec

from labelyard.adapters.db.bulk import AnnotationRows
from labelyard.domain import Job, Task, utcnow
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.annotations import (
    KINDS,
    TABLES,
    Action,
    Annotations,
    AnnotationsIn,
    Track,
    apply_changes,
    check_total_version,
    load_objects,
    lock_job,
    require_kinds,
)
from labelyard.services.errors import FieldErrors, PermissionDenied
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork


def _jobs(task: Task) -> list[Job]:
    return [job for segment in task.segments for job in segment.jobs]


def read(uow: UnitOfWork, actor: Actor, task_id: int) -> Annotations:
    """All of the task's annotations; ``version`` is the sum of its jobs' versions, so it
    changes whenever any of them does."""
    task = get_task(uow, actor, task_id)
    jobs = _jobs(task)
    if len(jobs) == 1:
        # Nothing overlaps one job: its objects as they are (an export of 500,000 of them
        # would otherwise hold each text twice, to compare).
        return Annotations(jobs[0].annotation_version, load_objects(uow, jobs[0].id))
    merged: dict[str, list[tuple[int, str]]] = {kind: [] for kind in KINDS}
    seen: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for job in jobs:
        for kind, items in load_objects(uow, job.id).items():
            # The copy of an object that an overlapping job holds has the same text
            # but for the id, which comes first: {"id":7,...
            for object_id, text in items:
                identity = text[text.index(",") + 1 :]
                if identity not in seen[kind]:
                    seen[kind].add(identity)
                    merged[kind].append((object_id, text))
    return Annotations(sum(job.annotation_version for job in jobs), merged)


def write(
    uow: UnitOfWork,
    actor: Actor,
    task_id: int,
    body: AnnotationsIn,
    *,
    action: Action | None,
    if_match: str | None = None,
) -> Annotations:
    """PUT (``action=None``) or create: each object goes to every job whose frames hold
    it (a track to each job its shapes reach, with those shapes). Update and delete go to
    the job that holds each id."""
    if action is None:
        require_kinds(body)
    task = get_task(uow, actor, task_id)
    jobs = check_can_write(uow, actor, task)
    check_total_version(jobs, body.version, if_match)
    given = body.objects()
    if action in ("update", "delete"):
        parts = _by_owner(uow, jobs, given)
    else:
        parts = _by_frames(jobs, given)
    answer: dict[str, list[tuple[int, str]]] = {kind: [] for kind in KINDS}
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
    return Annotations(sum(job.annotation_version for job in jobs), answer)


def check_can_write(uow: UnitOfWork, actor: Actor, task: Task) -> list[Job]:
    """The task's jobs, locked for writing, when ``actor`` may change its annotations."""
    if not access.can_change_task(actor, task):
        raise PermissionDenied()
    return [lock_job(uow, actor, job.id) for job in _jobs(task)]


def _by_frames(jobs: list[Job], given: dict[str, list[Any]]) -> dict[int, dict[str, list[Any]]]:
    parts: dict[int, dict[str, list[Any]]] = defaultdict(lambda: {kind: [] for kind in KINDS})
    errors = FieldErrors()
    # Read once: through the ORM for every object, they cost an import of 500,000 boxes
    # about a second.
    ranges = [(job, job.segment.start_frame, job.segment.stop_frame) for job in jobs]
    for kind in KINDS:
        for index, item in enumerate(given[kind]):
            placed = False
            for job, first, last in ranges:
                if isinstance(item, Track):
                    shapes = [s for s in item.shapes if first <= s.frame <= last]
                    if shapes:
                        part = msgspec.structs.replace(item, shapes=shapes, frame=shapes[0].frame)
                        parts[job.id][kind].append(part)
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
    store = AnnotationRows(uow.session)
    errors = FieldErrors()
    for kind in KINDS:
        if not given[kind]:
            continue
        owners = store.owners(TABLES[kind], job_ids)
        for index, item in enumerate(given[kind]):
            owner = owners.get(item.id) if isinstance(item.id, int) else None
            if owner is None:
                errors.add(f"{kind}.{index}.id", f"No {kind[:-1]} {item.id} in this task.")
            else:
                parts[owner][kind].append(item)
    errors.raise_if_any()
    return dict(parts)


def clear(uow: UnitOfWork, actor: Actor, task_id: int, if_match: str | None = None) -> None:
    write(uow, actor, task_id, AnnotationsIn.nothing(), action=None, if_match=if_match)
