"""Work items over HTTP: create, claim, label, review, rework, complete."""

from __future__ import annotations

from labelyard.services.workflow import placement
from tests.api.platform_v1.conftest import Work


def test_a_work_item_goes_from_labelling_through_review_to_completed(work: Work):
    worker, reviewer = work.workers[0], work.reviewer
    item = work.create(work.assets[0], dueInSeconds=3600, difficulty=40, metadata={"k": 1})
    assert item["status"] == "NEW" and item["taskType"] == "labeling"

    claimed = work.next(worker, "labeling")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["id"] == item["id"]
    assert claimed.json()["status"] == "IN_PROGRESS"

    labels = work.client.put(
        f"{work.base}/work-items/{item['id']}/labels",
        json={"labels": [{"bbox": [10, 20, 30, 40], "label": "car", "metadata": {"c": 0.9}}]},
        headers=work.as_(worker),
    )
    assert labels.status_code == 200, labels.text
    assert labels.json()["labels"][0]["bbox"] == [10, 20, 30, 40]

    done = work.signal(worker, item["id"], "complete", "labeling")
    assert done.status_code == 200, done.text
    assert done.json()["taskType"] == "review" and done.json()["status"] == "NEW"

    # The labeller does not get their own review.
    assert work.next(worker, "review").status_code == 204
    review = work.next(reviewer, "review")
    assert review.status_code == 200
    rejected = work.signal(
        reviewer, item["id"], "complete", "review", signalOutcome="NOT_OK",
        feedback={"comments": ["box too loose"]},
    )  # fmt: skip
    assert rejected.status_code == 200, rejected.text
    body = rejected.json()
    assert body["taskType"] == "labeling" and body["status"] == "NEW"
    assert body["feedback"]["comments"] == ["box too loose"]

    # Rework goes back to the labeller.
    rework = work.next(worker, "labeling")
    assert rework.json()["id"] == item["id"]
    assert work.signal(worker, item["id"], "complete", "labeling").status_code == 200
    assert work.next(reviewer, "review").status_code == 200
    accepted = work.signal(reviewer, item["id"], "complete", "review", signalOutcome="OK")
    assert accepted.json()["status"] == "COMPLETED"

    coco = work.client.get(
        f"{work.base}/work-items/{item['id']}/annotations?format=coco",
        headers=work.as_(work.manager),
    )
    assert coco.status_code == 200, coco.text
    assert coco.json()["inference"]["annotations"][0]["bbox"] == [10, 20, 30, 40]

    history = work.client.get(
        f"{work.base}/work-items/{item['id']}/signals", headers=work.as_(work.manager)
    ).json()["items"]
    assert [h["signal"] for h in history] == [
        "start", "complete", "start", "complete", "start", "complete", "start", "complete",
    ]  # fmt: skip


def test_items_fill_the_work_task_a_job_of_frames_at_a_time(work: Work, monkeypatch):
    """Items on assets in no task become frames of the project's work task, a job per
    WORK_SEGMENT_SIZE frames; a frame added to a completed job reopens it."""
    monkeypatch.setattr(placement, "WORK_SEGMENT_SIZE", 2)
    manager = work.as_(work.manager)
    made = [work.create(asset) for asset in work.assets[:3]]
    task_id = made[0]["taskId"]
    assert [item["taskId"] for item in made] == [task_id] * 3
    assert [item["frame"] for item in made] == [0, 1, 2]
    jobs = work.client.get(f"/api/v1/tasks/{task_id}/jobs", headers=manager).json()
    assert [(job["start_frame"], job["stop_frame"]) for job in jobs] == [(0, 1), (2, 2)]

    # Every item labelled and reviewed: both jobs are completed...
    for user, stage, fields in ((work.workers[0], "labeling", {}),
                                (work.reviewer, "review", {"signalOutcome": "OK"})):  # fmt: skip
        for _ in made:
            claimed = work.next(user, stage)
            assert claimed.status_code == 200, claimed.text
            done = work.signal(user, claimed.json()["id"], "complete", stage, **fields)
            assert done.status_code == 200, done.text
    job_url = f"/api/v1/jobs/{jobs[1]['id']}"
    assert work.client.get(job_url, headers=manager).json()["status"] == "completed"
    # ...until another item's frame joins it.
    assert work.create(work.assets[3])["frame"] == 3
    assert work.client.get(job_url, headers=manager).json()["status"] == "annotation"
    jobs = work.client.get(f"/api/v1/tasks/{task_id}/jobs", headers=manager).json()
    assert [(job["start_frame"], job["stop_frame"]) for job in jobs] == [(0, 1), (2, 3)]
    assert work.create(work.assets[4])["frame"] == 4
    jobs = work.client.get(f"/api/v1/tasks/{task_id}/jobs", headers=manager).json()
    assert [(job["start_frame"], job["stop_frame"]) for job in jobs] == [(0, 1), (2, 3), (4, 4)]
