"""Units of work under concurrency: writers wait their turn instead of failing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from labelyard.domain import Task
from labelyard.services import tasks
from labelyard.services.access import Actor
from labelyard.services.uow import UnitOfWork


def test_concurrent_writers_all_land(factory, session_factory):
    owner = factory.user("owner")
    actor = Actor.of(owner)

    def create(index: int) -> int:
        with UnitOfWork(session_factory) as uow:
            # Read, then write: the pattern that trips deferred SQLite transactions.
            uow.session.scalar(select(func.count()).select_from(Task))
            data = tasks.TaskCreate(name=f"task {index}", labels=[{"name": "car"}])
            return tasks.create_task(uow, actor, data).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(create, range(80)))

    assert len(set(ids)) == 80
    with UnitOfWork(session_factory) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Task)) == 80


def test_uncommitted_work_is_rolled_back(factory, session_factory):
    owner = factory.user("owner")
    with UnitOfWork(session_factory) as uow:
        uow.session.add(Task(name="never", owner_id=owner.id))
        uow.flush()
    with UnitOfWork(session_factory) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Task)) == 0
