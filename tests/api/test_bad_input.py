"""Bad requests against /api/v1: each one is refused with the right 4xx and a JSON body
naming the bad field, and a refused write leaves nothing half-written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from labelyard.domain import ClientEvent, Label, Task, TaskState, User
from tests.factories import PASSWORD

API = "/api/v1"
JSON_CT = {"Content-Type": "application/json"}
NOW = "2024-05-01T10:00:00Z"
NEW_PASSWORD = "N3w-horse-staple-42"
HUGE_ID = 10**20  # a valid JSON integer no database column holds


@dataclass
class World:
    headers: dict[str, str]
    ids: dict[str, int]

    def path(self, template: str) -> str:
        return API + template.format(**self.ids)

    def fill(self, value: Any) -> Any:
        """``"$name"`` anywhere in a body becomes the id of that object."""
        if isinstance(value, str) and value.startswith("$"):
            return self.ids[value[1:]]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value


@pytest.fixture
def world(factory) -> World:
    alice, bob = factory.user("alice"), factory.user("bob")
    task = factory.task(alice, "task", labels=("car", "bus"), frames=20, segment_size=10)
    empty = factory.task(alice, "empty")
    project = factory.project(alice, "proj")
    ptask = factory.task(alice, "ptask", project=project)
    hidden_task = factory.task(bob, "hidden", labels=("tree",))
    hidden_project = factory.project(bob, "secret")
    paused = factory.task(alice, "paused", frames=5)
    with factory.uow() as uow:
        uow.session.get_one(Task, paused.id).state = TaskState.PAUSED
        uow.commit()
        jobs = [uow.session.get_one(Task, t.id).segments[0].jobs[0].id for t in (task, paused)]
        where = Label.task_id.in_([task.id, hidden_task.id])
        labels = dict(uow.session.execute(select(Label.name, Label.id).where(where)).all())
    ids = dict(user=alice.id, bob=bob.id, task=task.id, empty=empty.id, project=project.id)
    ids.update(ptask=ptask.id, hidden_task=hidden_task.id, hidden_project=hidden_project.id)
    ids.update(job=jobs[0], paused_job=jobs[1], car=labels["car"], bus=labels["bus"])
    ids.update(foreign_label=labels["tree"], huge=HUGE_ID)
    return World(factory.headers(alice), ids)


def send(client, world: World, method: str, path: str, body: Any = None, **kwargs: Any):
    headers = {**world.headers, **kwargs.pop("headers", {})}
    if body is not None:
        kwargs["json"] = world.fill(body)
    return client.request(method, world.path(path), headers=headers, **kwargs)


def assert_refused(response, status: int, key: str | None = None) -> dict[str, Any]:
    """The exact status, a JSON object with a non-empty ``detail`` string and, for a 400,
    the offending field as a key."""
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if key is not None:
        assert key in body, f"{key!r} not in {sorted(body)}"
    return body


def count(factory, model: type) -> int:
    with factory.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(model)) or 0


# --- the request envelope, for every write endpoint -------------------------------------

REG = {"username": "newbie", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
PW = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
ENDPOINTS = {
    "login": ("POST", "/auth/login", {"username": "alice", "password": PASSWORD}),
    "register": ("POST", "/auth/register", {**REG, "email": "newbie@example.com"}),
    "password-change": ("POST", "/auth/password/change", PW),
    "users-patch": ("PATCH", "/users/{user}", {"first_name": "Alice"}),
    "projects-post": ("POST", "/projects", {"name": "p"}),
    "tasks-post": ("POST", "/tasks", {"name": "t"}),
    "tasks-put": ("PUT", "/tasks/{task}", {"name": "t"}),
    "tasks-patch": ("PATCH", "/tasks/{task}", {"name": "t"}),
    "jobs-put": ("PUT", "/jobs/{job}", {"status": "validation"}),
    "jobs-patch": ("PATCH", "/jobs/{job}", {"status": "validation"}),
    "logs": ("POST", "/server/logs", [{"name": "click", "time": NOW}]),
    "exception": ("POST", "/server/exception", {"time": NOW, "message": "boom"}),
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_valid_body_is_accepted(client, world, endpoint):
    """The baseline every envelope case below breaks in exactly one way."""
    method, path, body = ENDPOINTS[endpoint]
    response = send(client, world, method, path, body)
    assert response.status_code in (200, 201), response.text


def _envelope(variant: str, body: Any) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    wrong_shape = body[0] if isinstance(body, list) else [body]
    return {
        "malformed-json": {"content": raw[:-3], "headers": JSON_CT},
        "wrong-shape": {"json": wrong_shape},
        "string": {"json": "x"},
        "null": {"content": b"null", "headers": JSON_CT},
        "no-content-type": {"content": raw},
        "text-plain": {"content": raw, "headers": {"Content-Type": "text/plain"}},
    }[variant]


@pytest.mark.parametrize(
    "variant",
    ["malformed-json", "wrong-shape", "string", "null", "no-content-type", "text-plain"],
)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_body_that_is_not_a_json_object_is_refused(client, world, endpoint, variant):
    method, path, body = ENDPOINTS[endpoint]
    response = send(client, world, method, path, **_envelope(variant, body))
    assert_refused(response, 400, "non_field_errors")


@pytest.mark.parametrize("endpoint", sorted(set(ENDPOINTS) - {"login"}))
def test_an_unknown_field_is_refused(client, world, endpoint):
    method, path, body = ENDPOINTS[endpoint]
    if isinstance(body, list):
        body, key = [{**body[0], "bogus": 1}], "0.bogus"
    else:
        body, key = {**body, "bogus": 1}, "bogus"
    assert_refused(send(client, world, method, path, body), 400, key)


@pytest.mark.parametrize("endpoint", ["login", "register", "tasks-post", "jobs-patch", "logs"])
def test_a_body_over_the_size_limit_is_refused(client, world, settings, endpoint):
    method, path, _ = ENDPOINTS[endpoint]
    content = b'{"name": "' + b"x" * settings.max_request_bytes + b'"}'
    response = send(client, world, method, path, content=content, headers=JSON_CT)
    assert_refused(response, 413)


def test_a_streamed_body_over_the_size_limit_is_refused(client, world, settings):
    """Without a Content-Length the limit must still hold (chunked transfer encoding)."""
    chunks = [b'{"name": "', *[b"x" * 2**20] * (settings.max_request_bytes // 2**20 + 1), b'"}']
    response = send(client, world, "POST", "/tasks", content=iter(chunks), headers=JSON_CT)
    assert_refused(response, 413)


# --- bad fields ---------------------------------------------------------------------------


def bad(case_id: str, method: str, path: str, body: Any, key: str | None, status: int = 400):
    return pytest.param(method, path, body, status, key, id=case_id)


def task(**fields: Any) -> dict[str, Any]:
    return {"name": "t", **fields}


def labels(*items: dict[str, Any]) -> dict[str, Any]:
    return task(labels=list(items))


def attr(**fields: Any) -> dict[str, Any]:
    return labels({"name": "a", "attributes": [{"name": "s", **fields}]})


def number(*values: str) -> dict[str, Any]:
    return attr(input_type="number", values=list(values))


TS, T1, J1, U1 = "/tasks", "/tasks/{task}", "/jobs/{job}", "/users/{user}"
PS, P1 = "/projects", "/projects/{project}"
A0 = "labels.0.attributes.0"
# fmt: off
TASK_CASES = [
    bad("task-name-int", "POST", TS, {"name": 123}, "name"),
    bad("task-name-257", "POST", TS, {"name": "n" * 257}, "name"),
    bad("task-name-missing", "POST", TS, {"labels": [{"name": "a"}]}, "name"),
    bad("task-name-blank", "PATCH", T1, {"name": "   "}, "name"),
    bad("task-put-name-missing", "PUT", T1, {"bug_tracker": ""}, "name"),
    bad("task-bug-tracker-2001", "POST", TS, task(bug_tracker="b" * 2001), "bug_tracker"),
    bad("task-segment-size-abc", "POST", TS, task(segment_size="abc"), "segment_size"),
    bad("task-segment-size-huge", "PATCH", "/tasks/{empty}", {"segment_size": HUGE_ID},
        "segment_size"),
    bad("task-segment-size-after-data", "PATCH", T1, {"segment_size": 5}, "segment_size"),
    bad("task-overlap-negative", "POST", TS, task(overlap=-1), "overlap"),
    bad("task-z-order-maybe", "POST", TS, task(z_order="maybe"), "z_order"),
    bad("task-image-quality-101", "POST", TS, task(image_quality=101), "image_quality"),
    bad("task-state-bogus", "PATCH", T1, {"state": "bogus"}, "state"),
    bad("task-unknown-field", "PATCH", T1, task(bogus=1), "bogus"),
    bad("task-labels-string", "POST", TS, task(labels="x"), "labels"),
    bad("task-labels-null-item", "POST", TS, task(labels=[None]), "labels.0"),
    bad("task-label-name-65", "POST", TS, labels({"name": "l" * 65}), "labels.0.name"),
    bad("task-label-name-missing", "POST", TS, labels({"color": "#ff0000"}), "labels.0.name"),
    bad("task-label-color-word", "POST", TS, labels({"name": "a", "color": "red"}),
        "labels.0.color"),
    bad("task-label-unknown-field", "POST", TS, labels({"name": "a", "x": 1}), "labels.0.x"),
    bad("task-attr-input-type-bad", "POST", TS, attr(input_type="slider"), f"{A0}.input_type"),
    bad("task-attr-input-type-missing", "POST", TS, attr(values=["1"]), f"{A0}.input_type"),
    bad("task-attr-number-two-values", "POST", TS, number("0", "10"), A0),
    bad("task-attr-number-words", "POST", TS, number("a", "b", "c"), A0),
    bad("task-attr-number-min-over-max", "POST", TS, number("9", "1", "1"), A0),
    bad("task-attr-select-default-not-in-values", "POST", TS,
        attr(input_type="select", values=["a", "b"], default_value="c"), A0),
    bad("task-attr-select-no-values", "POST", TS, attr(input_type="select", values=[]), A0),
    bad("task-attr-name-repeated", "POST", TS,
        labels({"name": "a", "attributes": [{"name": "s", "input_type": "text"}] * 2}),
        "labels.0.attributes.1.name"),
    bad("task-labels-duplicate-in-request", "POST", TS, labels({"name": "a"}, {"name": "a"}),
        "labels.1.name"),
    bad("task-labels-duplicate-of-existing", "PATCH", T1, labels({"name": "car"}), "labels.0.name"),
    bad("task-labels-rename-onto-existing", "PATCH", T1, labels({"id": "$car", "name": "bus"}),
        "labels"),
    bad("task-labels-id-of-another-task", "PATCH", T1,
        labels({"id": "$foreign_label", "name": "tree"}), "labels.0.id"),
    bad("task-labels-delete-of-another-task", "PATCH", T1,
        labels({"id": "$foreign_label", "name": "tree", "deleted": True}), "labels.0.id"),
    bad("task-labels-delete-without-id", "PATCH", T1, labels({"name": "car", "deleted": True}),
        "labels.0.deleted"),
    bad("task-labels-in-project-post", "POST", TS,
        {**labels({"name": "a"}), "project_id": "$project"}, "labels"),
    bad("task-labels-in-project-patch", "PATCH", "/tasks/{ptask}", labels({"name": "a"}), "labels"),
    bad("task-assignee-99999", "POST", TS, task(assignee=99999), "assignee"),
    bad("task-assignee-id-99999", "POST", TS, task(assignee_id=99999), "assignee_id"),
    bad("task-assignee-nosuchuser", "POST", TS, task(assignee="nosuchuser"), "assignee"),
    bad("task-assignee-object-unknown", "PATCH", T1, {"assignee": {"id": 99999}}, "assignee"),
    bad("task-assignee-true", "PATCH", T1, {"assignee": True}, "assignee"),
    bad("task-assignee-huge", "PATCH", T1, {"assignee": HUGE_ID}, "assignee"),
    bad("task-owner-null", "PATCH", T1, {"owner": None}, "owner"),
    bad("task-project-invisible", "POST", TS, task(project_id="$hidden_project"), "project_id"),
    bad("task-project-99999", "POST", TS, task(project_id=99999), "project_id"),
    bad("task-project-huge", "POST", TS, task(project_id=HUGE_ID), "project_id"),
    bad("task-source-invisible", "POST", TS, {"source_task_id": "$hidden_task"}, "source_task_id"),
    bad("task-source-99999", "POST", TS, {"source_task_id": 99999}, "source_task_id"),
    bad("task-copy-with-labels", "POST", TS, {"source_task_id": "$task", "labels": []}, "labels"),
    *[bad(f"task-post-read-only-{f}", "POST", TS, task(**{f: v}), f)
      for f, v in [("id", 5), ("status", "completed"), ("size", 3), ("state", "in_progress")]],
    *[bad(f"task-patch-read-only-{f}", "PATCH", T1, {f: v}, f)
      for f, v in [("id", 5), ("url", "http://x/api/v1/tasks/5"), ("status", "completed"),
                   ("size", 3), ("segments", []), ("created_date", NOW), ("mode", "annotation"),
                   ("project_id", "$project"), ("source_task_id", "$empty"), ("jobs", [])]],
    bad("task-put-read-only-project-id", "PUT", T1, task(project_id="$project"), "project_id"),
    bad("task-start-without-data", "PATCH", "/tasks/{empty}", {"state": "in_progress"}, None, 409),
    bad("task-state-backwards", "PATCH", T1, {"state": "not_started"}, None, 409),
    bad("task-patch-99999", "PATCH", "/tasks/99999", task(), None, 404),
    bad("task-patch-huge-id", "PATCH", "/tasks/{huge}", task(), None, 404),
    bad("task-patch-invisible", "PATCH", "/tasks/{hidden_task}", task(), None, 404),
    bad("task-put-invisible", "PUT", "/tasks/{hidden_task}", task(), None, 404),
]
OTHER_CASES = [
    bad("project-name-missing", "POST", PS, {"labels": []}, "name"),
    bad("project-name-int", "POST", PS, {"name": 123}, "name"),
    bad("project-name-257", "POST", PS, {"name": "n" * 257}, "name"),
    bad("project-bug-tracker-2001", "POST", PS, task(bug_tracker="b" * 2001), "bug_tracker"),
    bad("project-labels-string", "POST", PS, task(labels="x"), "labels"),
    bad("project-label-name-65", "POST", PS, labels({"name": "l" * 65}), "labels.0.name"),
    bad("project-labels-duplicate", "POST", PS, labels({"name": "a"}, {"name": "a"}),
        "labels.1.name"),
    bad("project-labels-duplicate-of-existing", "PATCH", P1, labels({"name": "car"}),
        "labels.0.name"),
    bad("project-assignee-99999", "POST", PS, task(assignee=99999), "assignee"),
    bad("project-assignee-nosuchuser", "POST", PS, task(assignee="nosuchuser"), "assignee"),
    bad("project-read-only-status", "POST", PS, task(status="completed"), "status"),
    bad("project-read-only-tasks", "PATCH", P1, {"tasks": []}, "tasks"),
    bad("project-patch-invisible", "PATCH", "/projects/{hidden_project}", task(), None, 404),
    bad("job-status-bogus", "PATCH", J1, {"status": "bogus"}, "status"),
    bad("job-status-int", "PATCH", J1, {"status": 1}, "status"),
    bad("job-put-status-missing", "PUT", J1, {"assignee": None}, "status"),
    bad("job-assignee-99999", "PATCH", J1, {"assignee": 99999}, "assignee"),
    bad("job-assignee-nosuchuser", "PATCH", J1, {"assignee": "nosuchuser"}, "assignee"),
    bad("job-assignee-id-99999", "PUT", J1, {"status": "annotation", "assignee_id": 99999},
        "assignee_id"),
    bad("job-reviewer-nosuchuser", "PATCH", J1, {"reviewer": "nosuchuser"}, "reviewer"),
    *[bad(f"job-read-only-{f}", "PATCH", J1, {f: v}, f)
      for f, v in [("id", 5), ("url", "http://x/api/v1/jobs/5"), ("start_frame", 0),
                   ("stop_frame", 3), ("task_id", "$empty"), ("project_id", "$project")]],
    bad("job-status-of-paused-task", "PATCH", "/jobs/{paused_job}", {"status": "completed"},
        None, 409),
    bad("job-patch-99999", "PATCH", "/jobs/99999", {"status": "annotation"}, None, 404),
    bad("job-put-99999", "PUT", "/jobs/99999", {"status": "annotation"}, None, 404),
    bad("user-username-int", "PATCH", U1, {"username": 123}, "username"),
    bad("user-username-blank", "PATCH", U1, {"username": ""}, "username"),
    bad("user-username-invalid", "PATCH", U1, {"username": "no spaces!"}, "username"),
    bad("user-username-taken", "PATCH", U1, {"username": "BOB"}, "username"),
    bad("user-email-invalid", "PATCH", U1, {"email": "nope"}, "email"),
    bad("user-first-name-151", "PATCH", U1, {"first_name": "f" * 151}, "first_name"),
    bad("user-groups-unknown", "PATCH", U1, {"groups": ["wizard"]}, "groups.0"),
    bad("user-groups-string", "PATCH", U1, {"groups": "user"}, "groups"),
    bad("user-is-active-maybe", "PATCH", U1, {"is_active": "maybe"}, "is_active"),
    *[bad(f"user-read-only-{f}", "PATCH", U1, {f: v}, f)
      for f, v in [("id", 5), ("url", "http://x/api/v1/users/5"), ("date_joined", NOW),
                   ("last_login", NOW), ("password", "x")]],
    bad("user-patch-99999", "PATCH", "/users/99999", {"first_name": "x"}, None, 404),
]
LOGIN, REGISTER, CHANGE = "/auth/login", "/auth/register", "/auth/password/change"
LOGS, EXC = "/server/logs", "/server/exception"
AUTH_SERVER_CASES = [
    bad("login-password-missing", "POST", LOGIN, {"username": "alice"}, "password"),
    bad("login-password-blank", "POST", LOGIN, {"username": "alice", "password": ""}, "password"),
    bad("login-username-missing", "POST", LOGIN, {"password": PASSWORD}, "username"),
    bad("login-username-int", "POST", LOGIN, {"username": 123, "password": PASSWORD}, "username"),
    bad("login-wrong-password", "POST", LOGIN, {"username": "alice", "password": "nope"},
        "non_field_errors"),
    bad("register-passwords-differ", "POST", REGISTER, {**REG, "password2": "x"}, "password2"),
    bad("register-username-missing", "POST", REGISTER, {**REG, "username": ""}, "username"),
    bad("register-username-invalid", "POST", REGISTER, {**REG, "username": "a b"}, "username"),
    bad("register-username-taken", "POST", REGISTER, {**REG, "username": "Alice"}, "username"),
    bad("register-username-151", "POST", REGISTER, {**REG, "username": "u" * 151}, "username"),
    bad("register-email-invalid", "POST", REGISTER, {**REG, "email": "nope"}, "email"),
    bad("register-password-short", "POST", REGISTER,
        {**REG, "password1": "Ab1!", "password2": "Ab1!"}, "password1"),
    bad("password-change-wrong-old", "POST", CHANGE, {**PW, "old_password": "x"}, "old_password"),
    bad("password-change-new-differ", "POST", CHANGE, {**PW, "new_password2": "x"},
        "new_password2"),
    bad("password-change-old-missing", "POST", CHANGE,
        {k: v for k, v in PW.items() if k != "old_password"}, "old_password"),
    bad("password-change-new-short", "POST", CHANGE,
        {**PW, "new_password1": "Ab1!", "new_password2": "Ab1!"}, "new_password1"),
    bad("logs-time-without-timezone", "POST", LOGS, [{"name": "a", "time": "2024-05-01T10:00:00"}],
        "0.time"),
    bad("logs-time-garbage", "POST", LOGS, [{"name": "a", "time": "yesterday"}], "0.time"),
    bad("logs-second-event-bad", "POST", LOGS,
        [{"name": "a", "time": NOW}, {"name": "b", "time": "2024-05-01"}], "1.time"),
    bad("logs-name-missing", "POST", LOGS, [{"time": NOW}], "0.name"),
    bad("logs-name-65", "POST", LOGS, [{"name": "n" * 65, "time": NOW}], "0.name"),
    bad("logs-payload-string", "POST", LOGS, [{"name": "a", "time": NOW, "payload": "x"}],
        "0.payload"),
    bad("logs-too-many-events", "POST", LOGS, [{"name": "a", "time": NOW}] * 10_001,
        "non_field_errors"),
    bad("exception-time-without-timezone", "POST", EXC, {"time": "2024-05-01 10:00:00"}, "time"),
    bad("exception-time-missing", "POST", EXC, {"message": "boom"}, "time"),
    bad("exception-line-abc", "POST", EXC, {"time": NOW, "line": "abc"}, "line"),
    bad("exception-stack-8193", "POST", EXC, {"time": NOW, "stack": "s" * 8193}, "stack"),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "key"),
    TASK_CASES + OTHER_CASES + AUTH_SERVER_CASES,
)
def test_a_bad_field_is_refused_and_named(client, world, method, path, body, status, key):
    assert_refused(send(client, world, method, path, body), status, key)


# --- bad query strings ----------------------------------------------------------------

PROJECT_TASKS = "/projects/{project}/tasks"
LISTS = ["/tasks", "/projects", "/jobs", "/users", "/server/logs", PROJECT_TASKS]
PAGE_CASES = [
    ("page-0", {"page": "0"}, 404, None),
    ("page-negative", {"page": "-1"}, 404, None),
    ("page-abc", {"page": "abc"}, 404, None),
    ("page-999", {"page": "999"}, 404, None),
    ("page-superscript-two", {"page": "\u00b2"}, 404, None),
    ("page-size-negative", {"page_size": "-1"}, 400, "page_size"),
    ("page-size-0", {"page_size": "0"}, 400, "page_size"),
    ("page-size-abc", {"page_size": "abc"}, 400, "page_size"),
    ("page-size-superscript-two", {"page_size": "\u00b2"}, 400, "page_size"),
    ("ordering-unknown", {"ordering": "bogus"}, 400, "ordering"),
    ("ordering-unknown-descending", {"ordering": "id,-bogus"}, 400, "ordering"),
]


@pytest.mark.parametrize(
    ("path", "params", "status", "key"),
    [
        pytest.param(path, *case[1:], id=f"{path}-{case[0]}")
        for path in LISTS
        for case in PAGE_CASES
        if "ordering" not in case[1] or path != PROJECT_TASKS  # that list takes no ordering
    ],
)
def test_bad_paging_is_refused(client, world, path, params, status, key):
    body = assert_refused(send(client, world, "GET", path, params=params), status, key)
    if status == 404:
        assert body["detail"] == "Invalid page."


@pytest.mark.parametrize(
    ("path", "params", "key"),
    [
        pytest.param("/tasks", {"id": "abc"}, "id", id="tasks-id-abc"),
        pytest.param("/tasks", {"name": "n" * 257}, "name", id="tasks-name-257"),
        pytest.param("/jobs", {"task_id": "abc"}, "task_id", id="jobs-task-id-abc"),
        pytest.param("/users", {"is_active": "maybe"}, "is_active", id="users-is-active-maybe"),
        pytest.param("/projects", {"id": "1.5"}, "id", id="projects-id-float"),
    ],
)
def test_a_badly_typed_filter_is_refused(client, world, path, params, key):
    assert_refused(send(client, world, "GET", path, params=params), 400, key)


# --- nothing half-written -----------------------------------------------------------------


def read(client, world: World, path: str) -> dict[str, Any]:
    response = send(client, world, "GET", path)
    assert response.status_code == 200, response.text
    return response.json()


def snapshot(client, world: World, path: str, *fields: str) -> dict[str, Any]:
    body = read(client, world, path)
    shown = {field: body[field] for field in fields}
    if "labels" in body:
        shown["labels"] = {label["id"]: label["name"] for label in body["labels"]}
    return shown


# fmt: off
@pytest.mark.parametrize("body", [
    pytest.param(labels({"name": "a"}, {"name": "a"}), id="second-label-duplicate"),
    pytest.param(labels({"name": "a"}, {"name": ""}), id="second-label-blank"),
    pytest.param({**labels({"name": "a"}), "assignee": "nosuchuser"}, id="bad-assignee"),
    pytest.param({"source_task_id": "$task", "owner": "nosuchuser"}, id="copy-bad-owner"),
])
def test_a_refused_task_create_leaves_no_task(client, world, factory, body):
    before = count(factory, Task), count(factory, Label)
    assert_refused(send(client, world, "POST", "/tasks", body), 400)
    assert (count(factory, Task), count(factory, Label)) == before


@pytest.mark.parametrize(("body", "status"), [
    pytest.param(labels({"name": "truck"}, {"name": "car"}), 400, id="duplicate-label"),
    pytest.param(labels({"id": "$car", "name": "auto"}, {"id": "$foreign_label", "name": "tree"}),
                 400, id="rename-and-foreign-label-id"),
    pytest.param(labels({"id": "$car", "name": "car", "deleted": True}, {"name": "bus"}),
                 400, id="label-delete-and-bad-add"),
    pytest.param({"assignee": "nosuchuser"}, 400, id="bad-assignee"),
    pytest.param({"state": "not_started"}, 409, id="bad-state"),
    pytest.param({"segment_size": 5}, 400, id="segment-size-after-data"),
])
def test_a_refused_task_patch_changes_nothing(client, world, body, status):
    fields = ("name", "bug_tracker", "assignee", "state", "segment_size")
    before = snapshot(client, world, "/tasks/{task}", *fields)
    body = {**body, "name": "renamed", "bug_tracker": "http://bugs/1"}
    assert_refused(send(client, world, "PATCH", "/tasks/{task}", body), status)
    assert snapshot(client, world, "/tasks/{task}", *fields) == before


@pytest.mark.parametrize("body", [
    pytest.param({"status": "validation", "assignee": 99999}, id="assignee-99999"),
    pytest.param({"status": "validation", "reviewer": "nosuchuser"}, id="reviewer-unknown"),
    pytest.param({"status": "validation", "assignee": "$bob", "reviewer_id": 99999},
                 id="good-assignee-bad-reviewer"),
])
def test_a_refused_job_patch_changes_nothing(client, world, body):
    before = snapshot(client, world, "/jobs/{job}", "status", "assignee", "reviewer")
    assert_refused(send(client, world, "PATCH", "/jobs/{job}", body), 400)
    assert snapshot(client, world, "/jobs/{job}", "status", "assignee", "reviewer") == before
# fmt: on


def test_a_refused_project_label_change_deletes_nothing(client, world):
    before = snapshot(client, world, "/projects/{project}", "name")
    (car,) = before["labels"]
    deletion = {"id": car, "name": "car", "deleted": True}
    body = {"name": "renamed", "labels": [deletion, {"name": "new"}, {"name": "new"}]}
    assert_refused(send(client, world, "PATCH", "/projects/{project}", body), 400, "labels.2.name")
    assert snapshot(client, world, "/projects/{project}", "name") == before


def test_a_refused_registration_creates_no_user(client, world, factory):
    users = count(factory, User)
    body = {**REG, "password2": "something-else-42"}
    assert_refused(send(client, world, "POST", "/auth/register", body), 400, "password2")
    assert count(factory, User) == users
    login = {"username": "newbie", "password": NEW_PASSWORD}
    assert send(client, world, "POST", "/auth/login", login).status_code == 400


def test_a_refused_password_change_keeps_the_old_password(client, world):
    body = {**PW, "new_password2": "x"}
    assert_refused(send(client, world, "POST", "/auth/password/change", body), 400, "new_password2")
    login = {"username": "alice", "password": PASSWORD}
    assert send(client, world, "POST", "/auth/login", login).status_code == 200


def test_a_refused_user_patch_changes_nothing(client, world):
    body = {"first_name": "Alicia", "email": "not-an-email"}
    assert_refused(send(client, world, "PATCH", "/users/{user}", body), 400, "email")
    after = read(client, world, "/users/{user}")
    assert (after["first_name"], after["email"]) == ("", "alice@example.com")


def test_a_refused_batch_of_logs_stores_no_event(client, world, factory):
    body = [{"name": "good", "time": NOW}, {"name": "bad", "time": "2024-05-01T10:00:00"}]
    assert_refused(send(client, world, "POST", "/server/logs", body), 400, "1.time")
    assert count(factory, ClientEvent) == 0


# --- NUL bytes: no text the server keeps may hold one (PostgreSQL's text cannot) ---------


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/tasks", {"name": "a\x00b"}, "name"),
        ("/projects", {"search": "\x00"}, "search"),
        ("/users", {"username": "x", "page\x00": "1"}, "page\\x00"),
        ("/server/share", {"directory": "/\x00"}, "directory"),
    ],
)
def test_a_nul_byte_in_a_query_parameter_is_refused_naming_it(client, world, path, params, named):
    response = client.get(world.path(path), headers=world.headers, params=params)
    assert response.status_code == 400, response.text
    assert named in response.json() and "NUL" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        ("POST", "/projects", {"name": "a\x00b"}, "name"),
        ("PATCH", "/tasks/{task}", {"name": "t", "bug_tracker": "\x00"}, "bug_tracker"),
        ("POST", "/tasks", {"name": "n", "labels": [{"name": "c\x00r"}]}, "labels.0.name"),
        ("POST", "/server/logs", [{"name": "e", "time": NOW, "payload": {"k": "\x00"}}],
         "payload.k"),
    ],
)  # fmt: skip
def test_a_nul_byte_in_a_body_is_refused_naming_the_field(
    client, world, factory, method, path, body, named
):
    tasks = count(factory, Task)
    response = client.request(method, world.path(path), headers=world.headers, json=body)
    assert response.status_code == 400, response.text
    assert named in response.json(), response.json()
    assert (count(factory, Task), count(factory, ClientEvent)) == (tasks, 0)
    assert read(client, world, "/tasks/{task}")["bug_tracker"] == ""
