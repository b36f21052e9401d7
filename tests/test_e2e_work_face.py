"""Seeds 003 and 004 end to end over real HTTP against ``labelyard serve``: a project's work
from upload to review and export, and a dataset's file and label tasks with accept and
reject; the CVAT face reads the same jobs and annotations."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from typing import Any

import httpx
import pytest

from tests.support.media import jpeg
from tests.test_e2e import start as start  # the fixture that runs `labelyard serve`

pytestmark = pytest.mark.e2e


class Face:
    """The two faces of one server, as one user."""

    def __init__(self, base: str, key: str) -> None:
        headers = {"Authorization": f"Token {key}"}
        self.v1 = httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=30)
        self.work = httpx.Client(base_url=f"{base}/api/platform/v1", headers=headers, timeout=30)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, f"{response.request.url}: {response.text}"
        return response.json() if response.content else None


def people(server: Any) -> tuple[Face, Face, Face]:
    """The admin (who manages), a worker and a reviewer, each signed in."""
    password = re.search(r"password '([^']+)'", server.output()).group(1)
    public = httpx.Client(base_url=f"{server.base}/api/v1", timeout=30)
    key = public.post("/auth/login", json={"username": "root", "password": password}).json()["key"]
    faces = [Face(server.base, key)]
    for name in ("wendy", "rita"):
        registered = public.post(
            "/auth/register",
            json={"username": name, "email": f"{name}@example.com", "first_name": "",
                  "last_name": "", "password1": "long-enough-42", "password2": "long-enough-42"},
        )  # fmt: skip
        assert registered.status_code == 201, registered.text
        faces.append(Face(server.base, registered.json()["key"]))
    return faces[0], faces[1], faces[2]


def project(admin: Face) -> tuple[dict[str, Any], str, str]:
    made = admin.ok(
        admin.v1.post("/projects", json={"name": "roads", "labels": [{"name": "car"}]}), 201
    )
    space = next(s for s in admin.ok(admin.work.get("/spaces"))["items"] if s["default"])
    listed = admin.ok(admin.work.get(f"/spaces/{space['id']}/projects"))["items"]
    (found,) = [p for p in listed if p["legacyId"] == made["id"]]
    return made, space["id"], found["id"]


def wait_export(face: Face, url: str, params: dict[str, str]) -> bytes:
    deadline = time.monotonic() + 60
    while (status := face.v1.get(url, params=params).status_code) != 201:
        assert status == 202 and time.monotonic() < deadline, status
        time.sleep(0.2)
    return face.v1.get(url, params={**params, "action": "download"}).content


def test_seed_004_upload_work_review_and_export(start):
    server = start()
    admin, worker, reviewer = people(server)
    _, space, project_id = project(admin)
    base = f"/projects/{project_id}"

    batch = admin.ok(admin.work.post(f"{base}/batches", json={"name": "monday"}), 201)
    urls = admin.ok(admin.work.post(f"/spaces/{space}/upload-urls", params={"count": 2}))["items"]
    for number, entry in enumerate(urls):
        stored = httpx.put(
            entry["signedUrl"], content=jpeg(64, 48, shade=number * 90),
            headers={"Content-Type": "image/jpeg"}, timeout=30,
        )  # fmt: skip
        assert stored.status_code == 201, stored.text
    items = [
        admin.ok(admin.work.post(f"{base}/work-items", json={
            "assetUrl": entry["path"], "assetType": "image", "batchId": batch["id"],
            "dueInSeconds": 600 * (number + 1), "difficulty": 10, "metadata": {"n": number},
        }), 201)
        for number, entry in enumerate(urls)
    ]  # fmt: skip
    assert all(item["assetId"] for item in items)
    first = admin.ok(admin.work.get(f"{base}/work-items", params={"limit": 1}))
    second = admin.ok(
        admin.work.get(
            f"{base}/work-items", params={"limit": 1, "cursor": first["meta"]["cursor_next"]}
        )
    )
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [i["id"] for i in items]

    # The worker labels both, due soonest first.
    for expected in items:
        claimed = worker.ok(
            worker.work.post(f"{base}/work-items/next", params={"taskType": "labeling"})
        )
        assert claimed["id"] == expected["id"]
        box = {"labels": [{"bbox": [5, 6, 20, 10], "label": "car", "metadata": {"score": 1}}]}
        worker.ok(worker.work.put(f"{base}/work-items/{claimed['id']}/labels", json=box))
        signal = {"signal": "complete", "taskType": "labeling"}
        worker.ok(worker.work.post(f"{base}/work-items/{claimed['id']}/signals", json=signal))
    assert (
        worker.work.post(f"{base}/work-items/next", params={"taskType": "labeling"}).status_code
        == 204
    )
    assert (
        worker.work.post(f"{base}/work-items/next", params={"taskType": "review"}).status_code
        == 204
    )

    # The reviewer sends the first back, and the worker reworks it.
    got = reviewer.ok(reviewer.work.post(f"{base}/work-items/next", params={"taskType": "review"}))
    rejected = reviewer.ok(reviewer.work.post(f"{base}/work-items/{got['id']}/signals", json={
        "signal": "complete", "taskType": "review", "signalOutcome": "NOT_OK",
        "feedback": {"comments": ["tighter box"]},
    }))  # fmt: skip
    assert rejected["taskType"] == "labeling" and rejected["assignee"] == "wendy@example.com"
    rework = worker.ok(worker.work.post(f"{base}/work-items/next", params={"taskType": "labeling"}))
    assert rework["id"] == got["id"] and rework["feedback"]["comments"] == ["tighter box"]
    worker.ok(worker.work.post(f"{base}/work-items/{got['id']}/signals",
                               json={"signal": "complete", "taskType": "labeling"}))  # fmt: skip

    # Both accepted with one bulk signal.
    held = [
        reviewer.ok(reviewer.work.post(f"{base}/work-items/next", params={"taskType": "review"}))[
            "id"
        ]
        for _ in items
    ]
    bulk = reviewer.ok(reviewer.work.post(f"{base}/work-items/signals", json={
        "signal": "complete", "signalOutcome": "OK",
        "workItems": [{"workItemID": item_id} for item_id in held],
    }))  # fmt: skip
    assert [r["status"] for r in bulk["items"]] == ["COMPLETED", "COMPLETED"]
    counts = admin.ok(admin.work.get(f"{base}/batches"))["items"]
    assert {b["name"]: b["completedCount"] for b in counts}["monday"] == 2

    coco = admin.ok(admin.work.get(f"{base}/work-items/{items[0]['id']}/annotations",
                                   params={"format": "coco"}))  # fmt: skip
    assert coco["inference"]["annotations"][0]["bbox"] == [5, 6, 20, 10]
    assert coco["inference"]["images"][0]["width"] == 64

    # The CVAT face: the work task holds both frames, exported as COCO.
    task_id = items[0]["taskId"]
    archive = wait_export(admin, f"/tasks/{task_id}/dataset", {"format": "COCO 1.0"})
    with zipfile.ZipFile(io.BytesIO(archive)) as exported:
        name = next(n for n in exported.namelist() if n.endswith(".json"))
        document = json.loads(exported.read(name))
    assert len(document["annotations"]) == 2
    jobs = admin.ok(admin.v1.get("/jobs", params={"task_id": task_id}))["results"]
    assert [job["status"] for job in jobs] == ["completed"]

    links = admin.ok(admin.work.post(f"/spaces/{space}/download-urls",
                                     json={"paths": [urls[1]["path"]]}))["items"]  # fmt: skip
    assert httpx.get(links[0]["signedUrl"], timeout=30).content == jpeg(64, 48, shade=90)


def test_seed_003_dataset_tasks_accept_and_reject(start):
    server = start()
    admin, worker, reviewer = people(server)
    made, space, _ = project(admin)
    task = admin.ok(
        admin.v1.post("/tasks", json={"name": "streets", "project_id": made["id"]}), 201
    )
    files = [(f"client_files[{i}]", (f"{i}.jpg", jpeg(48, 32, shade=i * 70))) for i in range(3)]
    admin.ok(
        admin.v1.post(f"/tasks/{task['id']}/data", data={"image_quality": "70"}, files=files), 202
    )
    deadline = time.monotonic() + 60
    while admin.v1.get(f"/tasks/{task['id']}/status").json()["state"] != "Finished":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    dataset_id = admin.ok(admin.v1.get(f"/tasks/{task['id']}"))["dataset_id"]

    assert admin.work.post(f"/datasets/{dataset_id}/file-tasks").status_code == 204
    tasks = admin.ok(admin.work.get(f"/datasets/{dataset_id}/tasks"))["tasks"]
    assert len(tasks) == 8  # 3 frames and the dataset attribute task, in 2 stages
    dataset = tasks[0]["dataset"]
    assert admin.work.post(f"/datasets/{dataset}/file-tasks").status_code == 204
    assert len(admin.ok(admin.work.get(f"/datasets/{dataset}/tasks"))["tasks"]) == 8

    chosen = next(
        t for t in tasks if t["kind"] == "file" and t["frame"] == 1 and t["stage"] == "labeling"
    )
    admin.ok(admin.work.post(f"/tasks/{chosen['id']}", json={
        "assignee": "wendy@example.com", "due": "2021-06-01T00:00:00Z", "difficulty": 50,
    }))  # fmt: skip
    delayed = admin.ok(admin.work.get(f"/clients/{space}/delayed-tasks"))["delayed tasks"]
    assert [t["id"] for t in delayed] == [chosen["id"]]
    mine = worker.ok(
        worker.work.get(f"/clients/{space}/tasks", params={"email": "wendy@example.com"})
    )
    assert [t["id"] for t in mine["file_tasks"]] == [chosen["id"]] and mine["label_tasks"] == []

    item, project_id = chosen["workItemID"], chosen["projectID"]
    base = f"/projects/{project_id}/work-items/{item}"
    worker.ok(worker.work.post(f"{base}/signals", json={"signal": "start", "taskType": "labeling"}))
    worker.ok(worker.work.put(f"{base}/labels", json={"labels": [{"bbox": [1, 1, 10, 10]}]}))
    worker.ok(
        worker.work.post(f"{base}/signals", json={"signal": "complete", "taskType": "labeling"})
    )

    review_id = f"{item}:review"
    claimed = reviewer.ok(reviewer.work.post(f"/projects/{project_id}/work-items/next",
                                             params={"taskType": "review"}))  # fmt: skip
    assert claimed["id"] == item
    rejected = reviewer.ok(
        reviewer.work.post(f"/tasks/{review_id}/reject", json={"comments": ["cut"]})
    )
    assert rejected["status"] == "NEW"
    worker.ok(worker.work.post(f"{base}/signals", json={"signal": "start", "taskType": "labeling"}))
    worker.ok(
        worker.work.post(f"{base}/signals", json={"signal": "complete", "taskType": "labeling"})
    )
    reviewer.ok(
        reviewer.work.post(f"/projects/{project_id}/work-items/next", params={"taskType": "review"})
    )
    accepted = reviewer.ok(reviewer.work.post(f"/tasks/{review_id}/accept"))
    assert accepted["status"] == "COMPLETED"

    # The CVAT face holds the box on frame 1; its object gets a label task of its own.
    (job,) = admin.ok(admin.v1.get(f"/tasks/{task['id']}/jobs"))
    shapes = admin.ok(admin.v1.get(f"/jobs/{job['id']}/annotations"))["shapes"]
    assert [(s["frame"], s["points"]) for s in shapes] == [(1, [1, 1, 11, 11])]
    assert admin.work.post(f"/datasets/{dataset}/label-tasks").status_code == 204
    after = admin.ok(admin.work.get(f"/datasets/{dataset}/tasks"))["tasks"]
    labels = [t for t in after if t["kind"] == "label"]
    assert len(labels) == 2 and labels[0]["object"]["id"] == shapes[0]["id"]
    history = admin.ok(admin.work.get(f"{base}/signals"))["items"]
    assert [h["signal"] for h in history] == ["start", "complete"] * 4
