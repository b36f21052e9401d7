"""Schemathesis against ``labelyard serve`` with seeded data: every operation of the OpenAPI
document, and no answer may be a 5xx or differ from the response it documents."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.media import jpeg
from tests.support.server import Server

pytestmark = pytest.mark.e2e

# Fixed, so that a failure found once is found again. The bounds keep a run at about two
# minutes per database on a 2-core machine with both databases' suites running at once.
SEED = 20240601
MAX_EXAMPLES = 10
RUN_SECONDS = 420

OFFLINE = Path(__file__).parent / "support" / "offline"

LABELS = [
    {"name": "car", "attributes": [
        {"name": "color", "mutable": False, "input_type": "select", "default_value": "red",
         "values": ["red", "blue"]},
    ]},
    {"name": "person", "attributes": [
        {"name": "note", "mutable": True, "input_type": "text", "default_value": "",
         "values": [""]},
    ]},
]  # fmt: skip


@pytest.fixture
def server(tmp_path: Path, fresh_database_url: str) -> Iterator[Server]:
    path = [str(OFFLINE), *filter(None, [os.environ.get("PYTHONPATH")])]
    started = Server(
        tmp_path / "data",
        fresh_database_url,
        # Generated bodies name arbitrary hosts (remote files, export addresses, git
        # remotes): the server must reach none of them, and fail at once instead of waiting.
        env={"PYTHONPATH": os.pathsep.join(path), "GIT_ALLOW_PROTOCOL": "file"},
    )
    yield started
    started.stop()


def _wait(done: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"{what} did not finish"
        time.sleep(0.1)


def seed(server: Server) -> dict[str, Any]:
    """A project, a task with images and annotations, its COCO export, a dataset with a
    batch, a second user, and one more of each to delete; answers the admin's and the
    second user's tokens, and the ids."""
    password = re.search(r"password '([^']+)'", server.output())
    assert password, server.output()
    api = httpx.Client(base_url=f"{server.base}/api/v1", timeout=30)
    login = {"username": "root", "password": password.group(1)}
    key = api.post("/auth/login", json=login).json()["key"]
    api.headers["Authorization"] = f"Token {key}"

    def post(url: str, **kwargs: Any) -> Any:
        response = api.post(url, **kwargs)
        assert response.is_success, response.text
        return response.json()

    project = post("/projects", json={"name": "fuzzed project", "labels": LABELS})
    task = post("/tasks", json={"name": "fuzzed task", "project_id": project["id"]})
    files = [(f"client_files[{i}]", (f"{i}.jpg", jpeg(64, 48, shade=i))) for i in range(3)]
    post(f"/tasks/{task['id']}/data", data={"image_quality": "70"}, files=files)
    _wait(
        lambda: api.get(f"/tasks/{task['id']}/status").json()["state"] == "Finished",
        "task data",
    )

    car, person = (label["id"] for label in project["labels"])
    annotations = {
        "shapes": [
            {"type": "rectangle", "frame": 0, "label_id": car, "points": [1, 2, 30, 20],
             "attributes": []},
            {"type": "polygon", "frame": 1, "label_id": person, "points": [1, 1, 20, 1, 10, 15],
             "attributes": []},
        ],
        "tags": [{"frame": 2, "label_id": car, "attributes": []}],
        "tracks": [{"frame": 0, "label_id": person, "attributes": [], "shapes": [
            {"type": "rectangle", "frame": 0, "points": [5, 5, 25, 25], "attributes": []},
            {"type": "rectangle", "frame": 2, "points": [8, 8, 28, 28], "outside": True,
             "attributes": []},
        ]}],
    }  # fmt: skip
    saved = api.put(f"/tasks/{task['id']}/annotations", json=annotations)
    assert saved.status_code == 200, saved.text
    coco = {"format": "COCO 1.0"}
    url = f"/tasks/{task['id']}/annotations"
    _wait(lambda: api.get(url, params=coco).status_code == 201, "COCO export")

    dataset = post("/datasets", json={"name": "fuzzed dataset"})
    upload = post(
        f"/datasets/{dataset['id']}/batchs",
        data={"name": "first"},
        files=[("files", ("a.jpg", jpeg(32, 24)))],
    )
    progress = f"/datasets/process/{upload['upload_id']}"
    _wait(lambda: api.get(progress).json()["status"] == "finished", "batch upload")

    user = post(
        "/auth/register",
        headers={"Authorization": ""},
        json={"username": "fuzzer", "email": "fuzzer@localhost", "first_name": "",
              "last_name": "", "password1": "fuzzy-rabbit-42", "password2": "fuzzy-rabbit-42"},
    )  # fmt: skip
    (job,) = api.get(f"/tasks/{task['id']}/jobs").json()
    seeded = {
        "admin": key, "user": user["key"], "user_id": _user_id(api, "fuzzer"),
        "project_id": project["id"], "task_id": task["id"], "job_id": job["id"],
        "dataset_id": dataset["id"],
    }  # fmt: skip

    # What the DELETE operations remove instead.
    labels = [{"name": "doomed"}]
    seeded["doomed_project_id"] = post("/projects", json={"name": "doomed", "labels": labels})["id"]
    seeded["doomed_task_id"] = post("/tasks", json={"name": "doomed", "labels": labels})["id"]
    seeded["doomed_dataset_id"] = post("/datasets", json={"name": "doomed"})["id"]
    post(
        "/auth/register",
        headers={"Authorization": ""},
        json={"username": "doomed", "email": "doomed@localhost", "first_name": "",
              "last_name": "", "password1": "hidden-otter-93", "password2": "hidden-otter-93"},
    )  # fmt: skip
    seeded["doomed_user_id"] = _user_id(api, "doomed")
    seeded.update(_seed_work_face(server, key, task["id"]))
    return seeded


def _seed_work_face(server: Server, key: str, task_id: int) -> dict[str, Any]:
    """The work face's ids: the default space, the project's UUID, a batch, the work items
    of the task's frames (made from its dataset) and a seed 003 task id."""
    work = httpx.Client(
        base_url=f"{server.base}/api/platform/v1",
        timeout=30,
        headers={"Authorization": f"Token {key}"},
    )
    dataset_id = httpx.get(
        f"{server.base}/api/v1/tasks/{task_id}", headers=work.headers, timeout=30
    ).json()["dataset_id"]
    space = work.get("/spaces").json()["items"][0]["id"]
    project = work.get(f"/spaces/{space}/projects").json()["items"][0]["id"]
    batch = work.post(f"/projects/{project}/batches", json={"name": "fuzzed"})
    assert batch.status_code == 201, batch.text
    made = work.post(f"/datasets/{dataset_id}/file-tasks")
    assert made.status_code == 204, made.text
    tasks = work.get(f"/datasets/{dataset_id}/tasks").json()["tasks"]
    return {
        "space": space, "work_project": project, "batch": batch.json()["id"],
        "dataset": tasks[0]["dataset"], "work_item": tasks[0]["workItemID"],
        "stage_task": tasks[0]["id"],
    }  # fmt: skip


def _user_id(api: httpx.Client, username: str) -> int:
    return int(api.get("/users", params={"username": username}).json()["results"][0]["id"])


def config(seeded: dict[str, Any]) -> str:
    """schemathesis.toml: the two checks, the bounds, the admin's token."""
    return f"""
seed = {SEED}
# One: with more, Hypothesis' lambda descriptions call ast.parse from several threads, which
# Python 3.11 can fail with "SystemError: AST constructor recursion depth mismatch".
workers = 1
# Generous: a request only times out here when the machine is busy with other tests.
request-timeout = 30
headers = {{ Authorization = "Token {seeded["admin"]}" }}

[generation]
max-examples = {MAX_EXAMPLES}
database = "none"

[checks]
enabled = false
not_a_server_error.enabled = true
response_schema_conformance.enabled = true

# Path ids name the seeded objects, so that requests reach more than a 404 (invalid ids
# are still generated in negative mode). users/{{id}} names the second user: an admin
# that deactivates, demotes or deletes itself would leave the rest of the run 401s.
[parameters]
"path.project_id" = {seeded["project_id"]}
"path.task_id" = {seeded["task_id"]}
"path.job_id" = {seeded["job_id"]}
"path.dataset_id" = {seeded["dataset_id"]}
"path.user_id" = {seeded["user_id"]}

# Each phase runs its DELETEs last, and the next phase needs the seeded objects again: a
# DELETE removes a throwaway one.
[[operations]]
include-name = "DELETE /api/v1/projects/{{project_id}}"
parameters = {{ "path.project_id" = {seeded["doomed_project_id"]} }}

[[operations]]
include-name = "DELETE /api/v1/tasks/{{task_id}}"
parameters = {{ "path.task_id" = {seeded["doomed_task_id"]} }}

[[operations]]
include-name = "DELETE /api/v1/datasets/{{dataset_id}}"
parameters = {{ "path.dataset_id" = {seeded["doomed_dataset_id"]} }}

[[operations]]
include-name = "DELETE /api/v1/users/{{user_id}}"
parameters = {{ "path.user_id" = {seeded["doomed_user_id"]} }}

# The work face names its objects by UUID (a seed 003 task by its work item's and stage).
[[operations]]
include-path-regex = "^/api/platform/v1/"
[operations.parameters]
"path.project_id" = "{seeded["work_project"]}"
"path.space_id" = "{seeded["space"]}"
"path.client_id" = "{seeded["space"]}"
"path.batch_id" = "{seeded["batch"]}"
"path.dataset_id" = "{seeded["dataset"]}"
"path.work_item_id" = "{seeded["work_item"]}"
"path.task_id" = "{seeded["stage_task"]}"

# Logging out ends the token it is sent with: the admin's must last the whole run.
[[operations]]
include-name = "POST /api/v1/auth/logout"
headers = {{ Authorization = "Token {seeded["user"]}" }}
"""


def test_schemathesis_finds_no_server_error_or_schema_mismatch(server, tmp_path):
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(config(seed(server)))
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file", str(config_file),
        "run", f"{server.base}/api/v1/schema",
        "--url", server.base,
        "--no-color",
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_SECONDS, cwd=tmp_path, check=False
    )
    # Its report names each failing operation, the check and a curl that reproduces it; a
    # 5xx's traceback is in the server's log.
    print(f"{done.stdout}{done.stderr}\nschemathesis took {time.monotonic() - started:.0f} s")
    if done.returncode != 0:
        pytest.fail(f"schemathesis failed: its report is in the captured stdout; log: {server.log}")
