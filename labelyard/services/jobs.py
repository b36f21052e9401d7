"""Jobs: reading and assigning them, and cutting a task's frames into segments."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from pydantic import Field
from sqlalchemy import Select, select

from labelyard.domain import Job, JobStatus, Segment, Task, TaskState, TeamRole, utcnow
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labelyard.services.fields import Id, UserRef, WriteModel, is_id, pick_user_ref, resolve_user
from labelyard.services.listing import order_by
from labelyard.services.uow import UnitOfWork


class JobWrite(WriteModel):
    read_only = frozenset({"id", "url", "start_frame", "stop_frame", "task_id", "segment"})

    status: JobStatus = JobStatus.ANNOTATION
    assignee: UserRef | None = None
    assignee_id: Id | None = None
    reviewer: UserRef | None = None
    reviewer_id: Id | None = None


class JobReplace(JobWrite):
    status: JobStatus = Field()


@dataclass
class JobFilter:
    task_id: int | None = None
    status: str | None = None
    assignee_id: int | None = None
    ordering: str | None = None


def list_jobs(actor: Actor, filters: JobFilter) -> Select[Any]:
    stmt = select(Job).join(Segment, Job.segment_id == Segment.id).where(access.visible_jobs(actor))
    if filters.task_id is not None:
        stmt = stmt.where(Segment.task_id == filters.task_id)
    if filters.status is not None:
        stmt = stmt.where(Job.status == filters.status)
    if filters.assignee_id is not None:
        stmt = stmt.where(Job.assignee_id == filters.assignee_id)
    columns = {"id": Job.id, "status": Job.status, "start_frame": Segment.start_frame}
    return order_by(stmt, filters.ordering, columns, default="id")


def get_job(uow: UnitOfWork, actor: Actor, job_id: int) -> Job:
    if not is_id(job_id):
        raise NotFound()
    job = uow.session.scalar(select(Job).where(Job.id == job_id, access.visible_jobs(actor)))
    if job is None:
        raise NotFound()
    return job


def update_job(uow: UnitOfWork, actor: Actor, job_id: int, data: JobWrite) -> Job:
    job = get_job(uow, actor, job_id)
    if not access.can_change_job(actor, job):
        raise PermissionDenied()
    fields = data.model_fields_set
    for name in ("assignee", "reviewer"):
        given, ref, path = pick_user_ref(data, name)
        if not given:
            continue
        user = resolve_user(uow, ref, path)
        if (user.id if user else None) != getattr(job, f"{name}_id"):
            if not access.can_assign_job(actor, job):
                raise PermissionDenied(f"Only those who run the task can change a job's {name}.")
            setattr(job, name, user)
    if "status" in fields and data.status != job.status:
        if job.task.state == TaskState.PAUSED:
            raise Conflict("The task is paused: its jobs cannot change status.")
        job.status = data.status
    job.task.updated_date = utcnow()
    uow.commit()
    return job


def segment_ranges(start: int, size: int, segment_size: int, overlap: int) -> list[tuple[int, int]]:
    """Frame ranges for ``size`` new frames from ``start``, as CVAT cuts them: segments of
    ``segment_size`` (0 = one segment) that share ``overlap`` frames with the previous."""
    if size <= 0:
        return []
    if segment_size <= 0 or segment_size > size:
        segment_size = size
    overlap = min(max(overlap, 0), segment_size // 2)
    step = segment_size - overlap
    ranges = []
    first = 0
    while True:
        last = min(first + segment_size - 1, size - 1)
        ranges.append((start + first, start + last))
        if last == size - 1:
            return ranges
        first += step


def add_segments(uow: UnitOfWork, task: Task, ranges: list[tuple[int, int]]) -> list[Job]:
    """One segment and one job per range; new jobs are shared out among the task's team
    (the annotator with the fewest jobs first), and the task's work can start."""
    if any(first > last or first < 0 for first, last in ranges):
        raise InvalidInput.on("segments", "A segment's start frame must not pass its stop frame.")
    annotators = [m.user_id for m in task.team if m.role == TeamRole.ANNOTATOR]
    reviewers = [m.user_id for m in task.team if m.role == TeamRole.REVIEWER]
    existing = [job for segment in task.segments for job in segment.jobs]
    loads = Counter(job.assignee_id for job in existing)
    review_loads = Counter(job.reviewer_id for job in existing)
    jobs = []
    for first, last in ranges:
        job = Job(
            assignee_id=_least_loaded(annotators, loads),
            reviewer_id=_least_loaded(reviewers, review_loads),
        )
        task.segments.append(Segment(start_frame=first, stop_frame=last, jobs=[job]))
        jobs.append(job)
    if task.state == TaskState.NOT_STARTED and ranges:
        task.state = TaskState.IN_PROGRESS
    uow.flush()
    return jobs


def _least_loaded(users: list[int], loads: Counter[int | None]) -> int | None:
    if not users:
        return None
    chosen = min(users, key=lambda user_id: loads[user_id])
    loads[chosen] += 1
    return chosen
