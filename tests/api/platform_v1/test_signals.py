"""Signals over HTTP: wrong stages and transitions, bulk signals, leases, bad input."""

from __future__ import annotations

import pytest

from labelyard.domain import WorkItem
from labelyard.domain.base import utcnow
from tests.api.platform_v1.conftest import Work


def test_a_wrong_stage_or_transition_is_a_409_naming_status_and_stage(work: Work):
    item = work.create(work.assets[0])
    worker = work.workers[0]
    # A worker sees no item before it is theirs: they take work with `next`.
    assert work.signal(worker, item["id"], "start", "labeling").status_code == 404
    wrong = work.signal(work.manager, item["id"], "start", "review")
    assert wrong.status_code == 409
    assert wrong.json()["status"] == "NEW" and wrong.json()["taskType"] == "labeling"
    assert "labeling" in wrong.json()["detail"]
    early = work.signal(work.manager, item["id"], "complete", "labeling")
    assert early.status_code == 409 and "NEW" in early.json()["detail"]
    assert work.next(worker).json()["id"] == item["id"]
    assert work.signal(worker, item["id"], "start", "labeling").status_code == 200
    # Another worker cannot take it while it is claimed, nor see it.
    other = work.signal(work.workers[1], item["id"], "start", "labeling")
    assert other.status_code == 404
    # A manager's handing it over is allowed.
    handed = work.signal(
        work.manager, item["id"], "start", "labeling", assignee=work.workers[1].email
    )
    assert handed.status_code == 200 and handed.json()["assignee"] == work.workers[1].email
    assert work.signal(worker, item["id"], "complete", "labeling").status_code == 404
    assert work.signal(work.manager, item["id"], "cancel", "labeling").json()["status"] == "FAILED"
    assert work.signal(work.manager, item["id"], "cancel", "labeling").status_code == 409
    reopened = work.signal(work.manager, item["id"], "reopen", "labeling")
    assert reopened.json()["status"] == "NEW" and reopened.json()["assignee"] is None


def test_a_review_needs_an_outcome(work: Work):
    item = work.create(work.assets[0])
    work.next(work.workers[0])
    work.signal(work.workers[0], item["id"], "complete", "labeling")
    work.next(work.reviewer, "review")
    missing = work.signal(work.reviewer, item["id"], "complete", "review")
    assert missing.status_code == 400 and "signalOutcome" in missing.json()
    bad = work.signal(work.reviewer, item["id"], "complete", "review", signalOutcome="MAYBE")
    assert bad.status_code == 400 and "signalOutcome" in bad.json()


def test_bulk_signals_apply_each_item_on_its_own(work: Work):
    made = [work.create(asset)["id"] for asset in work.assets[:4]]
    worker = work.as_(work.workers[0])
    for _ in range(3):
        work.next(work.workers[0])
    body = {
        "signal": "complete",
        "workItems": [
            {"workItemID": made[0], "feedback": {"comments": ["first"]}},
            {"workItemID": made[1]},
            {"workItemID": "00000000-0000-0000-0000-000000000000"},
            {"workItemID": made[2]},
        ],
    }
    answer = work.client.post(f"{work.base}/work-items/signals", json=body, headers=worker)
    assert answer.status_code == 200, answer.text
    results = answer.json()["items"]
    assert [r["result"] for r in results] == ["OK", "OK", "ERROR", "OK"]
    assert results[2]["error"]["status"] == 404
    assert results[0]["feedback"] == {"comments": ["first"]}
    assert all(isinstance(r["id"], int) for r in results if r["result"] == "OK")
    assert results[0]["status"] == "NEW"  # on to review
    # One refused item leaves the others applied.
    mixed = work.client.post(
        f"{work.base}/work-items/signals",
        json={
            "signal": "start",
            "taskType": "labeling",
            "workItems": [{"workItemID": made[0]}, {"workItemID": made[3]}],
        },
        headers=work.as_(work.manager),
    ).json()["items"]
    assert [r["result"] for r in mixed] == ["ERROR", "OK"]  # made[0] is in review now
    assert mixed[0]["error"]["status"] == 409
    for size in (0, 101):
        items = [{"workItemID": made[0]}] * size
        response = work.client.post(
            f"{work.base}/work-items/signals",
            json={"signal": "start", "workItems": items},
            headers=worker,
        )
        assert response.status_code == 400 and "workItems" in response.json(), response.text


def test_an_expired_lease_returns_the_item_and_refuses_the_old_holders_write(work: Work):
    item = work.create(work.assets[0])
    first, second = work.workers[0], work.workers[1]
    assert work.next(first).json()["id"] == item["id"]
    with work.factory.uow() as uow:
        row = uow.session.query(WorkItem).filter_by(uuid=item["id"]).one()
        row.leased_until = utcnow()
        uow.commit()
    late = work.client.put(
        f"{work.base}/work-items/{item['id']}/labels",
        json={"labels": [{"bbox": [0, 0, 1, 1], "label": "car"}]},
        headers=work.as_(first),
    )
    assert late.status_code == 409 and "expired" in late.json()["detail"]
    claimed = work.next(second)
    assert claimed.status_code == 200 and claimed.json()["id"] == item["id"]
    history = work.client.get(
        f"{work.base}/work-items/{item['id']}/signals", headers=work.as_(work.manager)
    ).json()["items"]
    assert [h["signal"] for h in history] == ["start", "expire", "start"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dueInSeconds", 0),
        ("dueInSeconds", 2_592_001),
        ("difficulty", -1),
        ("difficulty", 101),
        ("difficulty", "hard"),
        ("assetId", 987654),
        ("batchId", 987654),
        ("assetType", "sound"),
        ("taxonomyVersionId", "v1"),
        ("metadata", [1]),
        ("surprise", 1),
    ],
)
def test_bad_work_item_fields_are_named(work: Work, field: str, value: object):
    body = {"assetId": work.assets[0].id, "assetType": "image", field: value}
    response = work.client.post(
        f"{work.base}/work-items", json=body, headers=work.as_(work.manager)
    )
    assert response.status_code == 400, response.text
    assert field in response.json(), response.json()
    listed = work.client.get(f"{work.base}/work-items", headers=work.as_(work.manager)).json()
    assert listed["items"] == []


def test_bad_labels_are_named_and_change_nothing(work: Work):
    item = work.create(work.assets[0])
    work.next(work.workers[0])
    url = f"{work.base}/work-items/{item['id']}/labels"
    headers = work.as_(work.workers[0])
    good = work.client.put(
        url, json={"labels": [{"bbox": [1, 1, 2, 2], "label": "car"}]}, headers=headers
    )
    assert good.status_code == 200
    for labels, field in (
        ([{"bbox": [1, 2, 3]}], "labels.0.bbox"),
        ([{"bbox": [1, 2, 3, 4], "label": "boat"}], "labels.0.label"),
        ([{"bbox": [1, 2, 3, 4]}], "labels.0.label"),  # two labels: name one
        ([{"bbox": [1, 2, -3, 4], "label": "car"}], "labels.0"),
        ([{"bbox": [1, 2, 3, 4], "label": "car", "extra": 1}], "labels.0.extra"),
        ("boxes", "labels"),
    ):
        response = work.client.put(url, json={"labels": labels}, headers=headers)
        assert response.status_code == 400, (labels, response.text)
        assert field in response.json(), (field, response.json())
    kept = work.client.get(f"{work.base}/work-items/{item['id']}", headers=headers).json()
    assert [label["bbox"] for label in kept["labels"]] == [[1, 1, 2, 2]]
    # Another worker may not write them.
    other = work.client.put(url, json={"labels": []}, headers=work.as_(work.workers[1]))
    assert other.status_code == 404
