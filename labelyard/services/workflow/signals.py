"""The signals that move a work item: its state machine, over one loaded item.

``apply`` changes the item and answers the history entry it appends; it never commits and
never touches anything but the item, so that the use cases (one signal, a bulk of them,
the pull queue) and the property tests share exactly the same rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from labelyard.domain import Assignment, Outcome, Signal, WorkItem, WorkSignal, WorkStatus
from labelyard.services.errors import Conflict, InvalidInput, PermissionDenied

SENT_SIGNALS = frozenset(
    {Signal.START, Signal.RELEASE, Signal.COMPLETE, Signal.CANCEL, Signal.REOPEN}
)
MAX_COMMENTS = 100
COMMENT_MAX = 4000


@dataclass(frozen=True)
class SignalRequest:
    """A signal as sent. ``task_type`` None means the item's current stage (a bulk signal
    names none); ``assignee_id`` is who a manager hands the item to with ``start``."""

    signal: Signal
    task_type: str | None = None
    outcome: Outcome | None = None
    comments: tuple[str, ...] = ()
    assignee_id: int | None = None


@dataclass(frozen=True)
class Signaller:
    """Who sends a signal, as the state machine needs to know them."""

    id: int
    manages: bool  # may assign, cancel, reopen and act on others' items


@dataclass
class Effects:
    """What happened beyond the item, for the use case to follow up: stages entered (a
    job moves to validation) and whether the item just completed."""

    started_review: bool = False
    completed: bool = False
    notes: list[str] = field(default_factory=list)


def conflict(item: WorkItem, message: str) -> Conflict:
    error = Conflict(f'{message} The work item is {item.status} in stage "{item.task_type}".')
    error.extra = {"status": item.status, "taskType": item.task_type}
    return error


def lease_expired(item: WorkItem, now: datetime) -> bool:
    return (
        item.status == WorkStatus.IN_PROGRESS
        and item.leased_until is not None
        and item.leased_until <= now
    )


def expire(item: WorkItem, now: datetime) -> WorkSignal:
    """Return an item whose lease ran out to its stage: to the queue, or to its assignee
    in a stage whose items are assigned."""
    holder = item.assignee_id
    _to_new(item)
    return _entry(item, None, Signal.EXPIRE, now, note=f"lease of user {holder} expired")


def apply(
    item: WorkItem,
    who: Signaller,
    request: SignalRequest,
    *,
    now: datetime,
    lease_seconds: float,
    effects: Effects | None = None,
) -> list[WorkSignal]:
    """Apply one signal; the history entries it appends (an expired lease first, when
    the item's lease had run out). Refusals raise and leave the item as it was."""
    effects = effects if effects is not None else Effects()
    entries: list[WorkSignal] = []
    if request.task_type is not None and request.task_type != item.task_type:
        raise conflict(item, f'The signal is for stage "{request.task_type}".')
    _check_comments(request.comments)
    before = _state(item)
    if lease_expired(item, now):
        entries.append(expire(item, now))
    # The history names the stage a signal was sent in, not the one it led to.
    stage = (item.stage_index, item.task_type)
    try:
        outcome = _HANDLERS[request.signal](item, who, request, now, lease_seconds, effects)
    except Exception:
        # A refusal leaves the item as it was, a lapsed lease too: the next signal (or the
        # queue's sweep) returns it, and records that it did.
        for name, value in before.items():
            setattr(item, name, value)
        raise
    if request.comments:
        item.feedback = [*item.feedback, *request.comments]
    item.updated_date = now
    entries.append(
        _entry(
            item,
            who.id,
            request.signal,
            now,
            outcome=outcome,
            comments=list(request.comments),
            note="; ".join(effects.notes),
            stage=stage,
        )
    )
    return entries


_STATE = ("status", "stage_index", "task_type", "assignment", "in_review", "assignee_id",
          "leased_until", "labeller_id", "reviewer_id")  # fmt: skip


def _state(item: WorkItem) -> dict[str, object]:
    return {name: getattr(item, name) for name in _STATE}


def _start(
    item: WorkItem,
    who: Signaller,
    request: SignalRequest,
    now: datetime,
    lease_seconds: float,
    effects: Effects,
) -> Outcome | None:
    if item.status not in (WorkStatus.NEW, WorkStatus.IN_PROGRESS):
        raise conflict(item, "Only a NEW or IN_PROGRESS item can be started; reopen it first.")
    claimer = who.id
    if request.assignee_id is not None and request.assignee_id != who.id:
        if not who.manages:
            raise PermissionDenied("Only a manager of the project starts an item for another user.")
        claimer = request.assignee_id
    handing_over = claimer != item.assignee_id and item.assignee_id is not None
    if handing_over and not who.manages:
        holder = "claimed by" if item.status == WorkStatus.IN_PROGRESS else "assigned to"
        raise conflict(item, f"It is {holder} another user.")
    if item.assignee_id is None and item.assignment == Assignment.ASSIGNED and not who.manages:
        raise conflict(item, "Items of this stage are assigned by a manager.")
    if item.in_review and claimer == item.labeller_id:
        raise conflict(item, "Nobody reviews their own labelling.")
    if item.status == WorkStatus.NEW and item.in_review:
        effects.started_review = True
    item.status = WorkStatus.IN_PROGRESS
    item.assignee_id = claimer
    item.leased_until = now + timedelta(seconds=lease_seconds)
    return None


def _release(
    item: WorkItem,
    who: Signaller,
    request: SignalRequest,
    now: datetime,
    lease_seconds: float,
    effects: Effects,
) -> Outcome | None:
    if item.status != WorkStatus.IN_PROGRESS:
        raise conflict(item, "Only an IN_PROGRESS item can be released.")
    _check_holder(item, who)
    _to_new(item)
    return None


def _complete(
    item: WorkItem,
    who: Signaller,
    request: SignalRequest,
    now: datetime,
    lease_seconds: float,
    effects: Effects,
) -> Outcome | None:
    if item.status != WorkStatus.IN_PROGRESS:
        raise conflict(item, "Only an IN_PROGRESS item can be completed; start it first.")
    _check_holder(item, who)
    stages = item.workflow.stages
    if not item.in_review:
        item.labeller_id = item.assignee_id
        _advance(item, effects)
        return None
    if request.outcome is None:
        raise InvalidInput.on("signalOutcome", "A review is completed with OK or NOT_OK.")
    if who.id == item.labeller_id:
        # A manager may complete a review held by someone else, but not of their own work.
        raise conflict(item, "Nobody reviews their own labelling.")
    item.reviewer_id = item.assignee_id
    if request.outcome == Outcome.OK:
        _advance(item, effects)
        return Outcome.OK
    # Rework: back to the labelling stage this review follows, to whoever labelled it.
    target = max(i for i in range(item.stage_index) if not stages[i].review)
    labeller = item.labeller_id
    item.enter(target)
    item.status = WorkStatus.NEW
    item.leased_until = None
    item.assignee_id = labeller
    effects.notes.append(f'back to "{item.task_type}" for rework')
    return Outcome.NOT_OK


def _cancel(
    item: WorkItem,
    who: Signaller,
    request: SignalRequest,
    now: datetime,
    lease_seconds: float,
    effects: Effects,
) -> Outcome | None:
    if not who.manages:
        raise PermissionDenied("Only a manager of the project cancels work items.")
    if item.status not in (WorkStatus.NEW, WorkStatus.IN_PROGRESS):
        raise conflict(item, "Only a NEW or IN_PROGRESS item can be cancelled.")
    item.status = WorkStatus.FAILED
    item.leased_until = None
    return None


def _reopen(
    item: WorkItem,
    who: Signaller,
    request: SignalRequest,
    now: datetime,
    lease_seconds: float,
    effects: Effects,
) -> Outcome | None:
    if not who.manages:
        raise PermissionDenied("Only a manager of the project reopens work items.")
    if item.status not in (WorkStatus.COMPLETED, WorkStatus.FAILED):
        raise conflict(item, "Only a COMPLETED or FAILED item can be reopened.")
    item.status = WorkStatus.NEW
    item.assignee_id = None
    item.leased_until = None
    return None


_HANDLERS = {
    Signal.START: _start,
    Signal.RELEASE: _release,
    Signal.COMPLETE: _complete,
    Signal.CANCEL: _cancel,
    Signal.REOPEN: _reopen,
}


def _advance(item: WorkItem, effects: Effects) -> None:
    """On to the next stage that takes the item (a sampling review may pass it by), or
    COMPLETED after the last."""
    stages = item.workflow.stages
    index = item.stage_index + 1
    while index < len(stages) and stages[index].review and not stages[index].samples(item.uuid):
        effects.notes.append(f'"{stages[index].task_type}" not sampled')
        index += 1
    item.leased_until = None
    if index >= len(stages):
        item.status = WorkStatus.COMPLETED
        effects.completed = True
        return
    item.enter(index)
    item.status = WorkStatus.NEW
    item.assignee_id = None


def _to_new(item: WorkItem) -> None:
    item.status = WorkStatus.NEW
    item.leased_until = None
    if item.assignment == Assignment.QUEUE:
        item.assignee_id = None


def _check_holder(item: WorkItem, who: Signaller) -> None:
    if item.assignee_id != who.id and not who.manages:
        raise PermissionDenied("The work item is held by another user.")


def _check_comments(comments: tuple[str, ...]) -> None:
    if len(comments) > MAX_COMMENTS:
        raise InvalidInput.on("feedback.comments", f"Up to {MAX_COMMENTS} comments.")
    for index, comment in enumerate(comments):
        if len(comment) > COMMENT_MAX:
            raise InvalidInput.on(f"feedback.comments.{index}", f"Up to {COMMENT_MAX} characters.")


def _entry(
    item: WorkItem,
    actor_id: int | None,
    signal: Signal,
    now: datetime,
    *,
    outcome: Outcome | None = None,
    comments: list[str] | None = None,
    note: str = "",
    stage: tuple[int, str] | None = None,
) -> WorkSignal:
    index, task_type = stage if stage is not None else (item.stage_index, item.task_type)
    return WorkSignal(
        work_item_id=item.id,
        actor_id=actor_id,
        signal=signal.value,
        task_type=task_type,
        stage_index=index,
        outcome=outcome.value if outcome is not None else None,
        comments=comments or [],
        status=item.status,
        note=note,
        created_date=now,
    )
