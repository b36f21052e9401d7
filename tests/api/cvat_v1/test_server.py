"""``/api/v1/server``, ``/api/v1/restrictions``, health, the OpenAPI schema and the docs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from labelyard import __version__

SERVER = "/api/v1/server"
LOGS = f"{SERVER}/logs"

# The event list the CVAT client posts (seed 001), trimmed to three events.
SEED_EVENTS = [
    {
        "name": "Load job",
        "time": "2021-05-06T01:57:35.495Z",
        "client_id": "187377",
        "job_id": 112,
        "task_id": 131,
        "is_active": True,
        "payload": {"duration": 269, "frame count": 3, "track count": 0, "box count": 0},
    },
    {
        "name": "Fit image",
        "time": "2021-05-06T01:57:35.765Z",
        "client_id": "187377",
        "job_id": 112,
        "task_id": 131,
        "is_active": True,
        "payload": {},
    },
    {
        "name": "Draw object",
        "time": "2021-05-06T01:57:42.142Z",
        "client_id": "187377",
        "job_id": 113,
        "task_id": 132,
        "is_active": False,
        "payload": {"count": 1, "duration": 1531},
    },
]
EXCEPTION = {
    "system": "Linux x86_64",
    "client": "Chrome 90.0",
    "time": "2021-05-06T02:00:01.000Z",
    "client_id": "187377",
    "job_id": 112,
    "task_id": 131,
    "message": "TypeError: frame is undefined",
    "filename": "http://localhost/cvat-ui.min.js",
    "line": 2,
    "column": 1733,
    "stack": "TypeError: frame is undefined\n    at drawFrame (cvat-ui.min.js:2:1733)",
}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def logs(client, headers, **params) -> list[dict]:
    response = client.get(LOGS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def post_events(client, headers, events=SEED_EVENTS):
    response = client.post(LOGS, json=events, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def alice(factory):
    return factory.user("alice")


# --- about, plugins, formats ------------------------------------------------------


def test_about(client, factory, alice):
    response = client.get(f"{SERVER}/about", headers=factory.headers(alice))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"name", "description", "version"}
    assert body["name"] == "labelyard"
    assert body["version"] == __version__
    assert isinstance(body["description"], str) and body["description"]


def test_plugins_report_git_integration_only(client, factory, alice):
    response = client.get(f"{SERVER}/plugins", headers=factory.headers(alice))
    assert response.status_code == 200
    assert response.json() == {"GIT_INTEGRATION": True, "ANALYTICS": False, "MODELS": False}


def test_annotation_formats_have_cvat_fields(client, factory, alice):
    response = client.get(f"{SERVER}/annotation/formats", headers=factory.headers(alice))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"importers", "exporters"}
    for entry in body["importers"] + body["exporters"]:
        assert set(entry) == {"name", "ext", "version", "enabled", "dimension"}
        assert entry["name"].endswith(entry["version"])


# --- client logs ------------------------------------------------------------------


def test_post_logs_stores_the_seed_events(client, factory, alice):
    saved = post_events(client, factory.headers(alice))
    assert [event["name"] for event in saved] == ["Load job", "Fit image", "Draw object"]
    first = saved[0]
    assert first["kind"] == "log"
    assert first["user_id"] == alice.id
    assert parse_time(first["time"]) == datetime(2021, 5, 6, 1, 57, 35, 495000, tzinfo=UTC)
    assert (first["client_id"], first["job_id"], first["task_id"]) == ("187377", 112, 131)
    assert first["is_active"] is True
    assert first["payload"] == SEED_EVENTS[0]["payload"]


def test_get_logs_returns_what_was_posted(client, factory, alice):
    post_events(client, factory.headers(alice))
    response = client.get(LOGS, headers=factory.headers(alice))
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    rows = body["results"]
    assert [row["name"] for row in rows] == ["Load job", "Fit image", "Draw object"]
    assert [row["payload"] for row in rows] == [event["payload"] for event in SEED_EVENTS]
    assert [parse_time(row["time"]) for row in rows] == [
        parse_time(event["time"]) for event in SEED_EVENTS
    ]
    assert rows[2]["is_active"] is False


def test_user_sees_only_own_logs_and_admin_sees_all(client, factory, alice):
    bob = factory.user("bob")
    admin = factory.admin()
    post_events(client, factory.headers(alice))
    post_events(client, factory.headers(bob), [SEED_EVENTS[1]])
    alices = logs(client, factory.headers(alice))
    assert {row["user_id"] for row in alices} == {alice.id}
    assert len(alices) == 3
    bobs = logs(client, factory.headers(bob))
    assert [(row["user_id"], row["name"]) for row in bobs] == [(bob.id, "Fit image")]
    every = logs(client, factory.headers(admin), page_size="all")
    assert sorted(row["user_id"] for row in every) == [alice.id] * 3 + [bob.id]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"job_id": 112}, ["Load job", "Fit image"]),
        ({"job_id": 113}, ["Draw object"]),
        ({"task_id": 132}, ["Draw object"]),
        ({"name": "Fit image"}, ["Fit image"]),
        ({"task_id": 131, "name": "Load job"}, ["Load job"]),
        ({"job_id": 999}, []),
    ],
)
def test_log_filters(client, factory, alice, params, expected):
    post_events(client, factory.headers(alice))
    assert [row["name"] for row in logs(client, factory.headers(alice), **params)] == expected


def test_logs_need_credentials(client):
    assert client.post(LOGS, json=SEED_EVENTS).status_code == 401
    assert client.get(LOGS).status_code == 401


def test_logs_refuse_an_event_without_time(client, factory, alice):
    response = client.post(LOGS, json=[{"name": "Load job"}], headers=factory.headers(alice))
    assert response.status_code == 400
    assert logs(client, factory.headers(alice)) == []


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("payload", "storable"),
    [
        ({"n": 2**64 - 1, "m": -(2**63), "deep": _nested(40)}, True),
        ({"n": 2**64}, False),
        ({"n": -(2**63) - 1}, False),
        ({"deep": [{"n": 10**30}]}, False),
        ({"deep": _nested(80)}, False),
    ],
)
def test_logs_refuse_what_cannot_be_stored(client, factory, alice, payload, storable):
    event = {"name": "Send user activity", "time": "2021-05-07T02:34:23Z", "payload": payload}
    response = client.post(LOGS, headers=factory.headers(alice), json=[event])
    assert response.status_code == (201 if storable else 400), response.text
    if not storable:
        assert "payload" in response.json()["detail"]
    assert len(logs(client, factory.headers(alice))) == int(storable)


def test_exception_is_stored_and_listed(client, factory, alice):
    headers = factory.headers(alice)
    post_events(client, headers)
    response = client.post(f"{SERVER}/exception", json=EXCEPTION, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "exception"
    rows = logs(client, headers, kind="exception")
    assert len(rows) == 1
    row = rows[0]
    assert row["message"] == EXCEPTION["message"]
    assert row["user_id"] == alice.id
    assert (row["job_id"], row["task_id"]) == (112, 131)
    assert parse_time(row["time"]) == datetime(2021, 5, 6, 2, 0, 1, tzinfo=UTC)
    assert row["payload"]["stack"] == EXCEPTION["stack"]
    assert (row["payload"]["line"], row["payload"]["column"]) == (2, 1733)
    assert len(logs(client, headers, kind="log")) == 3


def test_exception_needs_credentials(client):
    assert client.post(f"{SERVER}/exception", json=EXCEPTION).status_code == 401


# --- without credentials ----------------------------------------------------------


def test_terms_of_use_is_html_without_credentials(client):
    response = client.get("/api/v1/restrictions/terms-of-use")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Terms of use" in response.text


def test_user_agreements_are_empty_without_credentials(client):
    response = client.get("/api/v1/restrictions/user-agreements")
    assert response.status_code == 200
    assert response.json() == []


def test_health_without_credentials(client, engine):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "version": __version__,
        "database": engine.dialect.name,
    }


def test_schema_is_openapi_listing_tasks(client):
    response = client.get("/api/v1/schema")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "labelyard"
    assert "/api/v1/tasks" in schema["paths"]
    assert "/api/v1/auth/login" in schema["paths"]


def test_docs_use_only_local_assets(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert re.findall(r"https?://", html) == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 2
    assert all(url.startswith("/api/v1/docs/static/") for url in assets), assets
    assert "/api/v1/schema" in html
    for url in assets:
        assert client.get(url).status_code == 200, url


def test_schema_describes_publish_as_an_empty_202(client):
    schema = client.get("/api/v1/schema").json()
    operation = schema["paths"]["/api/v1/tasks/{task_id}/publish"]
    (answer,) = [code for code in operation["get"]["responses"] if code.startswith("2")]
    assert answer == "202"
    assert "content" not in operation["get"]["responses"]["202"]


def test_schema_documents_bad_input_as_the_400_it_is(client):
    schema = client.get("/api/v1/schema").json()
    responses = [op["responses"] for ops in schema["paths"].values() for op in ops.values()]
    assert not any("422" in answers for answers in responses)
    tasks = schema["paths"]["/api/v1/tasks"]["post"]["responses"]
    assert tasks["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BadInput"
    }
    refused = client.post("/api/v1/auth/login", json={"password": ""}).json()
    assert isinstance(refused["detail"], str)
