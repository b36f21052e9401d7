"""``/jobs``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from labelyard.api.cvat_v1.schemas import JobOut
from labelyard.api.deps import ActorDep, IdQuery, LinksDep, UowDep
from labelyard.api.pagination import Page, PageDep, paginate
from labelyard.api.routing import GatedRouter
from labelyard.services import jobs

router = GatedRouter(prefix="/jobs", tags=["jobs"])


def job_filter(
    task_id: IdQuery = None,
    status: str | None = None,
    assignee_id: IdQuery = None,
    ordering: str | None = None,
) -> jobs.JobFilter:
    return jobs.JobFilter(task_id, status, assignee_id, ordering)


@router.get("", response_model=Page[JobOut])
def list_jobs(
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    links: LinksDep,
    page: PageDep,
    filters: Annotated[jobs.JobFilter, Depends(job_filter)],
) -> Page[JobOut]:
    stmt = jobs.list_jobs(actor, filters)
    return paginate(uow.session, stmt, page, request, lambda j: JobOut.of(j, links))


@router.get("/{job_id:int}", response_model=JobOut)
def read_job(job_id: int, actor: ActorDep, uow: UowDep, links: LinksDep) -> JobOut:
    return JobOut.of(jobs.get_job(uow, actor, job_id), links)


@router.put("/{job_id:int}", response_model=JobOut)
def replace_job(
    job_id: int, body: jobs.JobReplace, actor: ActorDep, uow: UowDep, links: LinksDep
) -> JobOut:
    return JobOut.of(jobs.update_job(uow, actor, job_id, body), links)


@router.patch("/{job_id:int}", response_model=JobOut)
def update_job(
    job_id: int, body: jobs.JobWrite, actor: ActorDep, uow: UowDep, links: LinksDep
) -> JobOut:
    """Assignee and reviewer may be given as an id, a username, or ``assignee_id`` /
    ``reviewer_id``; they are answered as user objects."""
    return JobOut.of(jobs.update_job(uow, actor, job_id, body), links)
