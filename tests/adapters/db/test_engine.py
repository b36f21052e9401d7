"""The database adapter: SQLite pragmas, URL handling, migrations that match the models."""

from __future__ import annotations

import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from labelyard.adapters.db.engine import (
    WalCheckpointer,
    WriterTurns,
    make_engine,
    make_session_factory,
    migrate,
)
from labelyard.config import Settings
from labelyard.domain import Base
from labelyard.services.uow import UnitOfWork


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_sqlite_enforces_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    migrate(engine)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text("INSERT INTO segments (task_id, start_frame, stop_frame) VALUES (999, 0, 1)")
        )


def test_a_failed_transaction_leaves_nothing(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    migrate(engine)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO client_events (kind, name, time, received, client_id, message,"
                " payload) VALUES ('log', 'a', '2020-01-01', '2020-01-01', '', '', '{}')"
            )
        )
        connection.execute(
            text("INSERT INTO segments (task_id, start_frame, stop_frame) VALUES (999, 0, 1)")
        )
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM client_events")).scalar() == 0


@pytest.mark.parametrize(
    ("given", "resolved"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_postgresql_urls_use_psycopg_3(given, resolved):
    assert Settings(database_url=given).resolved_database_url == resolved


def test_the_default_database_is_sqlite_in_the_data_dir(tmp_path):
    url = Settings(data_dir=tmp_path / "d", database_url=None).resolved_database_url
    assert url == f"sqlite:///{(tmp_path / 'd' / 'labelyard.sqlite3').resolve()}"


# The queue's index orders by an expression, which reflection cannot read back: the
# comparison skips it (test_next_reads_the_queue_index_in_order_without_sorting checks it).
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_migrations_match_the_models(engine):
    """A model change without a migration shows up here as a difference."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_background_checkpoints_leave_commits_alone_and_copy_the_log(tmp_path):
    path = tmp_path / "x.sqlite3"
    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    with engine.begin() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        connection.execute(text("CREATE TABLE blobs (data BLOB)"))
        # 6 MB: well past the 1,000 pages at which SQLite's own checkpoint would run.
        for _ in range(300):
            connection.execute(text("INSERT INTO blobs VALUES (randomblob(20000))"))
    # The commit copied nothing: the rows are in the log, not in the database file.
    assert path.stat().st_size < 1_000_000
    assert path.with_name(path.name + "-wal").stat().st_size > 6_000_000

    checkpointer = WalCheckpointer(engine, interval=0.05)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 10
        while path.stat().st_size < 6_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size > 6_000_000
    finally:
        checkpointer.stop()
    engine.dispose()


def test_sqlite_checkpoints_by_itself_unless_told_otherwise(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000


def test_a_fresh_database_has_the_default_space_and_gives_new_spaces_new_ids(fresh_database_url):
    engine = make_engine(fresh_database_url)
    migrate(engine)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT id, name FROM spaces")).all() == [(1, "Default")]
        connection.execute(
            text(
                "INSERT INTO spaces (uuid, name, company_uuid, created_date) "
                "VALUES ('u', 'second', 'c', CURRENT_TIMESTAMP)"
            )
        )
        assert connection.execute(text("SELECT max(id) FROM spaces")).scalar() == 2
    engine.dispose()


def test_sqlite_writers_take_turns_in_the_order_they_came():
    turns = WriterTurns()
    assert turns.take(timeout=1)
    order: list[int] = []
    waiting = []
    for n in range(5):
        thread = threading.Thread(target=lambda n=n: turns.take(timeout=10) and order.append(n))
        thread.start()
        waiting.append(thread)
        while len(turns._waiting) < n + 1:  # each in line before the next comes
            time.sleep(0.001)
    for _ in range(5):
        before = len(order)
        turns.give_back()
        while len(order) == before:
            time.sleep(0.001)
    turns.give_back()
    for thread in waiting:
        thread.join()
    assert order == [0, 1, 2, 3, 4]
    assert turns.take(timeout=0.01)  # free again


def test_a_sqlite_writer_that_waited_too_long_gives_up_its_place():
    turns = WriterTurns()
    assert turns.take(timeout=1)
    assert not turns.take(timeout=0.05)
    assert not turns._waiting
    turns.give_back()
    assert turns.take(timeout=0.01)


def test_a_second_sqlite_writer_waits_for_the_first_to_commit(tmp_path):
    """Two writing units of work on one engine: the second begins once the first ended,
    and a failed or rolled-back writer hands the turn on as well."""
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.sqlite3'}")
    factory = make_session_factory(engine)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    events: list[str] = []
    first = UnitOfWork(factory).__enter__()
    first.session.execute(text("INSERT INTO t VALUES (1)"))

    def second() -> None:
        with UnitOfWork(factory) as uow:
            events.append("second began")
            uow.session.execute(text("INSERT INTO t VALUES (2)"))
            uow.commit()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)
    events.append("first commits")
    first.commit()
    first.__exit__(None, None, None)
    thread.join(timeout=10)
    with UnitOfWork(factory) as uow:  # after a rollback, too
        uow.session.execute(text("INSERT INTO t VALUES (3)"))
    with UnitOfWork(factory) as uow:
        assert uow.session.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 2]
    assert events == ["first commits", "second began"]
    engine.dispose()
