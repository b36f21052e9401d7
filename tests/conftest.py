"""Fixtures: one migrated database per run (SQLite, or PostgreSQL when
LABELYARD_TEST_DATABASE_URL names one), emptied after every test."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from labelyard.adapters.db.engine import make_engine, migrate
from labelyard.app import create_app
from labelyard.config import Settings
from labelyard.domain import DEFAULT_SPACE_ID, Base
from tests.factories import Factory
from tests.support.services import free_port, run_moto_server


def pytest_report_header() -> str:
    return f"labelyard test database: {os.environ.get('LABELYARD_TEST_DATABASE_URL') or 'sqlite'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("LABELYARD_TEST_DATABASE_URL")
    if url:
        return Settings(database_url=url).resolved_database_url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        # A leftover schema from an earlier run would hide a broken migration.
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(
                text(
                    f'DROP TABLE IF EXISTS "{table.name}" CASCADE'
                    if engine.dialect.name == "postgresql"
                    else f'DROP TABLE IF EXISTS "{table.name}"'
                )
            )
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate(engine)
    yield engine
    engine.dispose()


def _empty(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # DELETE and a sequence restart, in one round trip: a sixth of TRUNCATE's time
            # on tables this small, run after every test.
            statements = [_emptying(name) for name in tables] + [
                f'ALTER SEQUENCE "{name}" RESTART WITH {2 if name.startswith("spaces_") else 1}'
                for name in _sequences(engine)
            ]
            connection.exec_driver_sql("; ".join(statements))
        else:
            for name in tables:
                connection.execute(text(_emptying(name)))


def _emptying(table: str) -> str:
    # The default space is part of an empty database: the migration makes it.
    if table == "spaces":
        return f'DELETE FROM "spaces" WHERE id <> {DEFAULT_SPACE_ID}'
    return f'DELETE FROM "{table}"'


@functools.cache
def _sequences(engine: Engine) -> tuple[str, ...]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT sequence_name FROM information_schema.sequences "
                "WHERE sequence_schema = current_schema()"
            )
        )
        return tuple(row[0] for row in rows)


@pytest.fixture
def fresh_database_url(engine: Engine, tmp_path: Path) -> Iterator[str]:
    """An empty database of the kind under test, for code that builds its own engine
    (the CLI, a server subprocess)."""
    if engine.dialect.name != "postgresql":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    name = f"labelyard_fresh_{uuid.uuid4().hex[:12]}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield engine.url.set(database=name).render_as_string(hide_password=False)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        operation_modules=["tests.support.operations"],
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Iterator[FastAPI]:
    app = create_app(settings, engine=engine)
    yield app
    app.state.runner.shutdown()
    _empty(engine)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on 127.0.0.1 (LABELYARD_TEST_REDIS_URL, or one started here)."""
    url = os.environ.get("LABELYARD_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed; `make test` installs it")
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto S3 server running for this test session."""
    yield from run_moto_server(tmp_path_factory.mktemp("moto"))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def factory(app: FastAPI) -> Factory:
    return Factory(app.state.session_factory)


@pytest.fixture
def session_factory(app: FastAPI):  # type: ignore[no-untyped-def]
    return app.state.session_factory
