"""Seed 003 over HTTP: a dataset's file and label tasks, accept / reject, a client's
tasks by email, delayed tasks; and the CVAT face seeing the same jobs and annotations."""

from __future__ import annotations

from typing import Any

from labelyard.domain import Batch, Space
from tests.api.platform_v1.conftest import API, Work

V1 = "/api/v1"


def _space(work: Work) -> str:
    with work.factory.uow() as uow:
        return uow.session.get_one(Space, 1).uuid


def _framed(work: Work) -> tuple[str, Any]:
    dataset, assets = work.factory.dataset(work.manager, 4, name="streets")
    task = work.factory.framed_task(work.manager, work.project, dataset, assets, segment_size=2)
    return dataset.uuid, task


def test_file_tasks_are_made_once_per_frame_and_stage(work: Work):
    dataset, _ = _framed(work)
    manager = work.as_(work.manager)
    assert (
        work.client.post(f"{API}/datasets/{dataset}/file-tasks", headers=manager).status_code == 204
    )
    assert (
        work.client.post(f"{API}/datasets/{dataset}/file-tasks", headers=manager).status_code == 204
    )
    tasks = work.client.get(f"{API}/datasets/{dataset}/tasks", headers=manager).json()["tasks"]
    # 4 frames and the dataset attribute task, each in labeling and review.
    assert len(tasks) == 10
    assert {t["stage"] for t in tasks} == {"labeling", "review"}
    assert sorted(t["kind"] for t in tasks).count("file") == 8
    assert all(t["status"] == "NEW" for t in tasks)


def test_accept_and_reject_move_items_and_their_jobs(work: Work):
    dataset, task = _framed(work)
    manager, worker, reviewer = work.as_(work.manager), work.workers[0], work.reviewer
    work.client.post(f"{API}/datasets/{dataset}/file-tasks", headers=manager)
    jobs = work.client.get(f"{V1}/jobs?task_id={task.id}", headers=manager).json()["results"]
    first_job = jobs[0]["id"]

    # The worker labels the two frames of the first job.
    done = []
    for _ in range(2):
        item = work.next(work.workers[0], "labeling").json()
        while item["frame"] not in (0, 1):  # the dataset attribute task comes too
            work.signal(worker, item["id"], "complete", "labeling")
            item = work.next(worker, "labeling").json()
        put = work.client.put(
            f"{work.base}/work-items/{item['id']}/labels",
            json={"labels": [{"bbox": [1, 2, 3, 4], "label": "car"}]},
            headers=work.as_(worker),
        )
        assert put.status_code == 200, put.text
        assert work.signal(worker, item["id"], "complete", "labeling").status_code == 200
        done.append(item["id"])

    # The CVAT face reads the same shapes.
    shapes = work.client.get(f"{V1}/jobs/{first_job}/annotations", headers=manager).json()["shapes"]
    assert sorted(s["frame"] for s in shapes) == [0, 1]

    # A worker sees only what they hold: the reviewer claims from the review queue first.
    hidden = work.client.post(f"{API}/tasks/{done[0]}:review/accept", headers=work.as_(reviewer))
    assert hidden.status_code == 404
    claimed = _claim_review(work, done[0])
    reject = work.client.post(
        f"{API}/tasks/{claimed}:review/reject",
        json={"comments": ["missed a car"]},
        headers=work.as_(reviewer),
    )
    assert reject.status_code == 200, reject.text
    assert reject.json()["stage"] == "review" and reject.json()["status"] == "NEW"
    job = work.client.get(f"{V1}/jobs/{first_job}", headers=manager).json()
    assert job["status"] == "annotation"

    mine = work.client.get(
        f"{API}/clients/{_space(work)}/tasks?email={worker.email}", headers=work.as_(worker)
    ).json()
    assert [t["workItemID"] for t in mine["file_tasks"]] == [done[0]]
    assert mine["file_tasks"][0]["feedback"]["comments"] == ["missed a car"]
    assert mine["file_tasks"][0]["stage"] == "labeling"

    # Rework, then both accepted: the job is completed.
    assert work.signal(worker, done[0], "start", "labeling").status_code == 200
    assert work.signal(worker, done[0], "complete", "labeling").status_code == 200
    for item_id in done:
        _claim_review(work, item_id)
        accept = work.client.post(
            f"{API}/tasks/{item_id}:review/accept", headers=work.as_(reviewer)
        )
        assert accept.status_code == 200, accept.text
        assert accept.json()["status"] == "COMPLETED"
    assert (
        work.client.get(f"{V1}/jobs/{first_job}", headers=manager).json()["status"] == "completed"
    )

    own = work.client.post(f"{API}/tasks/{done[0]}:labeling/accept", headers=work.as_(reviewer))
    assert own.status_code == 409


def test_delayed_tasks_and_updates(work: Work):
    dataset, _ = _framed(work)
    manager = work.as_(work.manager)
    work.client.post(f"{API}/datasets/{dataset}/file-tasks", headers=manager)
    tasks = work.client.get(f"{API}/datasets/{dataset}/tasks", headers=manager).json()["tasks"]
    late = next(t for t in tasks if t["stage"] == "labeling" and t["kind"] == "file")
    changed = work.client.post(
        f"{API}/tasks/{late['id']}",
        json={"due": "2020-01-01T00:00:00Z", "assignee": work.workers[1].email, "difficulty": 7},
        headers=manager,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["delayed"] is True
    assert changed.json()["assignee"] == work.workers[1].email
    delayed = work.client.get(f"{API}/clients/{_space(work)}/delayed-tasks", headers=manager).json()
    assert [t["id"] for t in delayed["delayed tasks"]] == [late["id"]]
    assert delayed["delayed tasks"][0]["space"]["id"] == _space(work)
    # A worker may not change tasks.
    refused = work.client.post(
        f"{API}/tasks/{late['id']}", json={"difficulty": 1}, headers=work.as_(work.workers[1])
    )
    assert refused.status_code == 403


def _claim_review(work: Work, wanted: str) -> str:
    """The reviewer takes review items from the queue until it holds ``wanted`` (the
    others go back)."""
    held = []
    while True:
        got = work.next(work.reviewer, "review")
        assert got.status_code == 200, got.text
        if got.json()["id"] == wanted:
            break
        held.append(got.json()["id"])
    for other in held:
        work.signal(work.reviewer, other, "release", "review")
    return wanted


def test_a_sequence_dataset_has_a_file_task_per_video_labelled_with_frames(work: Work):
    from labelyard.domain import Asset, Dataset, Task, TaskFrame, TaskState
    from labelyard.services import jobs

    with work.factory.uow() as uow:
        dataset = Dataset(name="drive", owner_id=work.manager.id, status="ready", scene="video")
        batch = Batch(name="b")
        dataset.batches.append(batch)
        uow.session.add(dataset)
        uow.flush()
        video = Asset(
            dataset_id=dataset.id, batch_id=batch.id, name="drive.mp4", kind="video",
            storage_key=f"{dataset.storage_prefix}/drive.mp4", size_bytes=1, width=320,
            height=240, frame_count=5,
        )  # fmt: skip
        uow.session.add(video)
        uow.flush()
        task = Task(
            name="drive", owner_id=work.manager.id, project_id=work.project.id,
            dataset_id=dataset.id, size=5, mode="interpolation", chunk_size=5,
            state=TaskState.IN_PROGRESS,
        )  # fmt: skip
        uow.session.add(task)
        uow.flush()
        uow.session.add_all(
            TaskFrame(
                task_id=task.id,
                frame=n,
                asset_id=video.id,
                asset_frame=n,
                name=f"drive.mp4#{n}",
                width=320,
                height=240,
            )
            for n in range(5)
        )
        jobs.add_segments(uow, task, [(0, 4)])
        uow.commit()
        dataset_uuid, task_id = dataset.uuid, task.id

    manager = work.as_(work.manager)
    work.client.post(f"{API}/datasets/{dataset_uuid}/file-tasks", headers=manager)
    tasks = work.client.get(f"{API}/datasets/{dataset_uuid}/tasks", headers=manager).json()["tasks"]
    files = [t for t in tasks if t["kind"] == "file" and t["stage"] == "labeling"]
    assert len(files) == 1  # the whole video is one file task
    item = files[0]["workItemID"]
    worker = work.workers[0]
    while (claimed := work.next(worker, "labeling").json())["id"] != item:
        work.signal(worker, claimed["id"], "complete", "labeling")
    track = {"frames": [{"frame": 0, "bbox": [1, 1, 10, 10]}, {"frame": 4, "bbox": [5, 5, 10, 10]}],
             "label": "car"}  # fmt: skip
    put = work.client.put(
        f"{work.base}/work-items/{item}/labels", json={"labels": [track]}, headers=work.as_(worker)
    )
    assert put.status_code == 200, put.text
    (label,) = put.json()["labels"]
    assert [f["frame"] for f in label["frames"]] == [0, 4]
    beyond = {"frames": [{"frame": 9, "bbox": [1, 1, 2, 2]}], "label": "car"}
    refused = work.client.put(
        f"{work.base}/work-items/{item}/labels", json={"labels": [beyond]}, headers=work.as_(worker)
    )
    assert refused.status_code == 400, refused.text
    (job,) = work.client.get(f"{V1}/tasks/{task_id}/jobs", headers=manager).json()
    tracks = work.client.get(f"{V1}/jobs/{job['id']}/annotations", headers=manager).json()["tracks"]
    assert [s["frame"] for s in tracks[0]["shapes"]] == [0, 4]
