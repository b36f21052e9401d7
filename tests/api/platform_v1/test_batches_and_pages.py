"""Batches and keyset pages of work items."""

from __future__ import annotations

from tests.api.platform_v1.conftest import Work


def test_a_project_has_a_default_batch_and_batches_count_their_items(work: Work):
    manager = work.as_(work.manager)
    listed = work.client.get(f"{work.base}/batches", headers=manager).json()
    assert [batch["name"] for batch in listed["items"]] == ["Default"]
    made = work.client.post(
        f"{work.base}/batches", json={"name": "night", "metadata": {"shift": 2}}, headers=manager
    )
    assert made.status_code == 201, made.text
    batch = made.json()
    assert batch["projectId"] == work.project.uuid and batch["metadata"] == {"shift": 2}
    twice = work.client.post(f"{work.base}/batches", json={"name": "night"}, headers=manager)
    assert twice.status_code == 400 and "name" in twice.json()
    for asset in work.assets[:3]:
        work.create(asset, batchId=batch["id"])
    work.create(work.assets[3])
    listed = work.client.get(f"{work.base}/batches", headers=manager).json()["items"]
    counts = {b["name"]: (b["totalCount"], b["completedCount"]) for b in listed}
    assert counts == {"Default": (1, 0), "night": (3, 0)}
    renamed = work.client.patch(
        f"{work.base}/batches/{batch['id']}", json={"name": "late"}, headers=manager
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "late"
    worker = work.client.post(
        f"{work.base}/batches", json={"name": "w"}, headers=work.as_(work.workers[0])
    )
    assert worker.status_code == 403
    filtered = work.client.get(
        f"{work.base}/work-items?batchIds={batch['id']}", headers=manager
    ).json()["items"]
    assert len(filtered) == 3


def test_keyset_pages_are_stable_while_items_are_added(work: Work):
    manager = work.as_(work.manager)
    made = [work.create(asset)["id"] for asset in work.assets[:5]]
    first = work.client.get(f"{work.base}/work-items?limit=2", headers=manager).json()
    assert [i["id"] for i in first["items"]] == made[:2]
    assert first["meta"]["cursor_prev"] is None and first["meta"]["page"] == "NEXT"
    work.create(work.assets[5])  # inserted between reading two pages
    second = work.client.get(
        f"{work.base}/work-items?limit=2&cursor={first['meta']['cursor_next']}", headers=manager
    ).json()
    assert [i["id"] for i in second["items"]] == made[2:4]
    back = work.client.get(
        f"{work.base}/work-items?limit=2&page=PREV&cursor={second['meta']['cursor_prev']}",
        headers=manager,
    ).json()
    assert [i["id"] for i in back["items"]] == made[:2]
    tampered = first["meta"]["cursor_next"][:-2] + "00"
    bad = work.client.get(f"{work.base}/work-items?cursor={tampered}", headers=manager)
    assert bad.status_code == 400 and "cursor" in bad.json()
    # A batches cursor is not a work items cursor.
    batches = work.client.get(f"{work.base}/batches?limit=1", headers=manager).json()
    assert batches["meta"]["cursor_next"] is None
    for limit in (0, 101, "x"):
        response = work.client.get(f"{work.base}/work-items?limit={limit}", headers=manager)
        assert response.status_code == 400, limit
        assert "limit" in response.json()


def test_work_item_filters(work: Work):
    manager = work.as_(work.manager)
    a, b, _ = (work.create(asset) for asset in work.assets[:3])
    by_ids = work.client.get(
        f"{work.base}/work-items?workItemIDs={a['id']},{b['id']}", headers=manager
    ).json()["items"]
    assert {i["id"] for i in by_ids} == {a["id"], b["id"]}
    repeated = work.client.get(
        f"{work.base}/work-items?workItemIDs={a['id']}&workItemIDs={b['id']}", headers=manager
    ).json()["items"]
    assert len(repeated) == 2
    assert (
        work.client.get(f"{work.base}/work-items?workItemIDs=zzz", headers=manager).status_code
        == 400
    )
    too_many = ",".join(str(n) for n in range(101))
    assert (
        work.client.get(f"{work.base}/work-items?batchIds={too_many}", headers=manager).status_code
        == 400
    )
    work.next(work.workers[0])
    progress = work.client.get(f"{work.base}/work-items?status=IN_PROGRESS", headers=manager).json()
    assert len(progress["items"]) == 1
    assert (
        work.client.get(f"{work.base}/work-items?status=DONE", headers=manager).status_code == 400
    )
    future = work.client.get(
        f"{work.base}/work-items?createdAtFrom=2999-01-01T00:00:00Z", headers=manager
    ).json()
    assert future["items"] == []
    # A worker sees only the items they hold.
    mine = work.client.get(f"{work.base}/work-items", headers=work.as_(work.workers[0])).json()
    assert len(mine["items"]) == 1
