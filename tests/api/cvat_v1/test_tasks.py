"""/api/v1/tasks: create, labels, listing, people, status, state and copies."""

from __future__ import annotations

import re

import pytest

from labelyard.domain import Task

BASE = "http://testserver/api/v1"
TASKS = "/api/v1/tasks"
COLOR = re.compile(r"^#[0-9a-f]{6}$")

# Seed 002: a task with select, checkbox and text attributes.
SEED_002_LABELS = [
    {"name": "label1", "attributes": [{"name": "select", "mutable": False, "input_type":
        "select", "default_value": "select", "values": ["select"]}]},
    {"name": "label2", "attributes": [{"name": "checkbox", "mutable": False, "input_type":
        "checkbox", "default_value": "false", "values": ["false"]}]},
    {"name": "label3", "attributes": [{"name": "text", "mutable": True, "input_type":
        "text", "default_value": "text", "values": ["text"]}]},
]  # fmt: skip
CAT = {"name": "cat", "attributes": [{"name": "color", "mutable": False,
       "input_type": "select", "default_value": "gray", "values": ["gray", "black"]}]}  # fmt: skip


def user_json(user) -> dict:
    return {"url": f"{BASE}/users/{user.id}", "id": user.id, "username": user.username,
            "first_name": "", "last_name": ""}  # fmt: skip


def without_ids(label: dict) -> dict:
    attributes = [{k: v for k, v in a.items() if k != "id"} for a in label["attributes"]]
    return {"name": label["name"], "attributes": attributes}


def create(client, headers, **body) -> dict:
    response = client.post(TASKS, headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def patch(client, headers, task_id: int, body: dict, status: int = 200) -> dict:
    response = client.patch(f"{TASKS}/{task_id}", headers=headers, json=body)
    assert response.status_code == status, response.text
    return response.json()


def job_ids(factory, task) -> list[int]:
    # Read inside the session: Factory.jobs_of hands back expired, detached jobs.
    with factory.uow() as uow:
        loaded = uow.session.get_one(Task, task.id)
        return [job.id for segment in loaded.segments for job in segment.jobs]


def test_create_answers_the_cvat_task(client, factory):
    alice = factory.user("alice")
    task = create(client, factory.headers(alice), name="testCreate", labels=SEED_002_LABELS,
                  z_order=False)  # fmt: skip
    assert task["url"] == f"{BASE}/tasks/{task['id']}"
    assert task["owner"] == user_json(alice)
    fields = ("name", "assignee", "overlap", "segment_size", "status", "state", "mode",
              "project_id", "segments", "size", "bug_tracker", "z_order")  # fmt: skip
    assert {name: task[name] for name in fields} == {
        "name": "testCreate", "assignee": None, "overlap": None, "segment_size": 0,
        "status": "annotation", "state": "not_started", "mode": "", "project_id": None,
        "segments": [], "size": 0, "bug_tracker": "", "z_order": False,
    }  # fmt: skip
    assert [without_ids(label) for label in task["labels"]] == SEED_002_LABELS
    ids = [label["id"] for label in task["labels"]]
    attribute_ids = [a["id"] for label in task["labels"] for a in label["attributes"]]
    assert len(set(ids)) == len(set(attribute_ids)) == 3
    assert all(isinstance(i, int) for i in ids + attribute_ids)
    colors = [label["color"] for label in task["labels"]]
    assert all(COLOR.match(c) for c in colors) and len(set(colors)) == 3
    read = client.get(f"{TASKS}/{task['id']}", headers=factory.headers(alice)).json()
    assert read["labels"] == task["labels"]


def test_segment_size_as_a_string_is_a_number(client, factory):
    admin = factory.admin()
    task = create(client, factory.headers(admin), name="t", labels=[{"name": "hd"}],
                  segment_size="100")  # fmt: skip
    assert task["segment_size"] == 100


def test_new_labels_get_distinct_colors_avoiding_used_ones(client, factory):
    headers = factory.headers(factory.admin())
    names = [{"name": "a", "color": "#33ddff"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]
    task = create(client, headers, name="t", labels=names)
    colors = [label["color"] for label in task["labels"]]
    assert (colors[0], len(set(colors))) == ("#33ddff", 4)
    task = patch(client, headers, task["id"], {"labels": [{"name": "e"}]})
    assert task["labels"][4]["color"] not in colors
    assert COLOR.match(task["labels"][4]["color"])


def test_patch_label_without_id_adds_it_and_keeps_the_others(client, factory):
    headers = factory.headers(factory.admin())
    task = create(client, headers, name="t", labels=[{"name": "dog"}])
    dog = task["labels"][0]
    task = patch(client, headers, task["id"], {"labels": [CAT]})
    assert [label["name"] for label in task["labels"]] == ["dog", "cat"]
    assert task["labels"][0] == dog
    assert without_ids(task["labels"][1]) == CAT
    assert task["labels"][1]["id"] != dog["id"]


def test_patch_label_with_id_updates_it(client, factory):
    headers = factory.headers(factory.admin())
    task = create(client, headers, name="t", labels=[CAT, {"name": "dog"}])
    cat, dog = task["labels"]
    attribute = {**cat["attributes"][0], "values": ["gray", "black", "white"]}
    age = {"name": "age", "mutable": True, "input_type": "number", "default_value": "1",
           "values": ["0", "20", "1"]}  # fmt: skip
    change = {"id": cat["id"], "name": "kitty", "color": "#6080c0", "attributes": [attribute, age]}
    task = patch(client, headers, task["id"], {"labels": [change]})
    kitty, unchanged = task["labels"]
    assert (kitty["id"], kitty["name"], kitty["color"]) == (cat["id"], "kitty", "#6080c0")
    assert without_ids(kitty)["attributes"] == [without_ids(cat)["attributes"][0] | {
        "values": ["gray", "black", "white"]}, age]  # fmt: skip
    assert kitty["attributes"][0]["id"] == attribute["id"] != kitty["attributes"][1]["id"]
    assert unchanged == dog


def test_patch_deleted_label_removes_only_it(client, factory):
    headers = factory.headers(factory.admin())
    task = create(client, headers, name="t", labels=[CAT, {"name": "dog"}])
    cat, dog = task["labels"]
    task = patch(client, headers, task["id"], {"labels": [{**cat, "deleted": True}]})
    assert task["labels"] == [dog]


def test_patch_can_delete_a_label_and_add_one_with_its_name(client, factory):
    headers = factory.headers(factory.admin())
    task = create(client, headers, name="t", labels=[CAT, {"name": "dog"}])
    cat, dog = task["labels"]
    body = {"labels": [{**cat, "deleted": True}, {"name": "cat"}]}
    task = patch(client, headers, task["id"], body)
    assert [label["name"] for label in task["labels"]] == ["dog", "cat"]
    assert task["labels"][0] == dog
    assert task["labels"][1]["id"] != cat["id"]
    assert task["labels"][1]["attributes"] == []


def test_task_in_a_project_answers_the_project_labels(client, factory):
    alice = factory.user("alice")
    project = factory.project(alice, labels=("car", "person"))
    task = create(client, factory.headers(alice), name="t", project_id=project.id)
    assert task["project_id"] == project.id
    assert [label["name"] for label in task["labels"]] == ["car", "person"]
    answer = client.get(f"/api/v1/projects/{project.id}", headers=factory.headers(alice)).json()
    assert task["labels"] == answer["labels"]


def test_task_in_a_project_refuses_its_own_labels(client, factory):
    alice = factory.user("alice")
    headers = factory.headers(alice)
    project = factory.project(alice)
    body = {"name": "t", "project_id": project.id, "labels": [{"name": "dog"}]}
    assert client.post(TASKS, headers=headers, json=body).status_code == 400
    task = factory.task(alice, project=project)
    patch(client, headers, task.id, {"labels": [{"name": "dog"}]}, status=400)


def test_put_needs_a_name(client, factory):
    admin = factory.admin()
    url, headers = f"{TASKS}/{factory.task(admin, name='old').id}", factory.headers(admin)
    response = client.put(url, headers=headers, json={"bug_tracker": "x"})
    assert (response.status_code, "name" in response.json()) == (400, True)
    response = client.put(url, headers=headers, json={"name": "new"})
    assert (response.status_code, response.json()["name"]) == (200, "new")


def test_list_pages_by_ten_newest_first(client, factory):
    admin = factory.admin()
    ids = [factory.task(admin, f"task {i:02d}").id for i in range(12)]
    page = client.get(TASKS, headers=factory.headers(admin)).json()
    assert (page["count"], page["next"], page["previous"]) == (12, f"{BASE}/tasks?page=2", None)
    assert [t["id"] for t in page["results"]] == ids[::-1][:10]
    page = client.get(TASKS, headers=factory.headers(admin), params={"page": 2}).json()
    assert (page["next"], page["previous"]) == (None, f"{BASE}/tasks")
    assert [t["id"] for t in page["results"]] == ids[1::-1]
    page = client.get(TASKS, headers=factory.headers(admin), params={"page_size": "all"}).json()
    assert (page["count"], len(page["results"]), page["next"]) == (12, 12, None)


def test_list_links_keep_the_other_query_parameters(client, factory):
    admin = factory.admin()
    for i in range(12):
        factory.task(admin, f"task {i:02d}")
    query = {"page_size": 5, "page": 2}
    page = client.get(TASKS, headers=factory.headers(admin), params=query).json()
    assert page["previous"] == f"{BASE}/tasks?page_size=5"
    assert page["next"] == f"{BASE}/tasks?page_size=5&page=3"
    page = client.get(TASKS, headers=factory.headers(admin), params={**query, "page": 3}).json()
    assert (page["previous"], page["next"]) == (f"{BASE}/tasks?page_size=5&page=2", None)
    assert len(page["results"]) == 2


@pytest.fixture
def catalog(client, factory):
    """Three tasks an admin lists: filters pick among them."""
    admin, alice, bob = factory.admin(), factory.user("alice"), factory.user("bob")
    project = factory.project(alice)
    road = factory.task(alice, "Road cars", assignee=bob, frames=4)
    factory.task(alice, "City walk", project=project)
    survey = factory.task(bob, "Bob's survey", frames=2)
    headers = factory.headers(admin)
    job_id = job_ids(factory, survey)[0]
    done = client.patch(f"/api/v1/jobs/{job_id}", headers=headers, json={"status": "completed"})
    assert done.status_code == 200, done.text
    return headers, {"road": road.id, "project": project.id}


def listed(client, headers, **params) -> list[str]:
    response = client.get(TASKS, headers=headers, params={"page_size": "all", **params})
    assert response.status_code == 200, response.text
    return [task["name"] for task in response.json()["results"]]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"name": "ROAD"}, ["Road cars"]),
        ({"owner": "ali"}, ["City walk", "Road cars"]),
        ({"assignee": "bob"}, ["Road cars"]),
        ({"status": "completed"}, ["Bob's survey"]),
        ({"status": "annotation"}, ["City walk", "Road cars"]),
        ({"mode": "annotation"}, ["Bob's survey", "Road cars"]),
        ({"search": "bob"}, ["Bob's survey", "Road cars"]),
        ({"search": "walk"}, ["City walk"]),
    ],
)
def test_list_filters(client, catalog, params, names):
    headers, _ = catalog
    assert sorted(listed(client, headers, **params)) == names


def test_list_filters_by_id_and_project(client, catalog):
    headers, ids = catalog
    assert listed(client, headers, id=ids["road"]) == ["Road cars"]
    assert listed(client, headers, project_id=ids["project"]) == ["City walk"]


@pytest.mark.parametrize(
    ("ordering", "names"),
    [
        ("name", ["Bob's survey", "City walk", "Road cars"]),
        ("-name", ["Road cars", "City walk", "Bob's survey"]),
        ("id", ["Road cars", "City walk", "Bob's survey"]),
    ],
)
def test_list_ordering(client, catalog, ordering, names):
    headers, _ = catalog
    assert listed(client, headers, ordering=ordering) == names


def test_delete_then_the_task_is_gone(client, factory):
    admin = factory.admin()
    task = factory.task(admin, frames=2)
    job_id = job_ids(factory, task)[0]
    headers = factory.headers(admin)
    response = client.delete(f"{TASKS}/{task.id}", headers=headers)
    assert (response.status_code, response.content) == (204, b"")
    assert client.get(f"{TASKS}/{task.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 404
    assert client.delete(f"{TASKS}/{task.id}", headers=headers).status_code == 404


@pytest.mark.parametrize(
    "make_body",
    [
        lambda bob: {"assignee": bob.id},
        lambda bob: {"assignee": bob.username},
        lambda bob: {"assignee_id": bob.id},
        lambda bob: {"assignee": user_json(bob)},
    ],
    ids=["id", "username", "assignee_id", "nested"],
)
def test_assignee_forms(client, factory, make_body):
    alice, bob = factory.user("alice"), factory.user("bob")
    task = factory.task(alice)
    answer = patch(client, factory.headers(alice), task.id, make_body(bob))
    assert answer["assignee"] == user_json(bob)
    answer = patch(client, factory.headers(alice), task.id, {"assignee": None})
    assert answer["assignee"] is None


def set_job_statuses(client, factory, headers, task, statuses) -> dict:
    for job_id, status in zip(job_ids(factory, task), statuses, strict=True):
        response = client.patch(f"/api/v1/jobs/{job_id}", headers=headers, json={"status": status})
        assert response.status_code == 200, response.text
    return client.get(f"{TASKS}/{task.id}", headers=headers).json()


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["annotation", "annotation"], "annotation"),
        (["completed", "completed"], "completed"),
        (["validation", "completed"], "validation"),
        (["annotation", "validation"], "annotation"),
    ],
)
def test_status_comes_from_the_jobs(client, factory, statuses, expected):
    admin = factory.admin()
    task = factory.task(admin, frames=4, segment_size=2)
    answer = set_job_statuses(client, factory, factory.headers(admin), task, statuses)
    assert answer["status"] == expected


def test_state_cannot_start_without_data(client, factory):
    admin = factory.admin()
    task = factory.task(admin)
    patch(client, factory.headers(admin), task.id, {"state": "in_progress"}, status=409)
    patch(client, factory.headers(admin), task.id, {"state": "completed"}, status=409)
    answer = client.get(f"{TASKS}/{task.id}", headers=factory.headers(admin)).json()
    assert answer["state"] == "not_started"


def test_state_lifecycle_with_data(client, factory):
    admin = factory.admin()
    task = factory.task(admin, frames=3)
    for state in ("paused", "in_progress", "completed", "in_progress", "paused", "completed"):
        assert patch(client, factory.headers(admin), task.id, {"state": state})["state"] == state


def test_copy_takes_settings_labels_and_assignee(client, factory):
    alice, bob = factory.user("alice"), factory.user("bob")
    headers = factory.headers(alice)
    settings = {"segment_size": 5, "overlap": 2, "z_order": True, "image_quality": 50,
                "bug_tracker": "http://bugs/1"}  # fmt: skip
    labels = [{**CAT, "color": "#123456"}, {"name": "dog"}]
    source = create(client, headers, name="src", labels=labels, assignee=bob.id, **settings)
    copy = create(client, headers, source_task_id=source["id"], name="copy")
    assert copy["id"] != source["id"]
    assert {name: copy[name] for name in settings} == settings
    assert (copy["name"], copy["source_task_id"]) == ("copy", source["id"])
    assert (copy["owner"], copy["assignee"]) == (user_json(alice), user_json(bob))
    assert [(without_ids(label), label["color"]) for label in copy["labels"]] == [
        (without_ids(label), label["color"]) for label in source["labels"]
    ]
    old_ids = {label["id"] for label in source["labels"]}
    assert not old_ids & {label["id"] for label in copy["labels"]}
    assert (copy["segments"], copy["state"], copy["project_id"]) == ([], "not_started", None)


def test_copy_stays_in_the_source_project(client, factory):
    alice = factory.user("alice")
    project = factory.project(alice, labels=("car", "person"))
    source = factory.task(alice, project=project)
    copy = create(client, factory.headers(alice), source_task_id=source.id, name="copy")
    project_answer = client.get(f"/api/v1/projects/{project.id}", headers=factory.headers(alice))
    assert copy["project_id"] == project.id
    assert copy["labels"] == project_answer.json()["labels"]
    assert project_answer.json()["tasks"] == [source.id, copy["id"]]


def test_copy_team_comes_from_the_source_jobs(client, factory):
    alice = factory.user("alice")
    ann1, ann2, rev = factory.user("ann1"), factory.user("ann2"), factory.user("rev")
    source = factory.task(alice, frames=6, segment_size=2, job_assignees=[ann1, ann2, ann1],
                          job_reviewers=[rev, None, rev])  # fmt: skip
    copy = create(client, factory.headers(alice), source_task_id=source.id, name="copy")
    assert copy["team"] == {"annotators": [ann1.id, ann2.id], "reviewers": [rev.id]}
    assert (copy["segments"], copy["state"]) == ([], "not_started")
    assert (copy["segment_size"], copy["overlap"]) == (2, 0)


@pytest.mark.parametrize("field", ["labels", "project_id"])
def test_copy_refuses_what_it_takes_from_the_source(client, factory, field):
    alice = factory.user("alice")
    source = factory.task(alice)
    value = [{"name": "dog"}] if field == "labels" else factory.project(alice).id
    body = {"source_task_id": source.id, "name": "copy", field: value}
    response = client.post(TASKS, headers=factory.headers(alice), json=body)
    assert response.status_code == 400
    assert field in response.json()


def test_copy_of_an_invisible_task_is_refused(client, factory):
    alice, bob = factory.user("alice"), factory.user("bob")
    source = factory.task(alice)
    body = {"source_task_id": source.id, "name": "copy"}
    response = client.post(TASKS, headers=factory.headers(bob), json=body)
    assert response.status_code == 400
    assert "source_task_id" in response.json()
    assert client.get(TASKS, headers=factory.headers(alice)).json()["count"] == 1


def test_task_jobs_are_a_plain_list(client, factory):
    alice, bob = factory.user("alice"), factory.user("bob")
    task = factory.task(alice, frames=5, segment_size=2, job_assignees=[bob])
    response = client.get(f"{TASKS}/{task.id}/jobs", headers=factory.headers(alice))
    assert response.status_code == 200, response.text
    jobs = response.json()
    ids = job_ids(factory, task)
    assert [(j["id"], j["start_frame"], j["stop_frame"]) for j in jobs] == list(
        zip(ids, [0, 2, 4], [1, 3, 4], strict=True)
    )
    assert jobs[0] == {
        "url": f"{BASE}/jobs/{ids[0]}", "id": ids[0], "assignee": user_json(bob),
        "reviewer": None, "status": "annotation", "start_frame": 0, "stop_frame": 1,
        "task_id": task.id, "project_id": None,
    }  # fmt: skip
    assert [j["task_id"] for j in jobs] == [task.id] * 3
