"""The permission rules over HTTP: status codes, no existence leaks, lists that hold
exactly what their detail endpoints open, and who may change user accounts."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from labelyard.domain import Job, Project, Task, User
from tests.factories import Factory
from tests.services.test_access import ACTORS, CASES, VISIBLE, World, build_world

API = "/api/v1"
MISSING = 987654
ID = "{id}"
REQUESTS: dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]] = {
    ("task", "view"): ("GET", "/tasks/{id}", None),
    ("task", "change"): ("PATCH", "/tasks/{id}", {"name": "renamed"}),
    ("task", "delete"): ("DELETE", "/tasks/{id}", None),
    ("task", "manage_state"): ("PATCH", "/tasks/{id}", {"state": "paused"}),
    ("job", "view"): ("GET", "/jobs/{id}", None),
    ("job", "change_status"): ("PATCH", "/jobs/{id}", {"status": "validation"}),
    ("job", "assign"): ("PATCH", "/jobs/{id}", {"assignee": "worker_unrelated"}),
    ("project", "view"): ("GET", "/projects/{id}", None),
    ("project", "change"): ("PATCH", "/projects/{id}", {"name": "renamed"}),
    ("project", "delete"): ("DELETE", "/projects/{id}", None),
    ("new", "task"): ("POST", "/tasks", {"name": "new", "labels": [{"name": "a"}]}),
    ("new", "task_in_project"): ("POST", "/tasks", {"name": "new", "project_id": ID}),
    ("new", "project"): ("POST", "/projects", {"name": "new"}),
}
SUCCESS = {"GET": 200, "PATCH": 200, "POST": 201, "DELETE": 204}
BAD_CREDENTIALS = {
    "none": {},
    "bad token": {"Authorization": "Token not-a-real-token"},
    "bad password": {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()},
}
USER_FIELDS = ("first_name", "groups", "is_superuser", "is_staff", "is_active")
PRIVILEGES = [
    {"groups": ["admin"]},
    {"is_superuser": True},
    {"is_staff": True},
    {"is_active": False},
]


def send(client: TestClient, headers: dict[str, str], key: tuple[str, str], oid: int) -> Response:
    method, path, body = REQUESTS[key]
    if body is not None:
        body = {name: oid if value == ID else value for name, value in body.items()}
    return client.request(method, API + path.format(id=oid), headers=headers, json=body)


def expected_status(key: tuple[str, str], outcome: str) -> int:
    return SUCCESS[REQUESTS[key][0]] if outcome == "ok" else int(outcome)


def masked(response: Response, oid: int) -> tuple[int, str]:
    return response.status_code, response.text.replace(str(oid), "<id>")


def snapshot(factory: Factory, world: World) -> tuple[Any, ...]:
    with factory.uow() as uow:
        task = uow.session.get(Task, world.target("task"))
        job = uow.session.get(Job, world.target("job"))
        project = uow.session.get(Project, world.target("project"))
        return (
            task and (task.name, task.state),
            job and (job.status, job.assignee_id, job.reviewer_id),
            project and project.name,
            uow.session.scalar(select(func.count()).select_from(Task)),
            uow.session.scalar(select(func.count()).select_from(Project)),
        )


def ids(response: Response) -> set[int]:
    assert response.status_code == 200, response.text
    body = response.json()
    rows = body["results"] if isinstance(body, dict) else body
    return {row["id"] for row in rows}


@pytest.mark.parametrize(("actor", "obj", "action", "expected"), CASES)
def test_status(client, factory, actor, obj, action, expected):
    world = build_world(factory)
    headers, key, oid = factory.headers(world.users[actor]), (obj, action), world.target(obj)
    before = snapshot(factory, world)
    response = send(client, headers, key, oid)
    assert response.status_code == expected_status(key, expected), response.text
    changed = snapshot(factory, world) != before
    assert changed == (expected == "ok" and REQUESTS[key][0] != "GET")
    if expected in ("404", "400"):
        assert masked(response, oid) == masked(send(client, headers, key, MISSING), MISSING)


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
@pytest.mark.parametrize("key", REQUESTS, ids=[f"{o}-{a}" for o, a in REQUESTS])
def test_unauthenticated_requests_are_refused(client, factory, key, credentials):
    world = build_world(factory)
    before = snapshot(factory, world)
    assert send(client, credentials, key, world.target(key[0])).status_code == 401
    assert send(client, credentials, key, MISSING).status_code == 401
    assert snapshot(factory, world) == before


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
@pytest.mark.parametrize("path", ["/tasks", "/projects", "/jobs", "/users", "/users/self"])
def test_unauthenticated_lists_are_refused(client, factory, path, credentials):
    build_world(factory)
    assert client.get(API + path, headers=credentials).status_code == 401


@pytest.mark.parametrize("kind", ["tasks", "projects", "jobs"])
@pytest.mark.parametrize("actor", ACTORS)
def test_lists_show_exactly_what_details_open(client, factory, actor, kind):
    world = build_world(factory)
    headers = factory.headers(world.users[actor])
    expected = {world.ids[kind][name] for name in VISIBLE[actor][kind]}
    statuses = {
        oid: client.get(f"{API}/{kind}/{oid}", headers=headers).status_code
        for oid in world.ids[kind].values()
    }
    assert statuses == {oid: 200 if oid in expected else 404 for oid in statuses}
    assert ids(client.get(f"{API}/{kind}?page_size=all", headers=headers)) == expected


@pytest.mark.parametrize("actor", ACTORS)
def test_task_jobs_show_exactly_what_job_details_open(client, factory, actor):
    world = build_world(factory)
    headers = factory.headers(world.users[actor])
    task_jobs = {world.ids["jobs"]["job"], world.ids["jobs"]["other_job"]}
    response = client.get(f"{API}/tasks/{world.target('task')}/jobs", headers=headers)
    if "task" not in VISIBLE[actor]["tasks"]:
        assert masked(response, world.target("task")) == masked(
            client.get(f"{API}/tasks/{MISSING}/jobs", headers=headers), MISSING
        )
        assert response.status_code == 404
        return
    openable = {
        oid for oid in task_jobs if client.get(f"{API}/jobs/{oid}", headers=headers).is_success
    }
    assert ids(response) == openable
    assert openable == {world.ids["jobs"][name] for name in VISIBLE[actor]["jobs"]} & task_jobs


def user_row(factory: Factory, user: User) -> dict[str, Any] | None:
    with factory.uow() as uow:
        row = uow.session.get(User, user.id)
        return row and {field: getattr(row, field) for field in USER_FIELDS}


NON_ADMINS = [actor for actor in ACTORS if actor != "admin"]


@pytest.mark.parametrize("actor", NON_ADMINS)
def test_a_non_admin_cannot_change_another_user(client, factory, actor):
    world = build_world(factory)
    victim = world.users["stranger"]
    before = user_row(factory, victim)
    response = client.patch(
        f"{API}/users/{victim.id}",
        headers=factory.headers(world.users[actor]),
        json={"first_name": "Mallory"},
    )
    assert response.status_code == 403, response.text
    assert user_row(factory, victim) == before


@pytest.mark.parametrize("body", PRIVILEGES, ids=lambda body: next(iter(body)))
@pytest.mark.parametrize("actor", ["user_unrelated", "job_assignee", "business_unrelated"])
def test_a_non_admin_cannot_raise_their_own_privileges(client, factory, actor, body):
    world = build_world(factory)
    me = world.users[actor]
    before = user_row(factory, me)
    response = client.patch(f"{API}/users/{me.id}", headers=factory.headers(me), json=body)
    assert response.status_code == 403, response.text
    assert user_row(factory, me) == before


@pytest.mark.parametrize("actor", ["user_unrelated", "job_assignee", "business_unrelated"])
def test_a_non_admin_changes_their_own_name(client, factory, actor):
    world = build_world(factory)
    me = world.users[actor]
    before = user_row(factory, me)
    response = client.patch(
        f"{API}/users/{me.id}", headers=factory.headers(me), json={"first_name": "Ada"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["first_name"] == "Ada"
    assert user_row(factory, me) == {**before, "first_name": "Ada"}


@pytest.mark.parametrize("actor", NON_ADMINS)
def test_a_non_admin_cannot_delete_another_user(client, factory, actor):
    world = build_world(factory)
    victim = world.users["stranger"]
    response = client.delete(
        f"{API}/users/{victim.id}", headers=factory.headers(world.users[actor])
    )
    assert response.status_code == 403, response.text
    assert user_row(factory, victim) is not None


@pytest.mark.parametrize("body", [{"first_name": "Ada"}, *PRIVILEGES], ids=lambda b: next(iter(b)))
def test_an_admin_changes_any_user(client, factory, body):
    world = build_world(factory)
    victim = world.users["user_unrelated"]
    before = user_row(factory, victim)
    response = client.patch(
        f"{API}/users/{victim.id}", headers=factory.headers(world.users["admin"]), json=body
    )
    assert response.status_code == 200, response.text
    ((name, value),) = body.items()
    assert response.json()[name] == value
    assert user_row(factory, victim) == {**before, name: value}


def test_an_admin_deletes_another_user(client, factory):
    world = build_world(factory)
    admin, victim = factory.headers(world.users["admin"]), world.users["stranger"]
    assert client.delete(f"{API}/users/{victim.id}", headers=admin).status_code == 204
    assert client.get(f"{API}/users/{victim.id}", headers=admin).status_code == 404
    assert user_row(factory, victim) is None
