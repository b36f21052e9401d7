"""Helpers of the backup tests (tests/api/cvat_v1/test_backups.py): tasks with media and
annotations made through the API, a backup's round trip, and a task's snapshot, what a
restore must bring back without ids."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from collections.abc import Callable
from typing import Any

from tests.support.media import jpeg

API = "/api/v1"
LABELS = [
    {"name": "car", "color": "#ff0000", "attributes": [
        {"name": "model", "mutable": False, "input_type": "select", "default_value": "BMW",
         "values": ["BMW", "Audi"]},
        {"name": "parked", "mutable": True, "input_type": "checkbox", "default_value": "false",
         "values": ["false", "true"]},
        {"name": "speed", "mutable": True, "input_type": "number", "default_value": "0",
         "values": ["0", "100", "5"]},
    ]},
    {"name": "person", "attributes": [
        {"name": "note", "mutable": False, "input_type": "text", "default_value": "",
         "values": [""]},
    ]},
]  # fmt: skip


def wait(call: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        if response.status_code != 202:
            return response
        assert time.monotonic() < deadline, "still 202"
        time.sleep(0.05)


def make_task(client, headers, files, *, video: bool = False, **data: str) -> int:
    body = {"name": "street", "labels": LABELS, "segment_size": 2 if not video else 10,
            "bug_tracker": "https://bugs.example.com/1", "subset": "train"}  # fmt: skip
    task = client.post(f"{API}/tasks", headers=headers, json=body)
    assert task.status_code == 201, task.text
    task_id = task.json()["id"]
    add_data(client, headers, task_id, files, **data)
    return int(task_id)


def add_data(client, headers, task_id, files, **data: str) -> None:
    multipart = [(f"client_files[{i}]", (name, content)) for i, (name, content) in enumerate(files)]
    form = {"image_quality": "80", "chunk_size": "3", **data}
    posted = client.post(f"{API}/tasks/{task_id}/data", headers=headers, data=form, files=multipart)
    assert posted.status_code == 202, posted.text
    deadline = time.monotonic() + 60
    while (state := client.get(f"{API}/tasks/{task_id}/status", headers=headers).json())[
        "state"
    ] not in ("Finished", "Failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state["state"] == "Finished", state


def images(count: int = 5) -> list[tuple[str, bytes]]:
    """A zip of images in a folder, of sizes that differ."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for n in range(count):
            bundle.writestr(f"street/img_{n}.jpg", jpeg(64 + 8 * n, 48, shade=n * 30))
    return [("street.zip", out.getvalue())]


def ids_of(client, headers, task_id) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    task = client.get(f"{API}/tasks/{task_id}", headers=headers).json()
    labels = {label["name"]: label["id"] for label in task["labels"]}
    specs = {label["name"]: {a["name"]: a["id"] for a in label["attributes"]}
             for label in task["labels"]}  # fmt: skip
    return labels, specs


def annotate(client, headers, task_id) -> None:
    labels, specs = ids_of(client, headers, task_id)
    car, person = specs["car"], specs["person"]
    body = {
        "tags": [{"frame": 0, "label_id": labels["person"],
                  "attributes": [{"spec_id": person["note"], "value": "at the door"}]}],
        "shapes": [
            {"type": "rectangle", "frame": 0, "label_id": labels["car"], "points": [2, 3, 20, 30],
             "attributes": [{"spec_id": car["model"], "value": "Audi"},
                            {"spec_id": car["parked"], "value": "true"}], "z_order": 2},
            {"type": "polygon", "frame": 2, "label_id": labels["person"], "occluded": True,
             "points": [5, 5, 30, 5, 30, 25, 5, 25], "group": 3},
            {"type": "ellipse", "frame": 4, "label_id": labels["car"], "points": [30, 20, 40, 12],
             "rotation": 30, "source": "auto"},
        ],
        "tracks": [
            {"frame": 0, "label_id": labels["car"],
             "attributes": [{"spec_id": car["model"], "value": "BMW"}],
             "shapes": [
                 {"type": "rectangle", "frame": 0, "points": [1, 1, 10, 10],
                  "attributes": [{"spec_id": car["speed"], "value": "35"}]},
                 {"type": "rectangle", "frame": 3, "points": [5, 5, 15, 15], "outside": True,
                  "attributes": [{"spec_id": car["parked"], "value": "true"}]},
             ]},
        ],
    }  # fmt: skip
    saved = client.put(f"{API}/tasks/{task_id}/annotations", headers=headers, json=body)
    assert saved.status_code == 200, saved.text


def backup(client, headers, task_id) -> bytes:
    url = f"{API}/tasks/{task_id}"
    first = client.get(url, headers=headers, params={"action": "export"})
    assert first.status_code == 202, first.text
    ready = wait(lambda: client.get(url, headers=headers, params={"action": "export"}))
    assert ready.status_code == 201, ready.text
    assert ready.json()["rq_id"] == first.json()["rq_id"]
    got = client.get(url, headers=headers, params={"action": "download"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    assert "attachment" in got.headers["content-disposition"]
    return got.content


def start_restore(client, headers, content: bytes) -> Any:
    return client.post(
        f"{API}/tasks", headers=headers, params={"action": "import"},
        files={"task_file": ("backup.zip", content, "application/zip")},
    )  # fmt: skip


def restore_answer(client, headers, content: bytes) -> Any:
    """The restore's last answer: a refusal at once, or the poll's once it is not 202."""
    first = start_restore(client, headers, content)
    if first.status_code != 202:
        return first
    rq_id = first.json()["rq_id"]
    return wait(lambda: client.post(
        f"{API}/tasks", headers=headers, params={"action": "import"}, data={"rq_id": rq_id}
    ))  # fmt: skip


def restore(client, headers, content: bytes) -> int:
    answer = restore_answer(client, headers, content)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def normalized(annotations: dict[str, Any], labels: dict[int, str], specs: dict[int, str]) -> Any:
    """A task's or job's annotations without ids: labels and attributes by name."""

    def named(item: dict[str, Any]) -> dict[str, Any]:
        item = {k: v for k, v in item.items() if k != "id"}
        item["label_id"] = labels[item["label_id"]]
        item["attributes"] = sorted(
            (specs[a["spec_id"]], a["value"]) for a in item.get("attributes", [])
        )
        if "shapes" in item:
            item["shapes"] = [named_shape(shape) for shape in item["shapes"]]
        return item

    def named_shape(shape: dict[str, Any]) -> dict[str, Any]:
        shape = dict(shape)
        shape["attributes"] = sorted((specs[a["spec_id"]], a["value"]) for a in shape["attributes"])
        return shape

    return {
        kind: sorted((named(item) for item in annotations[kind]), key=json.dumps)
        for kind in ("tags", "shapes", "tracks")
    }


def snapshot(client, headers, task_id) -> dict[str, Any]:
    """Everything a restore must bring back, without ids."""
    task = client.get(f"{API}/tasks/{task_id}", headers=headers).json()
    labels = {label["id"]: label["name"] for label in task["labels"]}
    specs = {a["id"]: a["name"] for label in task["labels"] for a in label["attributes"]}
    meta = client.get(f"{API}/tasks/{task_id}/data/meta", headers=headers).json()
    jobs = client.get(f"{API}/tasks/{task_id}/jobs", headers=headers).json()
    frames = []
    for number in range(task["size"]):
        frame = client.get(
            f"{API}/tasks/{task_id}/data", headers=headers,
            params={"type": "frame", "number": number, "quality": "original"},
        )  # fmt: skip
        assert frame.status_code == 200, frame.text
        frames.append(hashlib.sha256(frame.content).hexdigest())
    per_job = [
        normalized(
            client.get(f"{API}/jobs/{job['id']}/annotations", headers=headers).json(),
            labels, specs,
        )
        for job in jobs
    ]  # fmt: skip
    kept = ("name", "mode", "size", "segment_size", "overlap", "z_order", "image_quality",
            "data_chunk_size", "data_compressed_chunk_type", "data_original_chunk_type",
            "bug_tracker", "subset", "status", "state", "dimension")  # fmt: skip
    return {
        "task": {key: task[key] for key in kept},
        "labels": [
            (
                label["name"],
                label["color"],
                [{k: v for k, v in a.items() if k != "id"} for a in label["attributes"]],
            )
            for label in task["labels"]
        ],
        "meta": meta,
        "jobs": [
            (
                job["start_frame"],
                job["stop_frame"],
                job["status"],
                job["assignee"] and job["assignee"]["username"],
                job["reviewer"] and job["reviewer"]["username"],
            )
            for job in jobs
        ],
        "frames": frames,
        "annotations": normalized(
            client.get(f"{API}/tasks/{task_id}/annotations", headers=headers).json(),
            labels,
            specs,
        ),
        "per_job": per_job,
    }


def set_jobs(client, headers, task_id, changes: list[dict[str, Any]]) -> None:
    jobs = client.get(f"{API}/tasks/{task_id}/jobs", headers=headers).json()
    for job, change in zip(jobs, changes, strict=False):
        answer = client.patch(f"{API}/jobs/{job['id']}", headers=headers, json=change)
        assert answer.status_code == 200, answer.text
