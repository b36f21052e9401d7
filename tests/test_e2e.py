"""Seed 002's walkthrough over real HTTP against ``labelyard serve`` in a subprocess."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Iterator

import httpx
import pytest

from tests.support.media import jpeg
from tests.support.server import Server

pytestmark = pytest.mark.e2e

LABELS = [
    {
        "name": "label1",
        "attributes": [
            {"name": "select", "mutable": False, "input_type": "select",
             "default_value": "select", "values": ["select"]},
        ],
    },
    {
        "name": "label2",
        "attributes": [
            {"name": "checkbox", "mutable": False, "input_type": "checkbox",
             "default_value": "false", "values": ["false"]},
        ],
    },
    {
        "name": "label3",
        "attributes": [
            {"name": "text", "mutable": True, "input_type": "text",
             "default_value": "text", "values": ["text"]},
        ],
    },
]  # fmt: skip


@pytest.fixture
def start(tmp_path, fresh_database_url) -> Iterator:
    servers: list[Server] = []

    def start_server() -> Server:
        servers.append(Server(tmp_path / "data", fresh_database_url))
        return servers[-1]

    yield start_server
    for server in servers:
        server.stop()


def test_seed_002_auth_and_task_flow(start):
    server = start()
    printed = re.search(r"username 'root', password '([^']+)'", server.output())
    assert printed, server.output()
    admin_password = printed.group(1)
    api = httpx.Client(base_url=f"{server.base}/api/v1", timeout=10)

    # Login with a form, as seed 000/002 show it.
    response = api.post("/auth/login", data={"username": "root", "password": admin_password})
    assert response.status_code == 200
    key = response.json()["key"]
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    admin = {"Authorization": f"Token {key}"}
    me = api.get("/users/self", headers=admin).json()
    assert me["username"] == "root" and me["groups"] == ["admin"] and me["is_superuser"]

    registered = api.post(
        "/auth/register",
        json={"username": "dabai", "first_name": "", "last_name": "", "email": "dabai@qq.com",
              "password1": "white-rabbit-42", "password2": "white-rabbit-42"},
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    worker = {"Authorization": f"Token {registered.json()['key']}"}

    created = api.post("/tasks", headers=admin, json={"name": "testCreate", "labels": LABELS,
                                                        "z_order": False})  # fmt: skip
    assert created.status_code == 201, created.text
    task = created.json()
    assert task["url"] == f"{server.base}/api/v1/tasks/{task['id']}"
    assert [label["name"] for label in task["labels"]] == ["label1", "label2", "label3"]
    assert task["status"] == "annotation" and task["segments"] == []

    listed = api.get("/tasks", headers=admin, params={"page_size": 10, "page": 1}).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == task["id"]

    users = api.get("/users", headers=admin, params={"page_size": "all"}).json()
    dabai = next(user for user in users["results"] if user["username"] == "dabai")
    labels = task["labels"] + [
        {"name": "label4", "attributes": [{"name": "number", "mutable": False,
         "input_type": "number", "default_value": "0", "values": ["0", "100", "1"]}]},
    ]  # fmt: skip
    patched = api.patch(
        f"/tasks/{task['id']}",
        headers=admin,
        json={"assignee": dabai["id"], "name": "test", "bug_tracker": "", "z_order": False,
              "labels": labels},
    )  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert patched.json()["assignee"]["username"] == "dabai"
    assert len(patched.json()["labels"]) == 4

    # The assignee now sees the task; reading it again by id, as the client does.
    again = api.get("/tasks", headers=worker, params={"page_size": 10, "id": task["id"]}).json()
    assert again["count"] == 1 and again["results"][0]["name"] == "test"

    logged = api.post(
        "/server/logs",
        headers=worker,
        json=[{"name": "Send user activity", "time": "2021-05-07T02:34:23.031000Z",
               "client_id": 767013, "payload": {"working_time": 33224}, "is_active": True}],
    )  # fmt: skip
    assert logged.status_code == 201

    assert api.post("/auth/logout", headers=worker).status_code == 200
    assert api.get("/users/self", headers=worker).status_code == 401
    assert api.get("/users/self").status_code == 401

    # A restart keeps everything and creates no second admin.
    server.stop()
    server = start()
    assert "A first admin was created" not in server.output()
    api = httpx.Client(base_url=f"{server.base}/api/v1", timeout=10)
    assert api.get(f"/tasks/{task['id']}", headers=admin).json()["name"] == "test"


def test_seed_002_create_a_task_with_data(start):
    """Create -> upload 3 images -> poll status -> list -> meta -> chunk."""
    server = start()
    password = re.search(r"password '([^']+)'", server.output()).group(1)
    api = httpx.Client(base_url=f"{server.base}/api/v1", timeout=30)
    key = api.post("/auth/login", json={"username": "root", "password": password}).json()["key"]
    headers = {"Authorization": f"Token {key}"}
    task = api.post("/tasks", headers=headers, json={"name": "testCreate", "labels": LABELS})
    task_id = task.json()["id"]

    images = [(f"00000000{n}.jpg", jpeg(96, 64, shade=n)) for n in (1296, 776, 285)]
    files = [(f"client_files[{i}]", (name, data)) for i, (name, data) in enumerate(images)]
    posted = api.post(
        f"/tasks/{task_id}/data", headers=headers, data={"image_quality": "70"}, files=files
    )
    assert posted.status_code == 202, posted.text
    assert sorted(posted.json()["client_files"]) == sorted(name for name, _ in images)
    deadline = time.monotonic() + 30
    while (state := api.get(f"/tasks/{task_id}/status", headers=headers).json())["state"] not in (
        "Finished",
        "Failed",
    ):
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state == {"state": "Finished", "message": ""}

    listed = api.get("/tasks", headers=headers, params={"page_size": 10, "page": 1}).json()
    listed_task = listed["results"][0]
    assert (listed_task["id"], listed_task["size"], listed_task["mode"]) == (
        task_id,
        3,
        "annotation",
    )
    assert listed_task["segments"][0]["jobs"][0]["status"] == "annotation"
    meta = api.get(f"/tasks/{task_id}/data/meta", headers=headers).json()
    assert [frame["name"] for frame in meta["frames"]] == sorted(name for name, _ in images)
    chunk = api.get(
        f"/tasks/{task_id}/data",
        headers=headers,
        params={"type": "chunk", "number": 0, "quality": "compressed"},
    )
    assert chunk.status_code == 200
    with zipfile.ZipFile(io.BytesIO(chunk.content)) as archive:
        assert len(archive.namelist()) == 3


def test_seed_002_coco_download_flow(start):
    """Annotate, then GET annotations?format=COCO 1.0: 202 while it is made, 201 when it
    is ready, 200 with the zip on action=download."""
    server = start()
    password = re.search(r"password '([^']+)'", server.output()).group(1)
    api = httpx.Client(base_url=f"{server.base}/api/v1", timeout=30)
    key = api.post("/auth/login", json={"username": "root", "password": password}).json()["key"]
    headers = {"Authorization": f"Token {key}"}
    task = api.post("/tasks", headers=headers, json={"name": "coco", "labels": LABELS}).json()
    files = [(f"client_files[{i}]", (f"{i}.jpg", jpeg(96, 64, shade=i))) for i in range(2)]
    api.post(f"/tasks/{task['id']}/data", headers=headers, data={"image_quality": "70"},
             files=files).raise_for_status()  # fmt: skip
    deadline = time.monotonic() + 30
    while api.get(f"/tasks/{task['id']}/status", headers=headers).json()["state"] != "Finished":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    label = task["labels"][0]["id"]
    box = {"type": "rectangle", "frame": 1, "label_id": label, "points": [1, 2, 31, 22]}
    saved = api.put(f"/tasks/{task['id']}/annotations", headers=headers, json={"shapes": [box]})
    assert saved.status_code == 200, saved.text

    url, params = f"/tasks/{task['id']}/annotations", {"format": "COCO 1.0"}
    assert api.get(url, headers=headers, params=params).status_code == 202
    deadline = time.monotonic() + 60
    while (status := api.get(url, headers=headers, params=params).status_code) == 202:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert status == 201
    download = api.get(url, headers=headers, params=params | {"action": "download"})
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith("attachment")
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".json")]
        coco = json.loads(archive.read(name))
    (annotation,) = coco["annotations"]
    assert annotation["bbox"] == [1, 2, 30, 20] and annotation["area"] == 600
