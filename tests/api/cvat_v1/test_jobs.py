"""/api/v1/jobs/{id}: read, assign, review, and move through statuses."""

from __future__ import annotations

import pytest

from labelyard.domain import Task

BASE = "http://testserver/api/v1"
JOBS = "/api/v1/jobs"


def user_json(user) -> dict:
    return {"url": f"{BASE}/users/{user.id}", "id": user.id, "username": user.username,
            "first_name": "", "last_name": ""}  # fmt: skip


def job_ids(factory, task) -> list[int]:
    with factory.uow() as uow:
        loaded = uow.session.get_one(Task, task.id)
        return [job.id for segment in loaded.segments for job in segment.jobs]


@pytest.fixture
def setup(factory):
    """An admin (username "admin"), a task of two jobs of three frames, and its first job."""
    admin = factory.admin()
    task = factory.task(admin, frames=6, segment_size=3)
    return admin, task, job_ids(factory, task)[0]


def patch(client, factory, user, job_id: int, body: dict, status: int = 200) -> dict:
    response = client.patch(f"{JOBS}/{job_id}", headers=factory.headers(user), json=body)
    assert response.status_code == status, response.text
    return response.json()


def test_get_answers_the_job(client, factory):
    alice, bob, carol = factory.user("alice"), factory.user("bob"), factory.user("carol")
    project = factory.project(alice)
    task = factory.task(alice, project=project, frames=6, segment_size=3,
                        job_assignees=[None, bob], job_reviewers=[None, carol])  # fmt: skip
    job_id = job_ids(factory, task)[1]
    response = client.get(f"{JOBS}/{job_id}", headers=factory.headers(alice))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "url": f"{BASE}/jobs/{job_id}", "id": job_id, "assignee": user_json(bob),
        "reviewer": user_json(carol), "status": "annotation", "start_frame": 3,
        "stop_frame": 5, "task_id": task.id, "project_id": project.id,
    }  # fmt: skip


def test_get_unknown_job_is_404(client, factory, setup):
    admin, _, job_id = setup
    assert client.get(f"{JOBS}/{job_id + 100}", headers=factory.headers(admin)).status_code == 404


def test_assignee_by_id_as_seed_002(client, factory, setup):
    admin, _, job_id = setup
    bob = factory.user("bob")
    answer = patch(client, factory, admin, job_id, {"status": "annotation", "assignee": bob.id})
    assert (answer["assignee"], answer["status"]) == (user_json(bob), "annotation")
    assert (answer["start_frame"], answer["stop_frame"]) == (0, 2)


def test_assignee_by_username_as_seed_001(client, factory, setup):
    admin, _, job_id = setup
    answer = patch(client, factory, admin, job_id, {"status": "annotation", "assignee": "admin"})
    assert answer["assignee"] == user_json(admin)


@pytest.mark.parametrize("field", ["assignee_id", "reviewer_id"])
def test_id_fields_set_the_user(client, factory, setup, field):
    admin, _, job_id = setup
    bob = factory.user("bob")
    answer = patch(client, factory, admin, job_id, {field: bob.id})
    person = field.removesuffix("_id")
    other = "reviewer" if person == "assignee" else "assignee"
    assert (answer[person], answer[other]) == (user_json(bob), None)


def test_reviewer_id_as_seed_001_newest(client, factory):
    admin = factory.admin()
    task = factory.task(admin, frames=1, job_assignees=[admin])
    job_id = job_ids(factory, task)[0]
    answer = patch(client, factory, admin, job_id, {"reviewer_id": admin.id})
    assert answer["assignee"] == answer["reviewer"] == user_json(admin)
    assert (answer["status"], answer["task_id"]) == ("annotation", task.id)


def test_assignment_is_stored(client, factory, setup):
    admin, task, job_id = setup
    bob = factory.user("bob")
    patch(client, factory, admin, job_id, {"assignee": "bob", "reviewer": bob.id})
    read = client.get(f"{JOBS}/{job_id}", headers=factory.headers(admin)).json()
    assert read["assignee"] == read["reviewer"] == user_json(bob)
    task_answer = client.get(f"/api/v1/tasks/{task.id}", headers=factory.headers(admin)).json()
    assert task_answer["segments"][0]["jobs"][0]["assignee"] == user_json(bob)
    assert task_answer["segments"][1]["jobs"][0]["assignee"] is None


def test_assignee_null_unassigns(client, factory):
    admin, bob = factory.admin(), factory.user("bob")
    task = factory.task(admin, frames=1, job_assignees=[bob], job_reviewers=[bob])
    job_id = job_ids(factory, task)[0]
    answer = patch(client, factory, admin, job_id, {"assignee": None})
    assert (answer["assignee"], answer["reviewer"]) == (None, user_json(bob))
    read = client.get(f"{JOBS}/{job_id}", headers=factory.headers(admin)).json()
    assert read["assignee"] is None


@pytest.mark.parametrize("status", ["validation", "completed", "annotation"])
def test_status_changes(client, factory, setup, status):
    admin, _, job_id = setup
    if status == "annotation":
        patch(client, factory, admin, job_id, {"status": "completed"})
    assert patch(client, factory, admin, job_id, {"status": status})["status"] == status
    read = client.get(f"{JOBS}/{job_id}", headers=factory.headers(admin)).json()
    assert read["status"] == status


def test_bad_status_is_refused(client, factory, setup):
    admin, _, job_id = setup
    answer = patch(client, factory, admin, job_id, {"status": "done"}, status=400)
    assert "status" in answer
    read = client.get(f"{JOBS}/{job_id}", headers=factory.headers(admin)).json()
    assert read["status"] == "annotation"


def test_put_sets_status_and_people(client, factory, setup):
    admin, _, job_id = setup
    bob = factory.user("bob")
    body = {"status": "validation", "assignee": bob.id, "reviewer": "admin"}
    response = client.put(f"{JOBS}/{job_id}", headers=factory.headers(admin), json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["status"], answer["assignee"]) == ("validation", user_json(bob))
    assert answer["reviewer"] == user_json(admin)


def test_put_needs_a_status(client, factory, setup):
    admin, _, job_id = setup
    response = client.put(f"{JOBS}/{job_id}", headers=factory.headers(admin), json={})
    assert response.status_code == 400
    assert "status" in response.json()


def pause(client, factory, admin, task) -> None:
    response = client.patch(f"/api/v1/tasks/{task.id}", headers=factory.headers(admin),
                            json={"state": "paused"})  # fmt: skip
    assert response.status_code == 200, response.text


def test_status_cannot_change_while_the_task_is_paused(client, factory, setup):
    admin, task, job_id = setup
    pause(client, factory, admin, task)
    patch(client, factory, admin, job_id, {"status": "completed"}, status=409)
    read = client.get(f"{JOBS}/{job_id}", headers=factory.headers(admin)).json()
    assert read["status"] == "annotation"


def test_paused_task_still_takes_assignments_with_unchanged_status(client, factory, setup):
    admin, task, job_id = setup
    bob = factory.user("bob")
    pause(client, factory, admin, task)
    answer = patch(client, factory, admin, job_id, {"status": "annotation", "assignee": bob.id})
    assert (answer["status"], answer["assignee"]) == ("annotation", user_json(bob))


def test_status_changes_again_once_the_task_resumes(client, factory, setup):
    admin, task, job_id = setup
    pause(client, factory, admin, task)
    response = client.patch(f"/api/v1/tasks/{task.id}", headers=factory.headers(admin),
                            json={"state": "in_progress"})  # fmt: skip
    assert response.status_code == 200, response.text
    assert patch(client, factory, admin, job_id, {"status": "completed"})["status"] == "completed"
