"""Signals as use cases: one item, a bulk of items each on its own, the pull queue; the
leases that run out; and the jobs that follow their items' stages."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, Select, and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from labelyard.domain import (
    Job,
    JobStatus,
    Outcome,
    Project,
    Segment,
    Signal,
    WorkItem,
    WorkSignal,
    WorkStatus,
    utcnow,
)
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.errors import LabelyardError, PermissionDenied
from labelyard.services.workflow import items
from labelyard.services.workflow.signals import (
    Effects,
    Signaller,
    SignalRequest,
    apply,
    expire,
)

MAX_BULK = 100


def signaller(actor: Actor, project: Project) -> Signaller:
    if not access.does_work(actor):
        raise PermissionDenied("Observers do not work on items.")
    return Signaller(actor.id, access.manages_work(actor, project))


def send(
    session: Session,
    actor: Actor,
    project: Project,
    item_uuid: str,
    request: SignalRequest,
    *,
    lease_seconds: float,
) -> tuple[WorkItem, WorkSignal]:
    """Apply one signal to one item; the item and its new history entry (not committed)."""
    who = signaller(actor, project)
    item = items.get(session, actor, project, item_uuid, for_update=True)
    return item, _signal(session, item, who, request, lease_seconds)


@dataclass(frozen=True)
class BulkResult:
    """One item's outcome in a bulk signal: its history entry, or why it was refused."""

    work_item_id: str
    entry: WorkSignal | None = None
    error: LabelyardError | None = None


def send_bulk(
    session: Session,
    actor: Actor,
    project: Project,
    targets: list[tuple[str, tuple[str, ...]]],
    request: SignalRequest,
    *,
    lease_seconds: float,
) -> list[BulkResult]:
    """The same signal to up to 100 items, each in a savepoint of its own: a refused item
    leaves the others applied."""
    who = signaller(actor, project)
    results = []
    for item_uuid, comments in targets:
        one = SignalRequest(
            request.signal, request.task_type, request.outcome, comments, request.assignee_id
        )
        savepoint = session.begin_nested()
        try:
            item = items.get(session, actor, project, item_uuid, for_update=True)
            entry = _signal(session, item, who, one, lease_seconds)
            savepoint.commit()
            results.append(BulkResult(item.uuid, entry=entry))
        except LabelyardError as error:
            savepoint.rollback()
            results.append(BulkResult(item_uuid, error=error))
    return results


def queue(actor: Actor, project: Project, task_type: str | None) -> Select[WorkItem]:
    """The items ``actor`` may claim, most urgent first; ix_work_items_queue holds them in
    this order, so the first eligible entry is the answer, read without sorting."""
    return _queue(task_type is not None).params(
        project_id=project.id, actor_id=actor.id, task_type=task_type
    )


@functools.cache
def _queue(by_task_type: bool) -> Select[WorkItem]:
    # Built once with parameters, not for every claim: making the expressions cost more
    # than running the statement.
    actor_id = bindparam("actor_id", type_=Integer)
    eligible = select(WorkItem).where(
        WorkItem.project_id == bindparam("project_id"),
        WorkItem.status == WorkStatus.NEW,
        or_(
            WorkItem.assignee_id == actor_id,
            and_(WorkItem.assignee_id.is_(None), WorkItem.assignment == "queue"),
        ),
        # Nobody reviews their own labelling.
        or_(
            WorkItem.in_review.is_(False),
            WorkItem.labeller_id.is_(None),
            WorkItem.labeller_id != actor_id,
        ),
    )
    if by_task_type:
        eligible = eligible.where(WorkItem.task_type == bindparam("task_type"))
    return eligible.order_by(
        WorkItem.due_at.is_(None),
        WorkItem.due_at,
        WorkItem.difficulty.desc(),
        WorkItem.created_date,
        WorkItem.id,
    )


@functools.cache
def _claim(by_task_type: bool, skip_locked: bool) -> Select[WorkItem]:
    stmt = _queue(by_task_type).limit(1)
    return stmt.with_for_update(skip_locked=True, of=WorkItem) if skip_locked else stmt


def claim_next(
    session: Session,
    actor: Actor,
    project: Project,
    task_type: str | None,
    *,
    lease_seconds: float,
    skip_locked: bool,
) -> WorkItem | None:
    """Hand the actor the most urgent item they may take (due soonest, then hardest, then
    oldest), claimed; None when there is none. On PostgreSQL, rows another claimer holds
    are skipped; SQLite's write lock lets one claimer in at a time."""
    who = signaller(actor, project)
    now = utcnow()
    return_expired(session, project, now)
    claim = _claim(task_type is not None, skip_locked)
    values = {"project_id": project.id, "actor_id": actor.id, "task_type": task_type}
    item = session.scalars(claim, values).first()
    if item is None:
        return None
    _signal(session, item, who, SignalRequest(Signal.START), lease_seconds, now=now)
    return item


_EXPIRING = (
    WorkItem.project_id == bindparam("project_id"),
    WorkItem.status == WorkStatus.IN_PROGRESS,
    WorkItem.leased_until <= bindparam("now"),
)
# Most of the time there are none: one id is asked for before any item is loaded.
_ANY_EXPIRED = select(WorkItem.id).where(*_EXPIRING).limit(1)
_EXPIRED = select(WorkItem).where(*_EXPIRING).with_for_update(skip_locked=True, of=WorkItem)


def return_expired(session: Session, project: Project, now: datetime) -> int:
    """Items whose lease ran out go back to their stage's queue; how many did."""
    values = {"project_id": project.id, "now": now}
    if session.connection().execute(_ANY_EXPIRED, values).first() is None:
        return 0
    expired = session.scalars(_EXPIRED, values).all()
    for item in expired:
        session.add(expire(item, now))
        item.updated_date = now
    return len(expired)


def renew_lease(item: WorkItem, actor: Actor, lease_seconds: float) -> None:
    """A write by the item's holder keeps its claim (a lease that ran out stays so)."""
    now = utcnow()
    if (
        item.status == WorkStatus.IN_PROGRESS
        and item.assignee_id == actor.id
        and item.leased_until is not None
        and item.leased_until > now
    ):
        item.leased_until = now + timedelta(seconds=lease_seconds)


def _signal(
    session: Session,
    item: WorkItem,
    who: Signaller,
    request: SignalRequest,
    lease_seconds: float,
    *,
    now: datetime | None = None,
) -> WorkSignal:
    effects = Effects()
    entries = apply(
        item, who, request, now=now or utcnow(), lease_seconds=lease_seconds, effects=effects
    )
    session.add_all(entries)
    _follow_with_jobs(session, item, request, effects)
    session.flush()
    return entries[-1]


def _follow_with_jobs(
    session: Session, item: WorkItem, request: SignalRequest, effects: Effects
) -> None:
    """The CVAT face's job status follows the work: starting a review puts the job in
    validation, rework (or reopening) puts it back in annotation, and the job is completed
    once every item on its frames is."""
    if item.task_id is None:
        return
    reworked = (
        item.status == WorkStatus.NEW
        and not item.in_review
        and (
            request.signal == Signal.REOPEN
            or (request.signal == Signal.COMPLETE and request.outcome == Outcome.NOT_OK)
        )
    )
    if not (effects.started_review or reworked or effects.completed):
        return
    jobs = _jobs_of(session, item)
    if effects.started_review:
        ids = [job for job, _, _ in jobs]
        _set_status(session, ids, JobStatus.VALIDATION, only_from=JobStatus.ANNOTATION)
    elif reworked:
        _set_status(session, [job for job, _, _ in jobs], JobStatus.ANNOTATION)
    if effects.completed:
        session.flush()
        done = [
            job
            for job, first, last in jobs
            if not _has_open_items(session, item.task_id, first, last)
        ]
        _set_status(session, done, JobStatus.COMPLETED)


def _jobs_of(session: Session, item: WorkItem) -> list[tuple[int, int, int]]:
    """(job id, first frame, last frame) of the jobs holding the item's frame (all the
    task's jobs for an item of the whole task)."""
    stmt = _JOBS_OF_FRAME if item.frame is not None else _JOBS_OF_TASK
    rows = session.connection().execute(stmt, {"task_id": item.task_id, "frame": item.frame})
    return [(job_id, first, last) for job_id, first, last in rows]


_JOBS_OF_TASK = (
    select(Job.id, Segment.start_frame, Segment.stop_frame)
    .join(Segment, Segment.id == Job.segment_id)
    .where(Segment.task_id == bindparam("task_id"))
)
_JOBS_OF_FRAME = _JOBS_OF_TASK.where(
    Segment.start_frame <= bindparam("frame"), Segment.stop_frame >= bindparam("frame")
)


def _set_status(
    session: Session, job_ids: list[int], status: JobStatus, *, only_from: JobStatus | None = None
) -> None:
    if not job_ids:
        return
    stmt = update(Job).where(Job.id.in_(job_ids))
    if only_from is not None:
        stmt = stmt.where(Job.status == only_from)
    session.execute(
        stmt.values(status=status.value), execution_options={"synchronize_session": "fetch"}
    )


# Whether any item on a job's frames is still open: the job is complete once none is.
_AN_OPEN_ITEM = (
    select(WorkItem.id)
    .where(
        WorkItem.task_id == bindparam("task_id"),
        WorkItem.frame.between(bindparam("first"), bindparam("last")),
        WorkItem.status.not_in([WorkStatus.COMPLETED, WorkStatus.FAILED]),
    )
    .limit(1)
)


def _has_open_items(session: Session, task_id: int, first: int, last: int) -> bool:
    values = {"task_id": task_id, "first": first, "last": last}
    return session.connection().execute(_AN_OPEN_ITEM, values).first() is not None
