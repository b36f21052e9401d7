"""Signals as use cases: one item, a bulk of items each on its own, the pull queue; the
leases that run out; and the jobs that follow their items' stages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select, update
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
    """The items ``actor`` may claim, most urgent first (ix_work_items_queue holds them in
    this order: the first eligible entry is the answer, read without sorting)."""
    eligible = select(WorkItem).where(
        WorkItem.project_id == project.id,
        WorkItem.status == WorkStatus.NEW,
        or_(
            WorkItem.assignee_id == actor.id,
            and_(WorkItem.assignee_id.is_(None), WorkItem.assignment == "queue"),
        ),
        # Nobody reviews their own labelling.
        or_(
            WorkItem.in_review.is_(False),
            WorkItem.labeller_id.is_(None),
            WorkItem.labeller_id != actor.id,
        ),
    )
    if task_type:
        eligible = eligible.where(WorkItem.task_type == task_type)
    return eligible.order_by(
        WorkItem.due_at.is_(None),
        WorkItem.due_at,
        WorkItem.difficulty.desc(),
        WorkItem.created_date,
        WorkItem.id,
    )


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
    eligible = queue(actor, project, task_type).limit(1)
    if skip_locked:
        eligible = eligible.with_for_update(skip_locked=True, of=WorkItem)
    item = session.scalars(eligible).first()
    if item is None:
        return None
    _signal(session, item, who, SignalRequest(Signal.START), lease_seconds, now=now)
    return item


def return_expired(session: Session, project: Project, now: datetime) -> int:
    """Items whose lease ran out go back to their stage's queue; how many did."""
    expiring = (
        WorkItem.project_id == project.id,
        WorkItem.status == WorkStatus.IN_PROGRESS,
        WorkItem.leased_until <= now,
    )
    # Most of the time there are none: ask for one id before loading any item.
    if session.scalar(select(WorkItem.id).where(*expiring).limit(1)) is None:
        return 0
    expired = session.scalars(
        select(WorkItem).where(*expiring).with_for_update(skip_locked=True, of=WorkItem)
    ).all()
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
            job for job, first, last in jobs if _open_items(session, item.task_id, first, last) == 0
        ]
        _set_status(session, done, JobStatus.COMPLETED)


def _jobs_of(session: Session, item: WorkItem) -> list[tuple[int, int, int]]:
    """(job id, first frame, last frame) of the jobs holding the item's frame (all the
    task's jobs for an item of the whole task)."""
    stmt = (
        select(Job.id, Segment.start_frame, Segment.stop_frame)
        .join(Segment, Segment.id == Job.segment_id)
        .where(Segment.task_id == item.task_id)
    )
    if item.frame is not None:
        stmt = stmt.where(Segment.start_frame <= item.frame, Segment.stop_frame >= item.frame)
    return [(job_id, first, last) for job_id, first, last in session.execute(stmt)]


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


def _open_items(session: Session, task_id: int, first: int, last: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(WorkItem)
            .where(
                WorkItem.task_id == task_id,
                WorkItem.frame.between(first, last),
                WorkItem.status.not_in([WorkStatus.COMPLETED, WorkStatus.FAILED]),
            )
        )
        or 0
    )
