"""The ``labelyard`` command, run in-process with click's runner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, select

from labelyard.cli import main
from labelyard.config import Settings
from labelyard.domain import User
from labelyard.services.passwords import verify_password


@pytest.fixture
def run(tmp_path, fresh_database_url):
    env = {
        "LABELYARD_DATA_DIR": str(tmp_path / "data"),
        "LABELYARD_DATABASE_URL": fresh_database_url,
    }

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(main, list(args), env=env, input=input)

    invoke.database_url = Settings(database_url=fresh_database_url).resolved_database_url
    return invoke


def test_migrate_creates_the_schema(run):
    result = run("migrate")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    tables = set(inspect(create_engine(run.database_url)).get_table_names())
    assert {"users", "projects", "tasks", "labels", "segments", "jobs", "alembic_version"} <= tables


def test_createsuperuser_without_prompts(run):
    result = run(
        "createsuperuser", "--username", "boss", "--email", "b@x.io", "--password", "pw-12345678"
    )
    assert result.exit_code == 0, result.output
    with create_engine(run.database_url).connect() as connection:
        user = connection.execute(select(User.__table__).where(User.username == "boss")).one()
    assert user.is_superuser and user.is_staff
    assert verify_password(user.password_hash, "pw-12345678")
    assert user.password_hash != "pw-12345678"


def test_createsuperuser_refuses_a_taken_username(run):
    args = ("createsuperuser", "--username", "boss", "--email", "", "--password", "pw-12345678")
    assert run(*args).exit_code == 0
    result = run(*args)
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_createsuperuser_prompts_for_what_is_missing(run):
    result = run(
        "createsuperuser", "--username", "asker", "--email", "", input="pw-abcdefgh\npw-abcdefgh\n"
    )
    assert result.exit_code == 0, result.output
    assert "created" in result.output


def test_openapi_prints_the_schema():
    result = CliRunner().invoke(main, ["openapi"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/tasks", "/api/v1/auth/login", "/api/v1/jobs/{job_id}"} <= set(schema["paths"])
