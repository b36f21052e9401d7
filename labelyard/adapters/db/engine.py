"""Building the SQLAlchemy engine and applying migrations."""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from labelyard.services.uow import WRITE_INTENT

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# SQLite's own default: a checkpoint when a commit takes the log past 1,000 pages.
DEFAULT_AUTOCHECKPOINT = 1000
# As long as SQLite's busy_timeout: a writer waits this long for its turn, then asks SQLite.
WRITER_WAIT_S = 30.0
# Connections per engine: the server runs requests on up to 40 threads (anyio's default),
# besides the operation runner's and the checkpointer.
POOL_SIZE = 10
POOL_OVERFLOW = 40
# Connection.info key: this connection's transaction holds its engine's writer turn.
_HOLDS_TURN = "labelyard_writer_turn"
log = logging.getLogger(__name__)


def make_engine(url: str, *, background_checkpoints: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    ``background_checkpoints``: SQLite's connections leave copying the write-ahead log
    back into the database file to a WalCheckpointer, which the caller runs."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        in_a_file = url.startswith("sqlite:///") and path not in ("", ":memory:")
        if in_a_file:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs = _pool_sized(kwargs)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=_json_text,
            json_deserializer=orjson.loads,
            **kwargs,
        )
        autocheckpoint = 0 if background_checkpoints else DEFAULT_AUTOCHECKPOINT
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, autocheckpoint))
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; we
        # emit BEGIN ourselves so every unit of work is one real transaction. Writers
        # take the write lock up front: a deferred transaction that reads and then writes
        # fails at once with "database is locked" when another writer got there first,
        # where BEGIN IMMEDIATE waits its turn.
        turns = WriterTurns() if in_a_file else None
        event.listen(engine, "begin", functools.partial(_sqlite_begin, turns))
        if turns is not None:
            # A pooled connection goes back to the pool once its transaction has ended
            # (committed, rolled back, or the connection lost): the next writer's turn.
            for name in ("checkin", "invalidate", "soft_invalidate"):
                event.listen(engine, name, functools.partial(_end_turn, turns))
        return engine
    return create_engine(
        url,
        **_pool_sized(kwargs),
        pool_pre_ping=True,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )


def _pool_sized(options: dict[str, Any]) -> dict[str, Any]:
    """A pool with a connection for every thread that may ask for one at once: the
    request threads, the operation runner's and the WAL checkpointer. SQLAlchemy's
    default (5, and 10 more) made requests, and the checkpointer, wait for one."""
    if "poolclass" in options:
        return options
    return {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW} | options


def _json_text(value: object) -> str:
    # JSON columns hold points and attributes of every annotation: orjson is several
    # times faster than the standard library here.
    return orjson.dumps(value).decode()


class WriterTurns:
    """The writers of one SQLite database in this process, served in the order they came.

    SQLite lets one writer in at a time; the others, left to its busy handler, sleep and
    retry at growing intervals (up to 100 ms), so that the lock is often free while every
    waiter sleeps, and the unlucky one waits for seconds under load. Here a writer waits
    on a lock of its own that the one before it releases: no idle gaps, first come first
    served. Writers of other processes (the CLI) still meet at SQLite's lock."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._taken = False

    def take(self, timeout: float) -> bool:
        """Wait for this writer's turn; False after ``timeout`` seconds without it."""
        with self._mutex:
            if not self._taken:
                self._taken = True
                return True
            signal = threading.Lock()
            signal.acquire()
            self._waiting.append(signal)
        if signal.acquire(timeout=timeout):
            return True
        with self._mutex:
            if signal in self._waiting:
                self._waiting.remove(signal)
                return False
        return True  # handed over just as the wait ran out

    def give_back(self) -> None:
        """End the current turn: the longest-waiting writer's starts."""
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()  # still taken, by that writer now
            else:
                self._taken = False


def _sqlite_begin(turns: WriterTurns | None, connection: Connection) -> None:
    if not connection.get_execution_options().get(WRITE_INTENT):
        connection.exec_driver_sql("BEGIN")
        return
    if turns is not None and turns.take(WRITER_WAIT_S):
        connection.info[_HOLDS_TURN] = True
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        if connection.info.pop(_HOLDS_TURN, False):
            turns.give_back()  # type: ignore[union-attr]
        raise


def _end_turn(turns: WriterTurns, _dbapi_connection: Any, record: Any, *_: Any) -> None:
    if record is not None and record.info.pop(_HOLDS_TURN, False):
        turns.give_back()


def _sqlite_pragmas(autocheckpoint: int, dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
    cursor.close()


class WalCheckpointer:
    """Copies SQLite's write-ahead log back into the database file from a background
    thread, every ``interval`` seconds, for an engine made with background_checkpoints.

    Left to SQLite, the commit that takes the log past 1,000 pages does it and waits for
    it: a 100,000-shape save spent a tenth to a fifth of its time there. PASSIVE
    checkpoints wait for no reader or writer; what they cannot copy yet, the next
    one does."""

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.checkpoint()

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the log, frames copied)."""
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            row: Any = cursor.fetchone()
            cursor.close()
            return row[0], row[1], row[2]
        finally:
            connection.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.checkpoint()
            except Exception:  # the next round tries again; the log only grows meanwhile
                log.exception("WAL checkpoint failed")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a quick look first: most starts find it
    there already)."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != _head_revision():
        command.upgrade(alembic_config(engine), "head")


@functools.cache
def _head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()
