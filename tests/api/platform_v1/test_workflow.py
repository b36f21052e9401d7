"""A project's workflow: versions, assigned stages, sampled reviews."""

from __future__ import annotations

from tests.api.platform_v1.conftest import Work


def _put(work: Work, stages: list[dict]) -> object:
    return work.client.put(
        f"{work.base}/workflow", json={"stages": stages}, headers=work.as_(work.manager)
    )


def test_changing_the_workflow_leaves_running_items_their_version(work: Work):
    default = work.client.get(f"{work.base}/workflow", headers=work.as_(work.workers[0])).json()
    assert [s["taskType"] for s in default["stages"]] == ["labeling", "review"]
    old = work.create(work.assets[0])
    changed = _put(work, [{"taskType": "labeling"}, {"taskType": "qa", "review": True},
                          {"taskType": "acceptance", "assignment": "assigned"}])  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    new = work.create(work.assets[1])
    assert old["workflowVersion"] == 1 and new["workflowVersion"] == 2

    worker, reviewer = work.workers[0], work.reviewer
    for item in (old, new):
        assert work.next(worker, "labeling").json()["id"] == item["id"]
        work.signal(worker, item["id"], "complete", "labeling")
    # The old item goes to its own version's review stage, the new one to qa.
    assert work.next(reviewer, "review").json()["id"] == old["id"]
    assert work.next(reviewer, "qa").json()["id"] == new["id"]
    passed = work.signal(reviewer, new["id"], "complete", "qa", signalOutcome="OK").json()
    assert passed["taskType"] == "acceptance" and passed["status"] == "NEW"
    # An assigned stage is not in the queue: a manager hands it to someone.
    assert work.next(work.workers[2], "acceptance").status_code == 204
    handed = work.signal(
        work.manager, new["id"], "start", "acceptance", assignee=work.workers[2].email
    )
    assert handed.status_code == 200, handed.text
    done = work.signal(work.workers[2], new["id"], "complete", "acceptance", signalOutcome="OK")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "COMPLETED"


def test_a_review_stage_samples_its_items(work: Work):
    _put(work, [{"taskType": "labeling"}, {"taskType": "review", "sampleRate": 0}])
    item = work.create(work.assets[0])
    work.next(work.workers[0])
    done = work.signal(work.workers[0], item["id"], "complete", "labeling").json()
    assert done["status"] == "COMPLETED"


def test_bad_workflows_are_named(work: Work):
    for stages, field in (
        ([], "stages"),
        ([{"taskType": "Review!"}], "stages.0.taskType"),
        ([{"taskType": "review"}], "stages.0.review"),  # nothing to review yet
        ([{"taskType": "labeling"}, {"taskType": "labeling"}], "stages.1.taskType"),
        ([{"taskType": "labeling", "assignment": "push"}], "stages.0.assignment"),
        (
            [{"taskType": "labeling"}, {"taskType": "review", "sampleRate": 2}],
            "stages.1.sampleRate",
        ),
        ([{"taskType": "labeling", "sampleRate": 0.5}], "stages.0.sampleRate"),
        ([{"taskType": "labeling", "colour": 1}], "stages.0.colour"),
    ):
        response = _put(work, stages)
        assert response.status_code == 400, stages
        assert field in response.json(), (field, response.json())
    refused = work.client.put(
        f"{work.base}/workflow",
        json={"stages": [{"taskType": "labeling"}]},
        headers=work.as_(work.workers[0]),
    )
    assert refused.status_code == 403
