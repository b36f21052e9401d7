"""Job annotations: seed 002's save flow, validation, versions, the task lifecycle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from labelyard.domain import Task
from labelyard.services import jobs

API = "/api/v1"


@pytest.fixture
def world(client, factory):
    """A task with labels car (select "model" BMW/Audi) and person, 10 frames in two
    jobs of 5, owned by an annotator."""
    owner = factory.user("owner")
    headers = factory.headers(owner)
    task = client.post(
        f"{API}/tasks",
        headers=headers,
        json={
            "name": "t",
            "labels": [
                {
                    "name": "car",
                    "attributes": [
                        {
                            "name": "model",
                            "mutable": False,
                            "input_type": "select",
                            "default_value": "BMW",
                            "values": ["BMW", "Audi"],
                        },
                        {
                            "name": "speed",
                            "mutable": True,
                            "input_type": "number",
                            "default_value": "0",
                            "values": ["0", "100", "5"],
                        },
                    ],
                },
                {"name": "person"},
            ],
        },
    ).json()
    # Jobs come from data; here they are cut directly, as data would cut them.
    with factory.uow() as uow:
        stored = uow.session.get_one(Task, task["id"])
        stored.segment_size, stored.size = 5, 10
        made = jobs.add_segments(uow, stored, jobs.segment_ranges(0, 10, 5, 0))
        uow.commit()
        job_ids = [job.id for job in made]
    labels = {label["name"]: label for label in task["labels"]}
    specs = {spec["name"]: spec["id"] for spec in labels["car"]["attributes"]}
    return {
        "headers": headers,
        "task": task["id"],
        "jobs": job_ids,
        "car": labels["car"]["id"],
        "person": labels["person"]["id"],
        "specs": specs,
    }


def rectangle(world, frame=0, points=(10, 20, 30, 40), **extra):
    return {
        "type": "rectangle",
        "occluded": False,
        "z_order": 0,
        "points": list(points),
        "frame": frame,
        "label_id": world["car"],
        "group": 0,
        "source": "manual",
        "attributes": [{"spec_id": str(world["specs"]["model"]), "value": "BMW"}],
        **extra,
    }


def url(world, job=0):
    return f"{API}/jobs/{world['jobs'][job]}/annotations"


def test_seed_002_create_update_delete_with_versions(client, world):
    headers = world["headers"]
    empty = client.get(url(world), headers=headers).json()
    assert empty == {"version": 0, "tags": [], "shapes": [], "tracks": []}

    created = client.patch(
        url(world),
        headers=headers,
        params={"action": "create"},
        json={"shapes": [rectangle(world, 3)], "tracks": [], "tags": [], "version": 0},
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["version"] == 1
    shape = body["shapes"][0]
    assert shape["id"] > 0 and shape["attributes"] == [
        {"spec_id": world["specs"]["model"], "value": "BMW"}
    ]

    moved = dict(shape, points=[47.1, 232.7, 991.9, 549.2], frame=4)
    updated = client.patch(
        url(world),
        headers=headers,
        params={"action": "update"},
        json={"shapes": [moved], "tracks": [], "tags": [], "version": 1},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2
    stored = client.get(url(world), headers=headers).json()
    assert stored["version"] == 2
    assert (stored["shapes"][0]["points"], stored["shapes"][0]["frame"]) == (
        [47.1, 232.7, 991.9, 549.2],
        4,
    )

    deleted = client.patch(
        url(world),
        headers=headers,
        params={"action": "delete"},
        json={"shapes": [moved], "tracks": [], "tags": [], "version": 2},
    )
    assert deleted.json()["version"] == 3
    assert client.get(url(world), headers=headers).json()["shapes"] == []


def test_put_replaces_everything_with_tags_shapes_and_tracks(client, world):
    headers = world["headers"]
    track = {
        "frame": 0,
        "label_id": world["car"],
        "group": 1,
        "source": "auto",
        "attributes": [{"spec_id": world["specs"]["model"], "value": "Audi"}],
        "shapes": [
            {
                "type": "rectangle",
                "frame": 0,
                "points": [1, 2, 3, 4],
                "keyframe": True,
                "attributes": [{"spec_id": world["specs"]["speed"], "value": "10"}],
            },
            {"type": "rectangle", "frame": 2, "points": [2, 3, 4, 5], "outside": True},
        ],
    }
    body = {
        "tags": [{"frame": 1, "label_id": world["person"]}],
        "shapes": [
            rectangle(world, 0),
            dict(rectangle(world, 1, points=[0, 0, 5, 0, 5, 5]), type="polygon"),
            dict(rectangle(world, 2, points=[1, 1, 9, 9]), type="ellipse", rotation=30),
        ],
        "tracks": [track],
    }
    put = client.put(url(world), headers=headers, json=body)
    assert put.status_code == 200, put.text
    stored = client.get(url(world), headers=headers).json()
    assert [len(stored[k]) for k in ("tags", "shapes", "tracks")] == [1, 3, 1]
    assert stored["shapes"][2]["rotation"] == 30
    assert [s["frame"] for s in stored["tracks"][0]["shapes"]] == [0, 2]
    assert stored["tracks"][0]["shapes"][1]["outside"] is True
    again = client.put(url(world), headers=headers, json={"shapes": [rectangle(world, 0)]})
    assert [len(again.json()[k]) for k in ("tags", "shapes", "tracks")] == [0, 1, 0]
    assert client.delete(url(world), headers=headers).status_code == 204
    assert client.get(url(world), headers=headers).json()["shapes"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"label_id": 999999}, "shapes.0.label_id"),
        ({"frame": 7}, "shapes.0.frame"),
        ({"points": [1, 2, 3]}, "shapes.0.points"),
        ({"type": "polygon", "points": [1, 2, 3, 4]}, "shapes.0.points"),
        ({"type": "cuboid"}, "shapes.0.points"),
        ({"attributes": [{"spec_id": 999999, "value": "x"}]}, "shapes.0.attributes.0.spec_id"),
        ({"rotation": 400}, "shapes.0.rotation"),
        ({"frame": -1}, "shapes.0.frame"),
    ],
    ids=[
        "foreign-label",
        "frame-outside-job",
        "three-coordinates",
        "polygon-too-short",
        "cuboid-count",
        "foreign-spec",
        "rotation",
        "negative-frame",
    ],
)
def test_bad_objects_are_named_and_nothing_is_written(client, world, change, field):
    headers = world["headers"]
    body = {"shapes": [rectangle(world, 0) | change]}
    response = client.patch(url(world), headers=headers, params={"action": "create"}, json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()
    assert client.get(url(world), headers=headers).json() == {
        "version": 0,
        "tags": [],
        "shapes": [],
        "tracks": [],
    }


@pytest.mark.parametrize(
    ("spec", "value", "ok"),
    [
        ("model", "Audi", True),
        ("model", "Opel", False),
        ("speed", "45", True),
        ("speed", "47", False),
        ("speed", "105", False),
        ("speed", "fast", False),
    ],
)
def test_attribute_values_fit_their_input_type(client, world, spec, value, ok):
    shape = rectangle(world, 0)
    shape["attributes"] = [{"spec_id": world["specs"][spec], "value": value}]
    response = client.patch(
        url(world), headers=world["headers"], params={"action": "create"}, json={"shapes": [shape]}
    )
    assert response.status_code == (200 if ok else 400), response.text


def test_nan_coordinates_are_refused(client, world):
    body = (
        '{"shapes": [{"type": "rectangle", "frame": 0, "label_id": %d, "points": [NaN, 1, 2, 3]}]}'
    )
    response = client.patch(
        url(world),
        headers={**world["headers"], "content-type": "application/json"},
        params={"action": "create"},
        content=body % world["car"],
    )
    assert response.status_code == 400


def test_unknown_ids_on_update_and_delete_are_named(client, world):
    headers = world["headers"]
    shape = rectangle(world, 0, id=424242)
    for action in ("update", "delete"):
        response = client.patch(
            url(world), headers=headers, params={"action": action}, json={"shapes": [shape]}
        )
        assert response.status_code == 400
        assert "shapes.0.id" in response.json()


def test_a_stale_version_gets_409_with_the_current_one(client, world):
    headers = world["headers"]
    client.patch(
        url(world),
        headers=headers,
        params={"action": "create"},
        json={"shapes": [rectangle(world, 0)]},
    )
    stale = client.patch(
        url(world),
        headers=headers,
        params={"action": "create"},
        json={"shapes": [rectangle(world, 1)], "version": 0},
    )
    assert stale.status_code == 409
    assert stale.json()["version"] == 1
    by_header = client.put(url(world), headers={**headers, "If-Match": '"0"'}, json={"shapes": []})
    assert (by_header.status_code, by_header.json()["version"]) == (409, 1)
    assert len(client.get(url(world), headers=headers).json()["shapes"]) == 1


def test_paused_tasks_and_completed_jobs_refuse_writes(client, world):
    headers = world["headers"]
    create = {"shapes": [rectangle(world, 0)]}
    client.patch(f"{API}/tasks/{world['task']}", headers=headers, json={"state": "paused"})
    paused = client.patch(url(world), headers=headers, params={"action": "create"}, json=create)
    assert paused.status_code == 409 and "paused" in paused.json()["detail"]
    client.patch(f"{API}/tasks/{world['task']}", headers=headers, json={"state": "in_progress"})
    client.patch(f"{API}/jobs/{world['jobs'][0]}", headers=headers, json={"status": "completed"})
    done = client.patch(url(world), headers=headers, params={"action": "create"}, json=create)
    assert done.status_code == 409 and "completed" in done.json()["detail"]


def test_concurrent_writers_either_land_or_get_409(app, world):
    """Eight clients write one job at once, each with the version it read: every write
    lands or is told its version is stale; none vanishes."""
    headers = world["headers"]

    def write(index: int) -> int:
        with TestClient(app) as client:
            version = client.get(url(world), headers=headers).json()["version"]
            response = client.patch(
                url(world),
                headers=headers,
                params={"action": "create"},
                json={"shapes": [rectangle(world, index % 5)], "version": version},
            )
            return response.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(write, range(8)))
    assert set(codes) <= {200, 409} and 200 in codes
    with TestClient(app) as client:
        stored = client.get(url(world), headers=headers).json()
    assert len(stored["shapes"]) == codes.count(200)
    assert stored["version"] == codes.count(200)


def test_a_retried_create_with_an_idempotency_key_writes_once(client, world):
    headers = {**world["headers"], "Idempotency-Key": "save-7f3a"}
    body = {"shapes": [rectangle(world, 0), rectangle(world, 1)], "version": 0}
    first = client.patch(url(world), headers=headers, params={"action": "create"}, json=body)
    retry = client.patch(url(world), headers=headers, params={"action": "create"}, json=body)
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    stored = client.get(url(world), headers=world["headers"]).json()
    assert (len(stored["shapes"]), stored["version"]) == (2, 1)
    other = client.patch(
        url(world),
        headers={**world["headers"], "Idempotency-Key": "save-8"},
        params={"action": "create"},
        json={"shapes": [rectangle(world, 2)]},
    )
    assert other.json()["version"] == 2
    misused = client.patch(
        url(world),
        headers=headers,
        params={"action": "create"},
        json={"shapes": [rectangle(world, 3)]},
    )
    assert misused.status_code == 409


def test_a_retried_put_with_an_idempotency_key_answers_the_first_result(client, world):
    headers = {**world["headers"], "Idempotency-Key": "put-1"}
    body = {"shapes": [rectangle(world, 0)]}
    first = client.put(url(world), headers=headers, json=body).json()
    client.patch(
        url(world),
        headers=world["headers"],
        params={"action": "create"},
        json={"shapes": [rectangle(world, 1)]},
    )
    again = client.put(url(world), headers=headers, json=body).json()
    assert again == first
    assert len(client.get(url(world), headers=world["headers"]).json()["shapes"]) == 2


@pytest.fixture
def overlapping(client, factory):
    """A 10-frame task cut into jobs 0-5 and 4-9 (overlap 2)."""
    owner = factory.user("owner")
    headers = factory.headers(owner)
    task = client.post(
        f"{API}/tasks", headers=headers, json={"name": "t", "labels": [{"name": "car"}]}
    ).json()
    with factory.uow() as uow:
        stored = uow.session.get_one(Task, task["id"])
        stored.size = 10
        jobs.add_segments(uow, stored, [(0, 5), (4, 9)])
        uow.commit()
    return {"headers": headers, "task": task["id"], "car": task["labels"][0]["id"]}


def box(label, frame):
    return {"type": "rectangle", "frame": frame, "label_id": label, "points": [1, 2, 3, 4]}


def test_task_annotations_are_split_by_jobs_and_merged_back(client, overlapping):
    headers, car = overlapping["headers"], overlapping["car"]
    task_url = f"{API}/tasks/{overlapping['task']}/annotations"
    track = {
        "frame": 2,
        "label_id": car,
        "shapes": [
            {"type": "rectangle", "frame": 2, "points": [1, 1, 2, 2]},
            {"type": "rectangle", "frame": 8, "points": [5, 5, 6, 6]},
        ],
    }
    put = client.put(
        task_url,
        headers=headers,
        json={"shapes": [box(car, 1), box(car, 4), box(car, 9)], "tracks": [track]},
    )
    assert put.status_code == 200, put.text
    job_ids = [
        j["id"]
        for j in client.get(f"{API}/tasks/{overlapping['task']}/jobs", headers=headers).json()
    ]
    first, second = (
        client.get(f"{API}/jobs/{j}/annotations", headers=headers).json() for j in job_ids
    )
    assert sorted(s["frame"] for s in first["shapes"]) == [1, 4]
    assert sorted(s["frame"] for s in second["shapes"]) == [4, 9]
    assert [s["frame"] for s in first["tracks"][0]["shapes"]] == [2]
    assert [s["frame"] for s in second["tracks"][0]["shapes"]] == [8]
    merged = client.get(task_url, headers=headers).json()
    assert sorted(s["frame"] for s in merged["shapes"]) == [1, 4, 9]
    assert merged["version"] == 2

    outside = client.patch(
        task_url, headers=headers, params={"action": "create"}, json={"shapes": [box(car, 12)]}
    )
    assert outside.status_code == 400 and "shapes.0.frame" in outside.json()
    one = first["shapes"][0]
    deleted = client.patch(
        task_url, headers=headers, params={"action": "delete"}, json={"shapes": [one]}
    )
    assert deleted.status_code == 200, deleted.text
    assert client.delete(task_url, headers=headers).status_code == 204
    assert client.get(task_url, headers=headers).json()["shapes"] == []


def test_deleting_a_label_deletes_its_annotations(client, world):
    headers = world["headers"]
    person = {"frame": 0, "label_id": world["person"]}
    client.put(
        url(world), headers=headers, json={"shapes": [rectangle(world, 0)], "tags": [person]}
    )
    task_url = f"{API}/tasks/{world['task']}"
    car = next(
        label
        for label in client.get(task_url, headers=headers).json()["labels"]
        if label["id"] == world["car"]
    )
    patched = client.patch(task_url, headers=headers, json={"labels": [car | {"deleted": True}]})
    assert patched.status_code == 200, patched.text
    stored = client.get(url(world), headers=headers).json()
    assert (stored["shapes"], [t["label_id"] for t in stored["tags"]]) == ([], [world["person"]])


def test_deleting_a_project_label_deletes_its_annotations_in_every_task(client, factory):
    owner = factory.user("owner")
    headers = factory.headers(owner)
    project = factory.project(owner, labels=("car", "person"))
    car, person = (label.id for label in project.labels)
    tasks = [factory.task(owner, f"t{n}", project=project, frames=4) for n in range(2)]
    lone = factory.task(owner, "elsewhere", labels=("car",), frames=4)
    job_urls = [f"{API}/jobs/{factory.jobs_of(task)[0].id}/annotations" for task in tasks]
    for job_url in job_urls:
        body = {"tags": [{"frame": 0, "label_id": car}, {"frame": 1, "label_id": person}]}
        assert client.put(job_url, headers=headers, json=body).status_code == 200
    lone_url = f"{API}/jobs/{factory.jobs_of(lone)[0].id}/annotations"
    lone_tag = {"frame": 0, "label_id": lone.own_labels[0].id}
    assert client.put(lone_url, headers=headers, json={"tags": [lone_tag]}).status_code == 200

    labels = client.get(f"{API}/projects/{project.id}", headers=headers).json()["labels"]
    deleted = [label | {"deleted": True} for label in labels if label["id"] == car]
    patched = client.patch(
        f"{API}/projects/{project.id}", headers=headers, json={"labels": deleted}
    )
    assert patched.status_code == 200, patched.text

    for job_url in job_urls:
        tags = client.get(job_url, headers=headers).json()["tags"]
        assert [tag["label_id"] for tag in tags] == [person]
    assert len(client.get(lone_url, headers=headers).json()["tags"]) == 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b'{"shapes": [', "application/json", id="malformed"),
        pytest.param(b"[]", "application/json", id="a list"),
        pytest.param(b'"x"', "application/json", id="a string"),
        pytest.param(b"null", "application/json", id="null"),
        pytest.param(b"", "application/json", id="empty"),
        pytest.param(b'{"shapes": []}', None, id="no content type"),
        pytest.param(b'{"shapes": []}', "text/plain", id="text/plain"),
        pytest.param(b'{"shapes": []}', "application/x-www-form-urlencoded", id="form"),
    ],
)
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_a_body_that_is_not_a_json_object_is_refused(client, world, content, content_type, method):
    headers = dict(world["headers"])
    if content_type:
        headers["Content-Type"] = content_type
    client.put(url(world), headers=world["headers"], json={"shapes": [rectangle(world)]})
    params = {"action": "create"} if method == "PATCH" else {}
    response = client.request(method, url(world), headers=headers, content=content, params=params)
    assert response.status_code == 400, response.text
    assert list(response.json()) == ["detail", "non_field_errors"]
    stored = client.get(url(world), headers=world["headers"]).json()
    assert (len(stored["shapes"]), stored["version"]) == (1, 1)


# --- no silent wipes -------------------------------------------------------------------


@pytest.mark.parametrize("level", ["job", "task"])
@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, ["non_field_errors"]),
        ({"version": 1}, ["non_field_errors"]),
        ({"shape": []}, ["shape"]),
        ({"shapes": [], "trakcs": [], "Tags": []}, ["Tags", "trakcs"]),
    ],
)
def test_a_put_that_names_no_kind_or_an_unknown_key_is_refused(client, world, level, body, named):
    headers = world["headers"]
    job_url = url(world)
    saved = client.put(job_url, headers=headers, json={"shapes": [rectangle(world)]})
    assert saved.status_code == 200, saved.text
    target = job_url if level == "job" else f"{API}/tasks/{world['task']}/annotations"
    refused = client.put(target, headers=headers, json=body)
    assert refused.status_code == 400, refused.text
    answer = refused.json()
    assert sorted(key for key in answer if key != "detail") == named
    if named != ["non_field_errors"]:
        assert all(key in answer["detail"] for key in named), answer["detail"]
    kept = client.get(job_url, headers=headers).json()
    assert len(kept["shapes"]) == 1 and kept["version"] == saved.json()["version"]


@pytest.mark.parametrize("level", ["job", "task"])
def test_an_explicit_empty_list_clears_and_a_patch_refuses_unknown_keys(client, world, level):
    headers = world["headers"]
    job_url = url(world)
    client.put(job_url, headers=headers, json={"shapes": [rectangle(world)]})
    target = job_url if level == "job" else f"{API}/tasks/{world['task']}/annotations"
    typo = client.patch(
        target, headers=headers, params={"action": "create"}, json={"shape": [rectangle(world)]}
    )
    assert typo.status_code == 400 and "shape" in typo.json(), typo.text
    cleared = client.put(target, headers=headers, json={"shapes": []})
    assert cleared.status_code == 200, cleared.text
    assert client.get(job_url, headers=headers).json()["shapes"] == []
