"""/api/v1/projects: create, read, list, change, labels, their tasks, status."""

from __future__ import annotations

import re

import pytest

from labelyard.domain import Task

BASE = "http://testserver/api/v1"
PROJECTS = "/api/v1/projects"
COLOR = re.compile(r"^#[0-9a-f]{6}$")
CAT = {"name": "cat", "attributes": [{"name": "color", "mutable": False,
       "input_type": "select", "default_value": "gray", "values": ["gray", "black"]}]}  # fmt: skip


def user_json(user) -> dict:
    return {"url": f"{BASE}/users/{user.id}", "id": user.id, "username": user.username,
            "first_name": "", "last_name": ""}  # fmt: skip


def without_ids(label: dict) -> dict:
    attributes = [{k: v for k, v in a.items() if k != "id"} for a in label["attributes"]]
    return {"name": label["name"], "attributes": attributes}


def create(client, headers, **body) -> dict:
    response = client.post(PROJECTS, headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def patch(client, headers, project_id: int, body: dict, status: int = 200) -> dict:
    response = client.patch(f"{PROJECTS}/{project_id}", headers=headers, json=body)
    assert response.status_code == status, response.text
    return response.json()


def job_ids(factory, task) -> list[int]:
    with factory.uow() as uow:
        loaded = uow.session.get_one(Task, task.id)
        return [job.id for segment in loaded.segments for job in segment.jobs]


def test_create_answers_the_project(client, factory):
    alice = factory.user("alice")
    project = create(client, factory.headers(alice), name="animals", labels=[CAT, {"name": "dog"}])
    assert project["url"] == f"{BASE}/projects/{project['id']}"
    assert project["owner"] == user_json(alice)
    fields = ("name", "assignee", "bug_tracker", "status", "tasks")
    assert {name: project[name] for name in fields} == {
        "name": "animals", "assignee": None, "bug_tracker": "", "status": "annotation",
        "tasks": [],
    }  # fmt: skip
    assert [without_ids(label) for label in project["labels"]] == [
        CAT, {"name": "dog", "attributes": []}
    ]  # fmt: skip
    colors = [label["color"] for label in project["labels"]]
    assert all(COLOR.match(c) for c in colors) and colors[0] != colors[1]
    read = client.get(f"{PROJECTS}/{project['id']}", headers=factory.headers(alice))
    assert read.status_code == 200
    assert read.json() == project


def test_list_pages_and_filters(client, factory):
    admin, alice = factory.admin(), factory.user("alice")
    ids = [factory.project(alice, f"project {i:02d}").id for i in range(11)]
    headers = factory.headers(admin)
    page = client.get(PROJECTS, headers=headers).json()
    assert (page["count"], page["next"], page["previous"]) == (11, f"{BASE}/projects?page=2", None)
    assert [p["id"] for p in page["results"]] == ids[::-1][:10]
    page = client.get(PROJECTS, headers=headers, params={"page": 2}).json()
    assert (page["previous"], [p["id"] for p in page["results"]]) == (f"{BASE}/projects", ids[:1])
    page = client.get(PROJECTS, headers=headers, params={"name": "T 03"}).json()
    assert [p["id"] for p in page["results"]] == [ids[3]]
    page = client.get(PROJECTS, headers=headers, params={"owner": "ali", "page_size": "all"})
    assert page.json()["count"] == 11


def test_put_replaces_and_needs_a_name(client, factory):
    alice, bob = factory.user("alice"), factory.user("bob")
    project = factory.project(alice, "old")
    headers = factory.headers(alice)
    response = client.put(f"{PROJECTS}/{project.id}", headers=headers, json={"bug_tracker": "x"})
    assert response.status_code == 400
    assert "name" in response.json()
    body = {"name": "new", "bug_tracker": "http://bugs/1", "assignee": bob.username}
    response = client.put(f"{PROJECTS}/{project.id}", headers=headers, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["name"], answer["bug_tracker"]) == ("new", "http://bugs/1")
    assert answer["assignee"] == user_json(bob)


def test_patch_changes_only_what_it_names(client, factory):
    alice, bob = factory.user("alice"), factory.user("bob")
    project = factory.project(alice, "kept", labels=("car",))
    headers = factory.headers(alice)
    answer = patch(client, headers, project.id, {"assignee_id": bob.id})
    assert (answer["name"], answer["assignee"]) == ("kept", user_json(bob))
    assert [label["name"] for label in answer["labels"]] == ["car"]
    answer = patch(client, headers, project.id, {"bug_tracker": "b", "assignee": None})
    assert (answer["bug_tracker"], answer["assignee"], answer["name"]) == ("b", None, "kept")


def test_delete_removes_the_project_and_its_tasks(client, factory):
    alice = factory.user("alice")
    project = factory.project(alice)
    task = factory.task(alice, project=project, frames=2)
    other = factory.task(alice, "elsewhere")
    job_id = job_ids(factory, task)[0]
    headers = factory.headers(alice)
    response = client.delete(f"{PROJECTS}/{project.id}", headers=headers)
    assert (response.status_code, response.content) == (204, b"")
    assert client.get(f"{PROJECTS}/{project.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/tasks/{task.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/tasks/{other.id}", headers=headers).status_code == 200
    assert client.delete(f"{PROJECTS}/{project.id}", headers=headers).status_code == 404


def test_patch_label_without_id_adds_it_and_keeps_the_others(client, factory):
    headers = factory.headers(factory.admin())
    project = create(client, headers, name="p", labels=[{"name": "dog"}])
    dog = project["labels"][0]
    project = patch(client, headers, project["id"], {"labels": [CAT]})
    assert project["labels"][0] == dog
    assert without_ids(project["labels"][1]) == CAT
    assert project["labels"][1]["color"] != dog["color"]


def test_patch_label_with_id_updates_it(client, factory):
    headers = factory.headers(factory.admin())
    project = create(client, headers, name="p", labels=[CAT, {"name": "dog"}])
    cat, dog = project["labels"]
    attribute = {**cat["attributes"][0], "values": ["gray", "black", "white"]}
    flag = {"name": "occluded", "mutable": True, "input_type": "checkbox",
            "default_value": "false", "values": ["false"]}  # fmt: skip
    change = {"id": cat["id"], "name": "kitty", "color": "#6080c0", "attributes": [attribute, flag]}
    project = patch(client, headers, project["id"], {"labels": [change]})
    kitty, unchanged = project["labels"]
    assert (kitty["id"], kitty["name"], kitty["color"]) == (cat["id"], "kitty", "#6080c0")
    assert kitty["attributes"][0] == attribute
    assert {k: v for k, v in kitty["attributes"][1].items() if k != "id"} == flag
    assert unchanged == dog


def test_patch_deleted_label_removes_only_it(client, factory):
    headers = factory.headers(factory.admin())
    project = create(client, headers, name="p", labels=[CAT, {"name": "dog"}])
    cat, dog = project["labels"]
    project = patch(client, headers, project["id"], {"labels": [{**cat, "deleted": True}]})
    assert project["labels"] == [dog]


def test_project_labels_are_what_its_tasks_answer(client, factory):
    alice = factory.user("alice")
    headers = factory.headers(alice)
    project = factory.project(alice, labels=("car",))
    task = factory.task(alice, project=project)
    answer = patch(client, headers, project.id, {"labels": [{"name": "bus"}]})
    read = client.get(f"/api/v1/tasks/{task.id}", headers=headers).json()
    assert read["labels"] == answer["labels"]
    assert [label["name"] for label in read["labels"]] == ["car", "bus"]


def test_project_tasks_are_paginated(client, factory):
    alice = factory.user("alice")
    project = factory.project(alice)
    ids = [factory.task(alice, f"t{i}", project=project).id for i in range(12)]
    factory.task(alice, "outside")
    url = f"{PROJECTS}/{project.id}/tasks"
    page = client.get(url, headers=factory.headers(alice)).json()
    assert (page["count"], len(page["results"]), page["previous"]) == (12, 10, None)
    assert page["next"] == f"{BASE}/projects/{project.id}/tasks?page=2"
    assert {t["project_id"] for t in page["results"]} == {project.id}
    page = client.get(url, headers=factory.headers(alice), params={"page": 2}).json()
    assert page["previous"] == f"{BASE}/projects/{project.id}/tasks"
    everything = client.get(url, headers=factory.headers(alice), params={"page_size": "all"})
    assert sorted(t["id"] for t in everything.json()["results"]) == ids
    answer = client.get(f"{PROJECTS}/{project.id}", headers=factory.headers(alice)).json()
    assert answer["tasks"] == ids


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "annotation"),
        (["completed", "completed"], "completed"),
        (["validation", "completed"], "validation"),
        (["annotation", "completed"], "annotation"),
    ],
)
def test_status_comes_from_the_jobs_of_its_tasks(client, factory, statuses, expected):
    admin = factory.admin()
    headers = factory.headers(admin)
    project = factory.project(admin)
    first = factory.task(admin, "first", project=project, frames=1)
    second = factory.task(admin, "second", project=project, frames=1)
    factory.task(admin, "outside", frames=1)  # its job stays in annotation
    tasks = [first, second][: len(statuses)]
    for task, status in zip(tasks, statuses, strict=True):
        job_id = job_ids(factory, task)[0]
        response = client.patch(f"/api/v1/jobs/{job_id}", headers=headers, json={"status": status})
        assert response.status_code == 200, response.text
    answer = client.get(f"{PROJECTS}/{project.id}", headers=headers).json()
    assert answer["status"] == expected
