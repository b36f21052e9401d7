"""The pull queue on the run's real database: concurrent claimers never share an item
(PostgreSQL skips locked rows, SQLite lets one writer in at a time), items come out most
urgent first, nobody reviews their own labelling, and a lapsed lease frees the item."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from labelyard.domain import Asset, Project, Signal, User, WorkItem, WorkSignal, WorkStatus, utcnow
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, NotFound
from labelyard.services.uow import UnitOfWork
from labelyard.services.workflow import items, signalling
from labelyard.services.workflow.signals import SignalRequest
from tests.factories import Factory

LEASE = 900
CLAIMERS = 16
ITEMS = 40


@dataclass
class Queue:
    """A project with a manager and a dataset of images to make work items on."""

    app: FastAPI
    engine: Engine
    session_factory: sessionmaker[Session]
    factory: Factory
    manager: User
    project: Project
    assets: list[Asset]

    def create(self, assets: list[Asset]) -> list[str]:
        """Work items on ``assets``, made as a manager does; their ids."""
        with UnitOfWork(self.session_factory) as uow:
            made = [
                items.create(
                    uow.session,
                    self.app.state.storage,
                    Actor.of(self.manager),
                    self.project,
                    items.WorkItemCreate.model_validate({"assetId": asset.id}),
                )
                for asset in assets
            ]
            uow.commit()
            return [item.uuid for item in made]

    def worker(self, name: str) -> Actor:
        return Actor.of(self.factory.user(name, ("worker",)))

    def claim(self, actor: Actor, task_type: str | None) -> str | None:
        """``next`` as the server runs it: one writing unit of work, committed."""
        with UnitOfWork(self.session_factory) as uow:
            item = signalling.claim_next(
                uow.session,
                actor,
                self.project,
                task_type,
                lease_seconds=LEASE,
                skip_locked=self.engine.dialect.name == "postgresql",
            )
            uow.commit()
            return item.uuid if item is not None else None

    def send(self, actor: Actor, item_id: str, request: SignalRequest) -> None:
        with UnitOfWork(self.session_factory) as uow:
            signalling.send(uow.session, actor, self.project, item_id, request, lease_seconds=LEASE)
            uow.commit()

    def lapse(self, item_id: str) -> None:
        """Let the item's lease run out, as if its lease time had passed: a tiny lease
        would be a race with a slow machine."""
        with UnitOfWork(self.session_factory) as uow:
            item = uow.session.scalars(select(WorkItem).where(WorkItem.uuid == item_id)).one()
            item.leased_until = utcnow() - timedelta(seconds=1)
            uow.commit()

    def item(self, item_id: str) -> WorkItem:
        with UnitOfWork(self.session_factory, writes=False) as uow:
            return uow.session.scalars(select(WorkItem).where(WorkItem.uuid == item_id)).one()

    def history(self, item_id: str) -> list[WorkSignal]:
        with UnitOfWork(self.session_factory, writes=False) as uow:
            return list(
                uow.session.scalars(
                    select(WorkSignal)
                    .join(WorkItem, WorkItem.id == WorkSignal.work_item_id)
                    .where(WorkItem.uuid == item_id)
                    .order_by(WorkSignal.id)
                )
            )


@pytest.fixture
def queue(
    app: FastAPI, engine: Engine, session_factory: sessionmaker[Session], factory: Factory
) -> Queue:
    manager = factory.user("manager", ("business",))
    project = factory.project(manager, "queue")
    _, assets = factory.dataset(manager, ITEMS)
    return Queue(app, engine, session_factory, factory, manager, project, assets)


def test_concurrent_claimers_each_get_a_different_item(queue: Queue):
    item_ids = queue.create(queue.assets)
    workers = [queue.worker(f"claimer{n}") for n in range(CLAIMERS)]
    # All claimers start together, so that their claims really overlap.
    ready = threading.Barrier(CLAIMERS)

    def claim_until_empty(actor: Actor) -> list[str]:
        ready.wait()
        claimed = []
        while (item_id := queue.claim(actor, "labeling")) is not None:
            claimed.append(item_id)
        return claimed

    with ThreadPoolExecutor(max_workers=CLAIMERS) as pool:
        claims = dict(zip(workers, pool.map(claim_until_empty, workers), strict=True))

    every_claim = Counter(item_id for claimed in claims.values() for item_id in claimed)
    assert sum(every_claim.values()) == ITEMS
    assert set(every_claim) == set(item_ids)
    assert set(every_claim.values()) == {1}
    for actor, claimed in claims.items():
        for item_id in claimed:
            item = queue.item(item_id)
            assert (item.status, item.assignee_id) == (WorkStatus.IN_PROGRESS, actor.id)
            [start] = queue.history(item_id)
            assert (start.signal, start.actor_id, start.status) == (
                "start",
                actor.id,
                "IN_PROGRESS",
            )


def test_the_queue_hands_out_the_most_urgent_item_first(queue: Queue):
    # name: (due in seconds from now, difficulty, age in minutes)
    urgency = {
        "overdue": (-60, 0, 1),
        "soon, hard, older": (600, 50, 3),
        "soon, hard": (600, 50, 1),
        "soon, easy": (600, 10, 5),
        "later": (7200, 90, 1),
        "undated, hard": (None, 90, 1),
        "undated, easy, older": (None, 0, 10),
        "undated, easy": (None, 0, 2),
    }
    item_ids = dict(zip(queue.create(queue.assets[: len(urgency)]), urgency, strict=True))
    now = utcnow()
    with UnitOfWork(queue.session_factory) as uow:
        # Set beside each other rather than made one by one: items made a moment apart
        # would differ in due time and age by that moment.
        for item in uow.session.scalars(select(WorkItem).where(WorkItem.uuid.in_(item_ids))):
            due, difficulty, age = urgency[item_ids[item.uuid]]
            item.due_at = now + timedelta(seconds=due) if due is not None else None
            item.difficulty = difficulty
            item.created_date = now - timedelta(minutes=age)
        uow.commit()
    worker = queue.worker("worker")

    handed_out = []
    while (item_id := queue.claim(worker, "labeling")) is not None:
        handed_out.append(item_ids[item_id])

    assert handed_out == list(urgency)


def test_nobody_is_handed_a_review_of_their_own_labelling(queue: Queue):
    item_ids = queue.create(queue.assets[:4])
    labeller, reviewer = queue.worker("labeller"), queue.worker("reviewer")
    labelled = []
    for _ in range(3):
        item_id = queue.claim(labeller, "labeling")
        assert item_id is not None
        queue.send(labeller, item_id, SignalRequest(Signal.COMPLETE, "labeling"))
        labelled.append(item_id)

    assert queue.claim(labeller, "review") is None
    # Any stage: only the one item still in labelling.
    [unlabelled] = set(item_ids) - set(labelled)
    assert queue.claim(labeller, None) == unlabelled
    assert queue.claim(labeller, None) is None
    reviews = [queue.claim(reviewer, "review") for _ in range(3)]
    assert set(reviews) == set(labelled)
    assert queue.claim(reviewer, "review") is None
    assert {queue.item(item_id).reviewer_id for item_id in labelled} == {None}


def test_a_lapsed_lease_returns_the_item_to_the_queue(queue: Queue):
    [item_id] = queue.create(queue.assets[:1])
    first, second = queue.worker("first"), queue.worker("second")
    assert queue.claim(first, "labeling") == item_id
    assert queue.claim(second, "labeling") is None
    queue.lapse(item_id)

    assert queue.claim(second, "labeling") == item_id

    history = queue.history(item_id)
    assert [(h.signal, h.actor_id, h.status) for h in history] == [
        ("start", first.id, "IN_PROGRESS"),
        ("expire", None, "NEW"),
        ("start", second.id, "IN_PROGRESS"),
    ]
    assert history[1].note == f"lease of user {first.id} expired"
    item = queue.item(item_id)
    assert item.assignee_id == second.id and item.leased_until > utcnow()
    # The item is no longer the first worker's to see, let alone to complete.
    with pytest.raises(NotFound):
        queue.send(first, item_id, SignalRequest(Signal.COMPLETE, "labeling"))


def test_a_refused_signal_on_a_lapsed_lease_loses_no_history(queue: Queue):
    # The pure state machine returns the lapsed lease and then refuses (see
    # test_signal_machine); the unit of work must not keep the one without the other.
    first_id, second_id = queue.create(queue.assets[:2])
    worker = queue.worker("worker")
    assert queue.claim(worker, "labeling") == first_id
    assert queue.claim(worker, "labeling") == second_id
    queue.lapse(first_id)
    queue.lapse(second_id)

    with pytest.raises(Conflict):
        queue.send(worker, first_id, SignalRequest(Signal.COMPLETE, "labeling"))
    with UnitOfWork(queue.session_factory) as uow:
        [result] = signalling.send_bulk(
            uow.session,
            worker,
            queue.project,
            [(second_id, ())],
            SignalRequest(Signal.COMPLETE),
            lease_seconds=LEASE,
        )
        uow.commit()
    assert isinstance(result.error, Conflict)

    for item_id in (first_id, second_id):
        item, history = queue.item(item_id), queue.history(item_id)
        assert history[-1].status == item.status
        assert [h.signal for h in history] == ["start"]


def test_concurrent_makers_of_a_new_projects_items_take_turns(queue: Queue):
    """The first items of a project make its Default batch, its workflow's first version
    and its work task: 16 makers at once make each of them once, and the work task's
    frames are numbered without a gap or a clash."""
    start = threading.Barrier(CLAIMERS)

    def make(asset: Asset) -> str:
        start.wait()
        return queue.create([asset])[0]

    with ThreadPoolExecutor(CLAIMERS) as pool:
        made = list(pool.map(make, queue.assets[:CLAIMERS]))
    assert len(set(made)) == CLAIMERS
    with UnitOfWork(queue.session_factory, writes=False) as uow:
        rows = uow.session.scalars(select(WorkItem)).all()
        assert len({row.batch_id for row in rows}) == 1
        assert len({row.workflow_id for row in rows}) == 1
        assert len({row.task_id for row in rows}) == 1
        assert sorted(row.frame for row in rows) == list(range(CLAIMERS))


def test_next_reads_the_queue_index_in_order_without_sorting(queue: Queue):
    """ix_work_items_queue holds a stage's items in the order ``next`` hands them out, so
    a claim reads its first eligible entry instead of sorting the whole stage."""
    queue.create(queue.assets[:10])
    stmt = signalling.queue(queue.worker("planner"), queue.project, "labeling").limit(1)
    sql = str(stmt.compile(queue.engine, compile_kwargs={"literal_binds": True}))
    with queue.engine.connect() as connection:
        if queue.engine.dialect.name == "postgresql":
            # A few rows make a sequential scan cheapest; ask what it does at scale.
            connection.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {sql}")))
            assert "ix_work_items_queue" in plan
            assert "Sort" not in plan
        else:
            plan = " ".join(row[3] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
            assert "USING INDEX ix_work_items_queue" in plan
            assert "TEMP B-TREE" not in plan
