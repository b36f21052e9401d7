"""Exports and imports through the API: CVAT's 202 -> 201 -> 200 flow, reuse and expiry,
labels, projects and video tasks, and files that must be refused without touching the
annotations. What each format carries, and the independent readers of our files, are
the format contracts' (tests/formats/test_contracts.py)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.support.media import jpeg

API = "/api/v1"
SIZE = (64, 48)


def _wait(client, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> Any:
    deadline = time.monotonic() + 60
    while True:
        response = client.request(method, url, headers=headers, **kwargs)
        if response.status_code != 202:
            return response
        assert time.monotonic() < deadline, "still 202"
        time.sleep(0.05)


@pytest.fixture
def yard(client, factory):
    owner = factory.user("owner")
    headers = factory.headers(owner)
    labels = [
        {"name": "car", "attributes": [
            {"name": "model", "mutable": False, "input_type": "select", "default_value": "BMW",
             "values": ["BMW", "Audi"]},
            {"name": "parked", "mutable": True, "input_type": "checkbox",
             "default_value": "false", "values": ["false", "true"]},
        ]},
        {"name": "person"},
    ]  # fmt: skip
    task = client.post(f"{API}/tasks", headers=headers, json={"name": "t", "labels": labels})
    assert task.status_code == 201, task.text
    task = task.json()
    files = [(f"client_files[{i}]", (f"img_{i}.jpg", jpeg(*SIZE, shade=i * 40))) for i in range(3)]
    posted = client.post(
        f"{API}/tasks/{task['id']}/data", headers=headers, data={"image_quality": "70"},
        files=files,
    )  # fmt: skip
    assert posted.status_code == 202, posted.text
    deadline = time.monotonic() + 30
    while client.get(f"{API}/tasks/{task['id']}/status", headers=headers).json()["state"] not in (
        "Finished",
        "Failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ids = {label["name"]: label for label in task["labels"]}
    specs = {spec["name"]: spec["id"] for spec in ids["car"]["attributes"]}
    return {
        "headers": headers,
        "task": task["id"],
        "car": ids["car"]["id"],
        "person": ids["person"]["id"],
        "specs": specs,
    }


def annotations(yard) -> dict[str, Any]:
    car, person, specs = yard["car"], yard["person"], yard["specs"]
    model = [{"spec_id": specs["model"], "value": "Audi"}]
    return {
        "tags": [{"frame": 0, "label_id": person, "attributes": []}],
        "shapes": [
            {"type": "rectangle", "frame": 0, "label_id": car, "points": [2, 3, 20, 30],
             "attributes": [*model, {"spec_id": specs["parked"], "value": "true"}]},
            {"type": "rectangle", "frame": 1, "label_id": person, "points": [10, 10, 40, 44]},
            {"type": "polygon", "frame": 1, "label_id": car,
             "points": [5, 5, 30, 5, 30, 25, 5, 25], "attributes": model},
            {"type": "polyline", "frame": 2, "label_id": person, "points": [1, 1, 20, 20, 40, 5]},
            {"type": "points", "frame": 2, "label_id": person, "points": [7, 8, 9, 10]},
            {"type": "ellipse", "frame": 2, "label_id": car, "points": [30, 20, 40, 12]},
        ],
        "tracks": [],
    }  # fmt: skip


def put(client, yard, body) -> None:
    response = client.put(
        f"{API}/tasks/{yard['task']}/annotations", headers=yard["headers"], json=body
    )
    assert response.status_code == 200, response.text


def export(client, yard, format_name: str, what: str = "annotations") -> bytes:
    url = f"{API}/tasks/{yard['task']}/{what}"
    params = {"format": format_name}
    first = client.get(url, headers=yard["headers"], params=params)
    assert first.status_code == 202, first.text
    ready = _wait(client, "GET", url, yard["headers"], params=params)
    assert ready.status_code == 201, ready.text
    got = client.get(url, headers=yard["headers"], params=params | {"action": "download"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    assert "attachment" in got.headers["content-disposition"]
    return got.content


def import_file(client, yard, format_name: str, content: bytes, name: str = "a.zip") -> Any:
    url = f"{API}/tasks/{yard['task']}/annotations"
    params = {"format": format_name}
    files = {"annotation_file": (name, content)}
    first = client.put(url, headers=yard["headers"], params=params, files=files)
    assert first.status_code == 202, first.text
    return _wait(client, "PUT", url, yard["headers"], params=params)


def stored(client, yard) -> dict[str, Any]:
    return client.get(f"{API}/tasks/{yard['task']}/annotations", headers=yard["headers"]).json()


# --- the list ---------------------------------------------------------------------------


def test_the_formats_are_listed_with_what_works(client, yard):
    answer = client.get(f"{API}/server/annotation/formats", headers=yard["headers"]).json()
    exporters = {f["name"]: f for f in answer["exporters"]}
    importers = {f["name"]: f for f in answer["importers"]}
    for name in ["COCO 1.0", "CVAT for images 1.1", "CVAT for video 1.1", "Datumaro 1.0",
                 "PASCAL VOC 1.1", "YOLO 1.1", "ImageNet 1.0", "LabelMe 3.0",
                 "Segmentation mask 1.1", "MOT 1.1", "MOTS PNG 1.0", "OCR DETECTION 1.0",
                 "OCR RECOGNITION 1.0"]:  # fmt: skip
        assert exporters[name]["enabled"] and importers[name]["enabled"], name
    assert exporters["TFRecord 1.0"]["enabled"] is False


def test_unknown_and_disabled_formats_are_refused(client, yard):
    url = f"{API}/tasks/{yard['task']}/annotations"
    unknown = client.get(url, headers=yard["headers"], params={"format": "Nope 9.9"})
    assert unknown.status_code == 400 and "format" in unknown.json()
    disabled = client.get(url, headers=yard["headers"], params={"format": "TFRecord 1.0"})
    assert disabled.status_code == 405, disabled.text


# --- exports ------------------------------------------------------------------------------


def test_a_ready_export_is_reused_until_the_task_changes(client, yard):
    put(client, yard, annotations(yard))
    url = f"{API}/tasks/{yard['task']}/annotations"
    params = {"format": "YOLO 1.1"}
    export(client, yard, "YOLO 1.1")
    again = client.get(url, headers=yard["headers"], params=params)
    assert again.status_code == 201
    put(client, yard, {"shapes": annotations(yard)["shapes"][:1]})
    assert client.get(url, headers=yard["headers"], params=params).status_code == 202
    fresh = export_after_start(client, yard, "YOLO 1.1")
    with zipfile.ZipFile(io.BytesIO(fresh)) as bundle:
        lines = [
            line
            for name in bundle.namelist()
            if name.startswith("obj_train_data/") and name.endswith(".txt")
            for line in bundle.read(name).decode().splitlines()
            if line.strip()
        ]
    assert len(lines) == 1


def export_after_start(client, yard, format_name: str) -> bytes:
    url = f"{API}/tasks/{yard['task']}/annotations"
    params = {"format": format_name}
    assert _wait(client, "GET", url, yard["headers"], params=params).status_code == 201
    got = client.get(url, headers=yard["headers"], params=params | {"action": "download"})
    assert got.status_code == 200
    return got.content


def test_a_dataset_export_holds_the_images(client, yard):
    put(client, yard, annotations(yard))
    content = export(client, yard, "Datumaro 1.0", what="dataset")
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        images = [n for n in bundle.namelist() if n.endswith((".jpg", ".jpeg", ".png"))]
    assert len(images) == 3


# --- bad files ----------------------------------------------------------------------------


def test_a_file_that_does_not_parse_is_refused_and_changes_nothing(client, yard):
    put(client, yard, annotations(yard))
    before = stored(client, yard)
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as bundle:
        bundle.writestr("annotations/instances_default.json", "{not json")
    done = import_file(client, yard, "COCO 1.0", broken.getvalue())
    assert done.status_code == 400 and "COCO 1.0" in done.json()["detail"], done.text
    assert stored(client, yard) == before


def test_labels_the_task_lacks_are_named(client, yard):
    put(client, yard, annotations(yard))
    content = export(client, yard, "Datumaro 1.0")
    renamed = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(renamed, "w") as out:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith(".json"):
                data = json.dumps(json.loads(data)).replace('"person"', '"bicycle"').encode()
            out.writestr(name, data)
    before = stored(client, yard)
    done = import_file(client, yard, "Datumaro 1.0", renamed.getvalue())
    assert done.status_code == 400 and "bicycle" in done.json()["detail"], done.text
    assert stored(client, yard) == before


def _renamed(content: bytes, old: str, new: str) -> bytes:
    renamed = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(renamed, "w") as out:
        for name in source.namelist():
            data = source.read(name)
            if name.endswith(".json"):
                data = json.dumps(json.loads(data)).replace(f'"{old}"', f'"{new}"').encode()
            out.writestr(name, data)
    return renamed.getvalue()


def test_create_labels_adds_the_labels_the_file_brings(client, yard):
    put(client, yard, annotations(yard))
    content = _renamed(export(client, yard, "Datumaro 1.0"), "person", "bicycle")
    url = f"{API}/tasks/{yard['task']}/annotations"
    params = {"format": "Datumaro 1.0", "create_labels": "true"}
    files = {"annotation_file": ("a.zip", content)}
    assert client.put(url, headers=yard["headers"], params=params, files=files).status_code == 202
    done = _wait(client, "PUT", url, yard["headers"], params=params)
    assert done.status_code == 201, done.text
    task = client.get(f"{API}/tasks/{yard['task']}", headers=yard["headers"]).json()
    bicycle = next(label["id"] for label in task["labels"] if label["name"] == "bicycle")
    after = stored(client, yard)
    assert [t["label_id"] for t in after["tags"]] == [bicycle]
    assert sum(s["label_id"] == bicycle for s in after["shapes"]) == 3


def test_an_archive_with_parent_paths_is_refused(client, yard):
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as bundle:
        bundle.writestr("../../escape.json", "{}")
    done = import_file(client, yard, "COCO 1.0", evil.getvalue())
    assert done.status_code == 400, done.text


def test_expired_exports_are_removed_and_made_again(client, yard, app):
    from datetime import timedelta

    from labelyard.domain import Operation
    from labelyard.services.exchange import EXPORT

    put(client, yard, annotations(yard))
    export(client, yard, "YOLO 1.1")
    storage = app.state.storage
    with app.state.session_factory() as session:
        (operation,) = session.query(Operation).filter(Operation.kind == EXPORT).all()
        key = operation.result["key"]
        assert storage.exists(key)
        # Made longer ago than the time to live.
        operation.created = operation.created - timedelta(hours=25)
        session.commit()
    url = f"{API}/tasks/{yard['task']}/annotations"
    again = client.get(url, headers=yard["headers"], params={"format": "YOLO 1.1"})
    assert again.status_code == 202
    assert not storage.exists(key)


def test_a_project_exports_all_its_tasks(client, factory, tmp_path):
    owner = factory.user("lead")
    headers = factory.headers(owner)
    project = client.post(
        f"{API}/projects", headers=headers, json={"name": "p", "labels": [{"name": "car"}]}
    ).json()
    car = project["labels"][0]["id"]
    for number in range(2):
        task = client.post(
            f"{API}/tasks", headers=headers,
            json={"name": f"t{number}", "project_id": project["id"], "subset": f"s{number}"},
        ).json()  # fmt: skip
        files = [(f"client_files[{i}]", (f"same_{i}.jpg", jpeg(*SIZE))) for i in range(2)]
        client.post(f"{API}/tasks/{task['id']}/data", headers=headers,
                    data={"image_quality": "70"}, files=files).raise_for_status()  # fmt: skip
        deadline = time.monotonic() + 30
        while client.get(f"{API}/tasks/{task['id']}/status", headers=headers).json()[
            "state"
        ] not in ("Finished", "Failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        box = {"type": "rectangle", "frame": 1, "label_id": car, "points": [1, 1, 5, 5]}
        saved = client.put(f"{API}/tasks/{task['id']}/annotations", headers=headers,
                           json={"shapes": [box]})  # fmt: skip
        assert saved.status_code == 200, saved.text
    url = f"{API}/projects/{project['id']}/annotations"
    params = {"format": "Datumaro 1.0"}
    assert client.get(url, headers=headers, params=params).status_code == 202
    assert _wait(client, "GET", url, headers, params=params).status_code == 201
    got = client.get(url, headers=headers, params=params | {"action": "download"})
    assert got.status_code == 200
    with zipfile.ZipFile(io.BytesIO(got.content)) as bundle:
        names = sorted(n for n in bundle.namelist() if n.endswith(".json"))
        boxes = [
            item["annotations"]
            for name in names
            for item in json.loads(bundle.read(name)).get("items", [])
            if item["annotations"]
        ]
    assert names == ["annotations/s0.json", "annotations/s1.json"]
    assert len(boxes) == 2

    # CVAT for images: one file, each image with its task's subset.
    params = {"format": "CVAT for images 1.1"}
    assert client.get(url, headers=headers, params=params).status_code == 202
    assert _wait(client, "GET", url, headers, params=params).status_code == 201
    got = client.get(url, headers=headers, params=params | {"action": "download"})
    with zipfile.ZipFile(io.BytesIO(got.content)) as bundle:
        root = ElementTree.fromstring(bundle.read("annotations.xml"))
    images = [(i.get("id"), i.get("subset"), i.get("name"), [b.get("xtl") for b in i.iter("box")])
              for i in root.iter("image")]  # fmt: skip
    assert images == [
        ("0", "s0", "same_0.jpg", []), ("1", "s0", "same_1.jpg", ["1.00"]),
        ("2", "s1", "same_0.jpg", []), ("3", "s1", "same_1.jpg", ["1.00"]),
    ]  # fmt: skip


def test_a_video_task_exports_one_item_per_frame(client, factory, tmp_path):
    from tests.support.media import mp4

    owner = factory.user("editor")
    headers = factory.headers(owner)
    task = client.post(
        f"{API}/tasks", headers=headers, json={"name": "v", "labels": [{"name": "car"}]}
    ).json()
    video = mp4(tmp_path / "clip.mp4", frames=4, width=64, height=48, gop=2)
    files = [("client_files[0]", ("clip.mp4", video.read_bytes()))]
    data = {"image_quality": "70"}
    posted = client.post(f"{API}/tasks/{task['id']}/data", headers=headers, data=data, files=files)
    posted.raise_for_status()
    deadline = time.monotonic() + 30
    while client.get(f"{API}/tasks/{task['id']}/status", headers=headers).json()["state"] not in (
        "Finished",
        "Failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    car = task["labels"][0]["id"]
    boxes = [{"type": "rectangle", "frame": f, "label_id": car, "points": [f, 1, 9, 9]}
             for f in range(4)]  # fmt: skip
    put(client, {"task": task["id"], "headers": headers}, {"shapes": boxes})
    content = export(client, {"task": task["id"], "headers": headers}, "COCO 1.0")
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        name = next(n for n in bundle.namelist() if n.endswith(".json"))
        coco = json.loads(bundle.read(name))
    assert sorted(image["file_name"] for image in coco["images"]) == [
        f"frame_{n:06d}.jpg" for n in range(4)
    ]
    assert len(coco["annotations"]) == 4
    put(client, {"task": task["id"], "headers": headers}, {"shapes": []})
    done = import_file(client, {"task": task["id"], "headers": headers}, "COCO 1.0", content)
    assert done.status_code == 201, done.text
    back = stored(client, {"task": task["id"], "headers": headers})
    assert sorted(s["frame"] for s in back["shapes"]) == [0, 1, 2, 3]
