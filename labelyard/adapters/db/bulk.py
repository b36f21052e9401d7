"""Annotation rows in bulk, through the database driver: ids taken in one statement,
inserts as one ``executemany`` (SQLite) or ``COPY`` (PostgreSQL), reads as plain tuples
whose JSON text is never decoded. Everything runs on the session's connection, inside
its transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.orm import Session

# id, job_id, label_id, frame, data (JSON text)
Row = tuple[int, int, int, int, str]
COLUMNS = "id, job_id, label_id, frame, data"


class AnnotationRows:
    def __init__(self, session: Session) -> None:
        self._connection = session.connection()
        self._postgres = self._connection.dialect.name == "postgresql"

    def _run(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        if self._postgres:
            sql = sql.replace("?", "%s")
        result = self._connection.exec_driver_sql(sql, tuple(parameters))
        return list(result.all()) if result.returns_rows else []

    def new_ids(self, table: Table, count: int) -> Sequence[int]:
        """``count`` ids no row has had, ascending. The caller holds the job's write lock;
        on SQLite that is the database's only writer, on PostgreSQL the sequence hands
        out ids that concurrent writers of other jobs never get."""
        if count == 0:
            return []
        if self._postgres:
            return self._postgres_ids(table, count)
        ((last,),) = self._run(
            "SELECT max(coalesce((SELECT last_id FROM annotation_id_counters "
            f"WHERE table_name = ?), 0), coalesce((SELECT max(id) FROM {table.name}), 0))",
            (table.name,),
        )
        self._run(
            "INSERT INTO annotation_id_counters (table_name, last_id) VALUES (?, ?) "
            "ON CONFLICT (table_name) DO UPDATE SET last_id = excluded.last_id",
            (table.name, last + count),
        )
        return range(last + 1, last + 1 + count)

    def _postgres_ids(self, table: Table, count: int) -> list[int]:
        # The sequence is looked up once: named in each row, it is looked up per row.
        ((sequence,),) = self._run("SELECT pg_get_serial_sequence(?, 'id')", (table.name,))
        rows = self._run(
            "SELECT nextval(?::regclass) FROM generate_series(1, ?)", (sequence, count)
        )
        return sorted(row[0] for row in rows)

    def insert(self, table: Table, rows: list[Row]) -> None:
        if not rows:
            return
        if not self._postgres:
            self._connection.exec_driver_sql(
                f"INSERT INTO {table.name} ({COLUMNS}) VALUES (?, ?, ?, ?, ?)", rows
            )
            return
        driver: Any = self._connection.connection.dbapi_connection
        sql = f"COPY {table.name} ({COLUMNS}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def delete(self, table: Table, job_id: int, ids: Iterable[int] | None = None) -> None:
        """The job's rows with ``ids``, or all of them."""
        if ids is None:
            self._run(f"DELETE FROM {table.name} WHERE job_id = ?", (job_id,))
        elif self._postgres:
            self._run(
                f"DELETE FROM {table.name} WHERE job_id = ? AND id = ANY(?)", (job_id, list(ids))
            )
        else:
            # One parameter whatever the count (SQLite limits the parameters of a statement).
            self._run(
                f"DELETE FROM {table.name} WHERE job_id = ? "
                "AND id IN (SELECT value FROM json_each(?))",
                (job_id, orjson.dumps(list(ids)).decode()),
            )

    def read(self, table: Table, job_id: int) -> list[tuple[int, str]]:
        """The job's objects as (id, JSON text), by id."""
        data = "data::text" if self._postgres else "data"
        return self._run(
            f"SELECT id, {data} FROM {table.name} WHERE job_id = ? ORDER BY id", (job_id,)
        )

    def ids(self, table: Table, job_id: int) -> set[int]:
        rows = self._run(f"SELECT id FROM {table.name} WHERE job_id = ?", (job_id,))
        return {row[0] for row in rows}

    def owners(self, table: Table, job_ids: Sequence[int]) -> dict[int, int]:
        """Object id -> job id, for the objects of these jobs."""
        if not job_ids:
            return {}
        marks = ", ".join("?" * len(job_ids))
        rows = self._run(f"SELECT id, job_id FROM {table.name} WHERE job_id IN ({marks})", job_ids)
        return dict(rows)
