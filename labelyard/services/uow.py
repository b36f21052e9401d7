"""The unit of work: one session, one transaction, an explicit commit."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

# Execution option on the first transaction of a unit of work that is going to write;
# the SQLite engine answers it with BEGIN IMMEDIATE.
WRITE_INTENT = "labelyard_writes"


class UnitOfWork:
    """Use cases change state through ``uow.session`` and call ``commit()`` when done;
    anything not committed is rolled back when the unit of work closes. ``writes=False``
    marks a unit of work that only reads, so that readers never wait for writers.

    Only the first transaction carries the write intent: a unit of work commits its
    writes once, and what it reads afterwards holds no lock."""

    def __init__(self, session_factory: sessionmaker[Session], *, writes: bool = True) -> None:
        self._session_factory = session_factory
        self._writes = writes

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        if self._writes:
            # Open the transaction now, marked as a writer's. Reads after the commit
            # (answering the written object) run in a plain, lock-free transaction.
            self.session.connection(execution_options={WRITE_INTENT: True})
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back whatever was not committed and, unlike rollback(), leaves
        # loaded objects readable after the unit of work ends.
        self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def start_writing(self) -> None:
        """End what a reading unit of work read so far and open a writer's transaction,
        for a use case that learns only after reading that it must write (a GET that
        starts an operation): on SQLite a reader's transaction cannot become a writer's
        once another writer has committed, while a new one waits its turn. Decide again
        on what is read after this call."""
        self.session.commit()
        self.session.connection(execution_options={WRITE_INTENT: True})

    def commit_and_continue(self) -> None:
        """Commit what was done so far and go on as before: a writing unit of work's next
        transaction is a writer's too (what a request commits on the way, such as a
        failed sign-in, before the work it was sent for)."""
        self.session.commit()
        if self._writes:
            self.session.connection(execution_options={WRITE_INTENT: True})

    def flush(self) -> None:
        self.session.flush()
