"""The signal state machine, driven by random signals over one in-memory work item: no
sequence reaches an invalid state, a refusal changes nothing, and the history records
every change. Then a few sequences the issue names, spelled out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from labelyard.domain import (
    Assignment,
    Outcome,
    Signal,
    Stage,
    Workflow,
    WorkItem,
    WorkSignal,
    WorkStatus,
)
from labelyard.services.errors import Conflict, InvalidInput, PermissionDenied
from labelyard.services.workflow import signals
from labelyard.services.workflow.signals import Signaller, SignalRequest

LEASE = 900
T0 = datetime(2030, 1, 1, tzinfo=UTC)
MANAGER = Signaller(1, manages=True)
WORKERS = [Signaller(n, manages=False) for n in (2, 3, 4)]
PEOPLE = [MANAGER, *WORKERS]

LABELING = Stage("labeling")
REVIEW = Stage("review", review=True)
WORKFLOWS = {
    "default": [LABELING, REVIEW],
    "sampled": [LABELING, Stage("review", review=True, sample_rate=0.5), Stage("qa", review=True)],
    "single": [LABELING],
    "assigned labelling": [Stage("labeling", Assignment.ASSIGNED), REVIEW],
    "assigned review": [LABELING, Stage("review", Assignment.ASSIGNED, review=True)],
}
# Which signal may follow which status, by the status it leaves: the history of any
# item is a path through this.
TRANSITIONS = {
    Signal.START: ({WorkStatus.NEW, WorkStatus.IN_PROGRESS}, {WorkStatus.IN_PROGRESS}),
    Signal.RELEASE: ({WorkStatus.IN_PROGRESS}, {WorkStatus.NEW}),
    Signal.COMPLETE: ({WorkStatus.IN_PROGRESS}, {WorkStatus.NEW, WorkStatus.COMPLETED}),
    Signal.CANCEL: ({WorkStatus.NEW, WorkStatus.IN_PROGRESS}, {WorkStatus.FAILED}),
    Signal.REOPEN: ({WorkStatus.COMPLETED, WorkStatus.FAILED}, {WorkStatus.NEW}),
    Signal.EXPIRE: ({WorkStatus.IN_PROGRESS}, {WorkStatus.NEW}),
}
# What a caller can see of an item; a refused signal changes none of it.
OBSERVED = (
    "status",
    "stage_index",
    "task_type",
    "assignment",
    "in_review",
    "assignee_id",
    "leased_until",
    "labeller_id",
    "reviewer_id",
    "feedback",
    "updated_date",
)
TOO_LONG = "x" * (signals.COMMENT_MAX + 1)
REFUSALS = (Conflict, PermissionDenied, InvalidInput)
Comments = tuple[str, ...]

# Draws weighted towards signals that can be accepted, so that runs get deep into
# workflows; the rest are refused and must change nothing.
PERSON = st.sampled_from(PEOPLE)
CURRENT, NONE, OTHER = "current", "none", "other"
TASK_TYPE = st.sampled_from([CURRENT, CURRENT, CURRENT, NONE, OTHER, "bogus"])
OUTCOME = st.sampled_from([Outcome.OK, Outcome.NOT_OK, None])
COMMENTS = st.sampled_from([(), (), ("box too loose",), ("", "zu groß ✓"), (TOO_LONG,)])
ASSIGNEE = st.sampled_from([None, None, None, *(person.id for person in PEOPLE)])


@dataclass(frozen=True)
class Step:
    """One accepted signal: who sent what, the item as the handler found it (a lapsed
    lease returned), as it was left, and the history entry of the signal."""

    request: SignalRequest
    who: Signaller
    found: dict[str, Any]
    after: dict[str, Any]
    entry: WorkSignal


def new_item(stages: list[Stage], uuid: str = "00000000-0000-4000-8000-000000000000") -> WorkItem:
    workflow = Workflow(
        id=1, project_id=1, version=1, stage_data=[stage.to_json() for stage in stages]
    )
    item = WorkItem(
        id=1,
        uuid=uuid,
        project_id=1,
        workflow=workflow,
        workflow_id=workflow.id,
        status=WorkStatus.NEW,
        feedback=[],
        created_date=T0,
        updated_date=T0,
    )
    item.enter(0)
    return item


def observe(item: WorkItem) -> dict[str, Any]:
    state = {name: getattr(item, name) for name in OBSERVED}
    state["feedback"] = tuple(state["feedback"])
    return state


def restore(item: WorkItem, state: dict[str, Any]) -> None:
    """Put the item back as observed: what the use case's rollback does after a refusal."""
    for name, value in state.items():
        setattr(item, name, list(value) if name == "feedback" else value)


def after_expiry(state: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The item as a signal's handler finds it: a lease that ran out returns it first."""
    lease = state["leased_until"]
    if state["status"] != WorkStatus.IN_PROGRESS or lease is None or lease > now:
        return state
    queued = state["assignment"] == Assignment.QUEUE
    return {
        **state,
        "status": WorkStatus.NEW,
        "leased_until": None,
        "assignee_id": None if queued else state["assignee_id"],
    }


def send(
    item: WorkItem,
    who: Signaller,
    signal: Signal,
    task_type: str | None = None,
    *,
    now: datetime = T0,
    **fields: Any,
) -> list[WorkSignal]:
    request = SignalRequest(signal, task_type or item.task_type, **fields)
    return signals.apply(item, who, request, now=now, lease_seconds=LEASE)


class SignalMachine(RuleBasedStateMachine):
    """Random signals from a manager and three workers, with right and wrong task types,
    outcomes and comments, while a clock runs past leases, to an item of ``stages``."""

    stages: list[Stage] = WORKFLOWS["default"]

    @initialize(uuid=st.uuids())
    def make_item(self, uuid: UUID) -> None:
        self.item = new_item(self.stages, str(uuid))
        self.now = T0
        self.history: list[WorkSignal] = []
        self.comments: list[str] = []

    @rule(seconds=st.sampled_from([1, 60, LEASE - 1, LEASE, LEASE + 1, 10 * LEASE]))
    def wait(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(who=PERSON, task_type=TASK_TYPE, outcome=OUTCOME, comments=COMMENTS, assignee=ASSIGNEE)
    def start(
        self,
        who: Signaller,
        task_type: str,
        outcome: Outcome | None,
        comments: Comments,
        assignee: int | None,
    ) -> None:
        self.send(
            SignalRequest(Signal.START, self.aimed(task_type), outcome, comments, assignee), who
        )

    @rule(who=PERSON, task_type=TASK_TYPE, outcome=OUTCOME, comments=COMMENTS)
    def release(
        self, who: Signaller, task_type: str, outcome: Outcome | None, comments: Comments
    ) -> None:
        self.send(SignalRequest(Signal.RELEASE, self.aimed(task_type), outcome, comments), who)

    @rule(who=PERSON, task_type=TASK_TYPE, outcome=OUTCOME, comments=COMMENTS)
    def complete(
        self, who: Signaller, task_type: str, outcome: Outcome | None, comments: Comments
    ) -> None:
        self.send(SignalRequest(Signal.COMPLETE, self.aimed(task_type), outcome, comments), who)

    @rule(who=PERSON, task_type=TASK_TYPE, outcome=OUTCOME, comments=COMMENTS)
    def cancel(
        self, who: Signaller, task_type: str, outcome: Outcome | None, comments: Comments
    ) -> None:
        self.send(SignalRequest(Signal.CANCEL, self.aimed(task_type), outcome, comments), who)

    @rule(who=PERSON, task_type=TASK_TYPE, outcome=OUTCOME, comments=COMMENTS)
    def reopen(
        self, who: Signaller, task_type: str, outcome: Outcome | None, comments: Comments
    ) -> None:
        self.send(SignalRequest(Signal.REOPEN, self.aimed(task_type), outcome, comments), who)

    # Random senders are mostly refused; these send what moves an item on, so that runs
    # reach reviews, rework and the end of each workflow.
    @rule(anyone=PERSON)
    def someone_claims(self, anyone: Signaller) -> None:
        self.send(SignalRequest(Signal.START, self.item.task_type), anyone)

    @rule(worker=st.sampled_from(WORKERS))
    def manager_assigns(self, worker: Signaller) -> None:
        self.send(SignalRequest(Signal.START, self.item.task_type, assignee_id=worker.id), MANAGER)

    @rule(outcome=st.sampled_from([Outcome.OK, Outcome.NOT_OK]), anyone=PERSON)
    def holder_completes(self, outcome: Outcome, anyone: Signaller) -> None:
        self.send(SignalRequest(Signal.COMPLETE, self.item.task_type, outcome), self.holder(anyone))

    @rule(anyone=PERSON)
    def holder_releases(self, anyone: Signaller) -> None:
        self.send(SignalRequest(Signal.RELEASE, self.item.task_type), self.holder(anyone))

    def holder(self, anyone: Signaller) -> Signaller:
        """Who holds the item; ``anyone`` when nobody does."""
        return next((p for p in PEOPLE if p.id == self.item.assignee_id), anyone)

    def aimed(self, task_type: str) -> str | None:
        """The task type a signal names: the item's stage, none (as bulk signals send),
        another stage of the workflow or one it does not have."""
        if task_type == CURRENT:
            return self.item.task_type
        if task_type == OTHER:
            others = [s.task_type for s in self.stages if s.task_type != self.item.task_type]
            return others[0] if others else "bogus"
        return None if task_type == NONE else task_type

    def send(self, request: SignalRequest, who: Signaller) -> None:
        item = self.item
        before = observe(item)
        found = after_expiry(before, self.now)
        wrong_stage = request.task_type not in (None, item.task_type)
        try:
            entries = signals.apply(item, who, request, now=self.now, lease_seconds=LEASE)
        except REFUSALS as error:
            self.refused(error, request, who, before, found, wrong_stage)
            return
        assert not wrong_stage and TOO_LONG not in request.comments
        self.accepted(entries, request, who, before, found)

    def refused(
        self,
        error: Exception,
        request: SignalRequest,
        who: Signaller,
        before: dict[str, Any],
        found: dict[str, Any],
        wrong_stage: bool,
    ) -> None:
        after = observe(self.item)
        if wrong_stage:
            assert isinstance(error, Conflict)
            assert error.extra == {"status": before["status"], "taskType": before["task_type"]}
            assert after == before
            return
        if TOO_LONG in request.comments:
            assert isinstance(error, InvalidInput)
            assert after == before
            return
        if request.signal in (Signal.CANCEL, Signal.REOPEN) and not who.manages:
            assert isinstance(error, PermissionDenied)
        if isinstance(error, Conflict):
            # A 409 names the status and stage the signal met.
            assert error.extra == {"status": found["status"], "taskType": found["task_type"]}
            assert found["status"] in error.detail and found["task_type"] in error.detail
        # apply returns a lapsed lease before the handler refuses and leaves it returned
        # (test_a_refused_signal_on_a_lapsed_lease_leaves_the_item_as_it_was): either
        # way nothing but the expiry happened.
        assert after in (before, found)
        restore(self.item, before)

    def accepted(
        self,
        entries: list[WorkSignal],
        request: SignalRequest,
        who: Signaller,
        before: dict[str, Any],
        found: dict[str, Any],
    ) -> None:
        item = self.item
        after = observe(item)
        lapsed = found is not before
        assert len(entries) == (2 if lapsed else 1)
        if lapsed:
            expiry = entries[0]
            assert (expiry.signal, expiry.actor_id, expiry.status) == ("expire", None, "NEW")
            assert (expiry.stage_index, expiry.task_type) == (
                found["stage_index"],
                found["task_type"],
            )
        entry = entries[-1]
        assert entry.signal == request.signal and entry.actor_id == who.id
        assert entry.status == item.status
        assert (entry.stage_index, entry.task_type) == (found["stage_index"], found["task_type"])
        assert entry.comments == list(request.comments)
        assert after["feedback"] == (*found["feedback"], *request.comments)
        assert after["updated_date"] == self.now
        self.history.extend(entries)
        self.comments.extend(request.comments)
        check = {
            Signal.START: self.started,
            Signal.RELEASE: self.released,
            Signal.COMPLETE: self.completed,
            Signal.CANCEL: self.cancelled,
            Signal.REOPEN: self.reopened,
        }[request.signal]
        check(Step(request, who, found, after, entry))

    def started(self, step: Step) -> None:
        request, who, found, after = step.request, step.who, step.found, step.after
        claimer = request.assignee_id if request.assignee_id is not None else who.id
        assert found["status"] in (WorkStatus.NEW, WorkStatus.IN_PROGRESS)
        assert after["status"] == WorkStatus.IN_PROGRESS
        assert after["assignee_id"] == claimer
        assert after["leased_until"] == self.now + timedelta(seconds=LEASE)
        assert after["stage_index"] == found["stage_index"]
        if not who.manages:
            # A worker claims only for themselves, only what nobody else holds, and in an
            # assigned stage only what a manager gave them.
            assert claimer == who.id
            assert found["assignee_id"] in (None, who.id)
            if found["assignment"] == Assignment.ASSIGNED:
                assert found["assignee_id"] == who.id
        if found["in_review"]:
            assert claimer != found["labeller_id"]
        assert step.entry.outcome is None

    def released(self, step: Step) -> None:
        found, after = step.found, step.after
        assert found["status"] == WorkStatus.IN_PROGRESS
        assert step.who.manages or found["assignee_id"] == step.who.id
        assert after["status"] == WorkStatus.NEW and after["leased_until"] is None
        queued = found["assignment"] == Assignment.QUEUE
        assert after["assignee_id"] == (None if queued else found["assignee_id"])
        assert after["stage_index"] == found["stage_index"]
        assert step.entry.outcome is None

    def completed(self, step: Step) -> None:
        outcome, found, after = step.request.outcome, step.found, step.after
        assert found["status"] == WorkStatus.IN_PROGRESS
        assert step.who.manages or found["assignee_id"] == step.who.id
        assert after["leased_until"] is None
        if not found["in_review"]:
            assert after["labeller_id"] == found["assignee_id"]
            self.moved_on(found, after)
            return
        assert outcome is not None and step.entry.outcome == outcome
        assert after["reviewer_id"] == found["assignee_id"]
        assert after["reviewer_id"] != after["labeller_id"]
        assert after["labeller_id"] == found["labeller_id"]
        if outcome == Outcome.OK:
            self.moved_on(found, after)
            return
        # Rework: the labelling stage before this review, held for whoever labelled.
        stages = self.stages[: found["stage_index"]]
        assert after["stage_index"] == max(i for i, s in enumerate(stages) if not s.review)
        assert after["status"] == WorkStatus.NEW
        assert after["assignee_id"] == found["labeller_id"]

    def moved_on(self, found: dict[str, Any], after: dict[str, Any]) -> None:
        """On to the next stage that takes the item, passing only reviews that do not
        sample it, or COMPLETED in the stage it was completed in."""
        if after["status"] == WorkStatus.COMPLETED:
            assert after["stage_index"] == found["stage_index"]
            passed = self.stages[found["stage_index"] + 1 :]
        else:
            assert after["status"] == WorkStatus.NEW and after["assignee_id"] is None
            assert after["stage_index"] > found["stage_index"]
            target = self.stages[after["stage_index"]]
            assert not target.review or target.samples(self.item.uuid)
            passed = self.stages[found["stage_index"] + 1 : after["stage_index"]]
        assert all(stage.review and not stage.samples(self.item.uuid) for stage in passed)

    def cancelled(self, step: Step) -> None:
        found, after = step.found, step.after
        assert step.who.manages
        assert found["status"] in (WorkStatus.NEW, WorkStatus.IN_PROGRESS)
        assert after["status"] == WorkStatus.FAILED and after["leased_until"] is None
        assert after["stage_index"] == found["stage_index"]
        assert after["assignee_id"] == found["assignee_id"]

    def reopened(self, step: Step) -> None:
        found, after = step.found, step.after
        assert step.who.manages
        assert found["status"] in (WorkStatus.COMPLETED, WorkStatus.FAILED)
        assert after["status"] == WorkStatus.NEW
        assert after["assignee_id"] is None and after["leased_until"] is None
        assert after["stage_index"] == found["stage_index"]

    @invariant()
    def stage_agrees_with_the_workflow(self) -> None:
        item = self.item
        assert item.status in set(WorkStatus)
        assert 0 <= item.stage_index < len(self.stages)
        stage = self.stages[item.stage_index]
        assert item.task_type == stage.task_type
        assert item.assignment == stage.assignment
        assert item.in_review == stage.review

    @invariant()
    def only_a_claimed_item_has_a_lease(self) -> None:
        item = self.item
        if item.status == WorkStatus.IN_PROGRESS:
            assert item.assignee_id is not None and item.leased_until is not None
        else:
            assert item.leased_until is None

    @invariant()
    def nobody_reviews_their_own_labelling(self) -> None:
        item = self.item
        if item.in_review:
            assert item.labeller_id is not None
            assert item.assignee_id != item.labeller_id

    @invariant()
    def a_waiting_queue_item_is_held_only_for_rework(self) -> None:
        item = self.item
        waiting = item.status == WorkStatus.NEW and item.assignment == Assignment.QUEUE
        if waiting and item.assignee_id is not None:
            assert not item.in_review
            assert item.assignee_id == item.labeller_id

    @invariant()
    def the_history_is_a_path_to_the_item(self) -> None:
        status = WorkStatus.NEW
        for entry in self.history:
            allowed_from, allowed_to = TRANSITIONS[Signal(entry.signal)]
            assert status in allowed_from and entry.status in allowed_to
            status = WorkStatus(entry.status)
            assert entry.task_type == self.stages[entry.stage_index].task_type
        # Only `complete` moves an item between stages.
        for entry, following in pairwise(self.history):
            if entry.signal != Signal.COMPLETE:
                assert following.stage_index == entry.stage_index
        assert self.item.status == status
        if self.history and self.history[-1].signal != Signal.COMPLETE:
            assert self.item.stage_index == self.history[-1].stage_index
        assert self.item.feedback == self.comments


@pytest.mark.parametrize("workflow", sorted(WORKFLOWS))
def test_no_sequence_of_signals_breaks_an_item(workflow):
    machine = type(f"SignalMachine[{workflow}]", (SignalMachine,), {"stages": WORKFLOWS[workflow]})
    run_state_machine_as_test(
        machine,
        settings=settings(max_examples=25, stateful_step_count=40, deadline=None, database=None),
    )


# --- sequences the issue names ----------------------------------------------------


def test_rework_goes_back_to_the_labeller_who_alone_may_take_it():
    labeller, reviewer, other = WORKERS
    item = new_item(WORKFLOWS["default"])
    send(item, labeller, Signal.START)
    send(item, labeller, Signal.COMPLETE)
    send(item, reviewer, Signal.START)

    [entry] = send(item, reviewer, Signal.COMPLETE, outcome=Outcome.NOT_OK, comments=("loose",))

    assert (item.task_type, item.status, item.assignee_id) == ("labeling", "NEW", labeller.id)
    assert (entry.task_type, entry.outcome, entry.status) == ("review", "NOT_OK", "NEW")
    assert item.feedback == ["loose"] and item.reviewer_id == reviewer.id
    with pytest.raises(Conflict, match="assigned to another user"):
        send(item, other, Signal.START)
    send(item, labeller, Signal.START)
    send(item, labeller, Signal.COMPLETE)
    with pytest.raises(Conflict, match="Nobody reviews their own labelling"):
        send(item, labeller, Signal.START)
    send(item, reviewer, Signal.START)
    send(item, reviewer, Signal.COMPLETE, outcome=Outcome.OK)
    assert item.status == WorkStatus.COMPLETED


def test_a_review_is_completed_with_an_outcome():
    labeller, reviewer, _ = WORKERS
    item = new_item(WORKFLOWS["default"])
    send(item, labeller, Signal.START)
    send(item, labeller, Signal.COMPLETE)
    send(item, reviewer, Signal.START)
    before = observe(item)

    with pytest.raises(InvalidInput) as refused:
        send(item, reviewer, Signal.COMPLETE)

    assert list(refused.value.fields) == ["signalOutcome"]
    assert observe(item) == before


def test_a_signal_for_another_stage_is_a_conflict_naming_the_items_stage():
    item = new_item(WORKFLOWS["default"])

    with pytest.raises(Conflict) as refused:
        send(item, WORKERS[0], Signal.START, "review")

    assert refused.value.extra == {"status": "NEW", "taskType": "labeling"}
    assert 'NEW in stage "labeling"' in refused.value.detail
    assert item.status == WorkStatus.NEW and item.assignee_id is None


def test_a_worker_neither_cancels_nor_reopens():
    worker = WORKERS[0]
    item = new_item(WORKFLOWS["single"])
    send(item, worker, Signal.START)
    with pytest.raises(PermissionDenied):
        send(item, worker, Signal.CANCEL)
    send(item, worker, Signal.COMPLETE)
    assert item.status == WorkStatus.COMPLETED
    with pytest.raises(PermissionDenied):
        send(item, worker, Signal.REOPEN)

    send(item, MANAGER, Signal.REOPEN)
    send(item, MANAGER, Signal.CANCEL)
    assert item.status == WorkStatus.FAILED


@pytest.mark.parametrize(
    ("stages", "status", "task_type"),
    [
        ([LABELING, Stage("review", review=True, sample_rate=0)], "COMPLETED", "labeling"),
        (
            [LABELING, Stage("review", review=True, sample_rate=0), Stage("qa", review=True)],
            "NEW",
            "qa",
        ),
    ],
    ids=["last stage", "middle stage"],
)
def test_a_review_that_samples_nothing_is_skipped(stages, status, task_type):
    item = new_item(stages)
    send(item, WORKERS[0], Signal.START)

    [entry] = send(item, WORKERS[0], Signal.COMPLETE)

    assert (item.status, item.task_type) == (status, task_type)
    assert entry.note == '"review" not sampled'


def test_a_lapsed_lease_returns_the_item_before_the_next_signal():
    first, second, _ = WORKERS
    item = new_item(WORKFLOWS["default"])
    send(item, first, Signal.START)

    expiry, start = send(item, second, Signal.START, now=T0 + timedelta(seconds=LEASE))

    assert (expiry.signal, expiry.status, expiry.actor_id) == ("expire", "NEW", None)
    assert expiry.note == f"lease of user {first.id} expired"
    assert (start.signal, start.actor_id, item.assignee_id) == ("start", second.id, second.id)


def test_a_start_renews_the_lease():
    worker = WORKERS[0]
    item = new_item(WORKFLOWS["default"])
    send(item, worker, Signal.START)
    later = T0 + timedelta(seconds=LEASE - 1)

    [entry] = send(item, worker, Signal.START, now=later)

    assert entry.signal == "start"
    assert item.leased_until == later + timedelta(seconds=LEASE)


def test_a_refused_signal_on_a_lapsed_lease_leaves_the_item_as_it_was():
    worker = WORKERS[0]
    item = new_item(WORKFLOWS["default"])
    send(item, worker, Signal.START)
    before = observe(item)

    with pytest.raises(Conflict):
        send(item, worker, Signal.COMPLETE, now=T0 + timedelta(seconds=LEASE))

    # The docstring: "Refusals raise and leave the item as it was."
    assert observe(item) == before
