"""Task backups through the API, as CVAT 1.5+ clients make them: ``GET tasks/{id}?action=
export`` (202, 201, ``action=download``), ``POST tasks?action=import`` with a ``task_file``
(202, polled with the ``rq_id``: 201 with the new task's id, or 400 with the reason). A
restore, on this server or another, equals the task; a bad archive creates nothing."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from labelyard.adapters.db.engine import make_engine
from labelyard.app import create_app
from labelyard.config import Settings
from labelyard.domain import Asset, Dataset, Task
from tests.factories import Factory
from tests.support.backups import (
    API,
    LABELS,
    add_data,
    annotate,
    backup,
    ids_of,
    images,
    make_task,
    restore,
    restore_answer,
    set_jobs,
    snapshot,
    start_restore,
    wait,
)
from tests.support.media import jpeg, mp4


@pytest.fixture
def yard(client, factory):
    """alice's annotated image task: five frames in three jobs, two of them assigned,
    one in validation, a track across two jobs."""
    alice, carol = factory.user("alice"), factory.user("carol")
    headers = factory.headers(alice)
    task_id = make_task(client, headers, images(), sorting_method="natural")
    annotate(client, headers, task_id)
    set_jobs(client, headers, task_id, [
        {"assignee": "carol", "reviewer": "alice"}, {"status": "validation"},
        {"assignee": "alice"},
    ])  # fmt: skip
    return {"alice": alice, "carol": carol, "headers": headers, "task": task_id}


@pytest.fixture
def other_server(tmp_path: Path, fresh_database_url: str) -> Iterator[tuple[TestClient, Factory]]:
    """A second labelyard: its own database (SQLite file or PostgreSQL database) and
    its own media storage."""
    engine = make_engine(fresh_database_url)
    settings = Settings(data_dir=tmp_path / "other", database_url=fresh_database_url)
    other = create_app(settings, engine=engine)
    with TestClient(other) as client:
        yield client, Factory(other.state.session_factory)
    other.state.runner.shutdown()
    engine.dispose()


# --- round trips ------------------------------------------------------------------------


def test_a_backup_restores_into_an_equal_task(client, yard):
    headers, task_id = yard["headers"], yard["task"]
    before = snapshot(client, headers, task_id)
    content = backup(client, headers, task_id)
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        names = set(bundle.namelist())
        manifest = json.loads(bundle.read("task.json"))
    assert {"task.json", "annotations.json"} <= names
    assert {f"data/street/img_{n}.jpg" for n in range(5)} <= names
    assert (manifest["format"], manifest["version"]) == ("labelyard task backup", "1.0")
    assert [job["assignee"] for job in manifest["jobs"]] == ["carol", None, "alice"]

    restored = restore(client, headers, content)
    assert restored != task_id
    assert snapshot(client, headers, restored) == before
    task = client.get(f"{API}/tasks/{restored}", headers=headers).json()
    assert task["owner"]["username"] == "alice" and task["project_id"] is None
    assert client.get(f"{API}/tasks/{restored}/status", headers=headers).json()["state"] == (
        "Finished"
    )


def test_a_backup_restores_on_another_server(client, yard, other_server):
    headers, task_id = yard["headers"], yard["task"]
    before = snapshot(client, headers, task_id)
    content = backup(client, headers, task_id)
    other, factory = other_server
    dave = factory.user("dave")
    factory.user("carol")  # alice is unknown there: her jobs come back unassigned
    restored = restore(other, factory.headers(dave), content)
    after = snapshot(other, factory.headers(dave), restored)
    assert after["jobs"] == [(0, 1, "annotation", "carol", None), (2, 3, "validation", None, None),
                             (4, 4, "annotation", None, None)]  # fmt: skip
    assert {k: v for k, v in after.items() if k != "jobs"} == {
        k: v for k, v in before.items() if k != "jobs"
    }
    task = other.get(f"{API}/tasks/{restored}", headers=factory.headers(dave)).json()
    assert task["owner"]["username"] == "dave"


def test_start_stop_and_filter_come_back(client, factory):
    """The files as uploaded (also those the filter left out) and the same cut."""
    owner = factory.user("owner")
    headers = factory.headers(owner)
    task_id = make_task(
        client, headers, images(7), start_frame="1", stop_frame="5", frame_filter="step=2",
        sorting_method="random",
    )  # fmt: skip
    before = snapshot(client, headers, task_id)
    assert before["task"]["size"] == 3 and before["meta"]["frame_filter"] == "step=2"
    content = backup(client, headers, task_id)
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        assert sum(name.startswith("data/") for name in bundle.namelist()) == 7
    assert snapshot(client, headers, restore(client, headers, content)) == before


def test_data_added_twice_comes_back_with_its_jobs(client, factory):
    owner = factory.user("owner")
    headers = factory.headers(owner)
    task_id = make_task(client, headers, images(3))
    add_data(client, headers, task_id, [(f"more_{n}.jpg", jpeg(50, 40, shade=n)) for n in range(3)])
    before = snapshot(client, headers, task_id)
    assert [job[:2] for job in before["jobs"]] == [(0, 1), (2, 2), (3, 4), (5, 5)]
    assert snapshot(
        client, headers, restore(client, headers, backup(client, headers, task_id))
    ) == (before)


def test_a_hidden_file_name_comes_back(client, factory):
    """Unpacking skips hidden files: such a medium is kept under another path."""
    owner = factory.user("owner")
    headers = factory.headers(owner)
    task_id = make_task(client, headers, [("a.jpg", jpeg(shade=1)), (".b.jpg", jpeg(shade=2))])
    before = snapshot(client, headers, task_id)
    assert [frame["name"] for frame in before["meta"]["frames"]] == [".b.jpg", "a.jpg"]
    content = backup(client, headers, task_id)
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        assert {"data/a.jpg", "data/renamed/b.jpg"} <= set(bundle.namelist())
    assert snapshot(client, headers, restore(client, headers, content)) == before


def test_a_video_task_comes_back(client, factory, tmp_path):
    owner = factory.user("owner")
    headers = factory.headers(owner)
    video = mp4(tmp_path / "clip.mp4", frames=30)
    task_id = make_task(
        client, headers, [("clip.mp4", video.read_bytes())], video=True, frame_filter="step=2"
    )
    labels, specs = ids_of(client, headers, task_id)
    track = {"frame": 2, "label_id": labels["car"], "shapes": [
        {"type": "rectangle", "frame": 2, "points": [1, 1, 30, 30]},
        {"type": "rectangle", "frame": 12, "points": [9, 9, 40, 40],
         "attributes": [{"spec_id": specs["car"]["speed"], "value": "10"}]},
    ]}  # fmt: skip
    saved = client.put(
        f"{API}/tasks/{task_id}/annotations", headers=headers,
        json={"tags": [], "shapes": [], "tracks": [track]},
    )  # fmt: skip
    assert saved.status_code == 200, saved.text
    before = snapshot(client, headers, task_id)
    assert before["task"]["mode"] == "interpolation" and before["task"]["size"] == 15
    assert snapshot(
        client, headers, restore(client, headers, backup(client, headers, task_id))
    ) == (before)


def test_a_task_without_data_comes_back(client, factory):
    owner = factory.user("owner")
    headers = factory.headers(owner)
    task = client.post(f"{API}/tasks", headers=headers, json={"name": "empty", "labels": LABELS})
    before = snapshot(client, headers, task.json()["id"])
    restored = restore(client, headers, backup(client, headers, task.json()["id"]))
    assert snapshot(client, headers, restored) == before


def test_a_paused_task_comes_back_paused(client, yard):
    headers, task_id = yard["headers"], yard["task"]
    paused = client.patch(f"{API}/tasks/{task_id}", headers=headers, json={"state": "paused"})
    assert paused.status_code == 200, paused.text
    restored = restore(client, headers, backup(client, headers, task_id))
    assert client.get(f"{API}/tasks/{restored}", headers=headers).json()["state"] == "paused"


# --- the export's flow --------------------------------------------------------------------


def test_a_ready_backup_is_reused_until_the_task_changes(client, yard):
    headers, task_id = yard["headers"], yard["task"]
    url = f"{API}/tasks/{task_id}"
    backup(client, headers, task_id)
    again = client.get(url, headers=headers, params={"action": "export"})
    assert again.status_code == 201
    client.patch(url, headers=headers, json={"bug_tracker": "https://bugs.example.com/2"})
    assert client.get(url, headers=headers, params={"action": "export"}).status_code == 202


def test_a_download_before_the_backup_is_ready_starts_it(client, yard):
    url = f"{API}/tasks/{yard['task']}"
    early = client.get(url, headers=yard["headers"], params={"action": "download"})
    assert early.status_code == 202 and early.json()["rq_id"]
    ready = wait(lambda: client.get(url, headers=yard["headers"], params={"action": "download"}))
    assert ready.status_code == 200 and ready.content.startswith(b"PK")


def test_without_an_action_the_task_is_answered_as_before(client, yard):
    url = f"{API}/tasks/{yard['task']}"
    task = client.get(url, headers=yard["headers"])
    assert task.status_code == 200
    listed = client.get(f"{API}/tasks", headers=yard["headers"]).json()["results"]
    assert task.json() == next(item for item in listed if item["id"] == yard["task"])
    unknown = client.get(url, headers=yard["headers"], params={"action": "nope"})
    assert unknown.status_code == 400


def test_post_tasks_without_an_action_still_creates_from_json(client, yard):
    created = client.post(f"{API}/tasks", headers=yard["headers"], json={"name": "plain"})
    assert created.status_code == 201 and created.json()["name"] == "plain"
    form = client.post(f"{API}/tasks", headers=yard["headers"], data={"name": "plain"})
    assert form.status_code == 400


# --- who may ------------------------------------------------------------------------------


def test_who_may_back_up_and_restore(client, factory, yard):
    bob, observer = factory.user("bob"), factory.user("olga", ("observer",))
    url = f"{API}/tasks/{yard['task']}"
    hidden = client.get(url, headers=factory.headers(bob), params={"action": "export"})
    assert hidden.status_code == 404
    # Observers read everything, annotations and their exports included.
    seen = client.get(url, headers=factory.headers(observer), params={"action": "export"})
    assert seen.status_code in (201, 202), seen.text
    content = backup(client, yard["headers"], yard["task"])
    refused = start_restore(client, factory.headers(observer), content)
    assert refused.status_code == 403, refused.text

    started = start_restore(client, yard["headers"], content)
    assert started.status_code == 202
    rq_id = started.json()["rq_id"]
    for sent in ({"data": {"rq_id": rq_id}}, {"json": {"rq_id": rq_id}},
                 {"params": {"action": "import", "rq_id": rq_id}}):  # fmt: skip
        kwargs = {"params": {"action": "import"}, **sent}
        other = client.post(f"{API}/tasks", headers=factory.headers(bob), **kwargs)
        assert other.status_code == 404, other.text
        mine = wait(lambda kwargs=kwargs: client.post(
            f"{API}/tasks", headers=yard["headers"], **kwargs
        ))  # fmt: skip
        assert mine.status_code == 201, mine.text


# --- archives that are refused ----------------------------------------------------------------


def rewritten(content: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(content)) as bundle:
        members = {name: bundle.read(name) for name in bundle.namelist()}
    change(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as bundle:
        for name, data in members.items():
            bundle.writestr(zipfile.ZipInfo(name), data)
    return out.getvalue()


def manifest_changed(
    change: Callable[[dict[str, Any]], None],
) -> Callable[[dict[str, bytes]], None]:
    def apply(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["task.json"])
        change(manifest)
        members["task.json"] = json.dumps(manifest).encode()

    return apply


def annotations_changed(
    change: Callable[[list[dict[str, Any]]], None],
) -> Callable[[dict[str, bytes]], None]:
    def apply(members: dict[str, bytes]) -> None:
        jobs = json.loads(members["annotations.json"])
        change(jobs)
        members["annotations.json"] = json.dumps(jobs).encode()

    return apply


def _corrupted(content: bytes) -> bytes:
    """A stored member's bytes changed: the archive opens, its CRC does not match."""
    stored = rewritten(content, lambda members: None)
    marker = jpeg(64, 48, shade=0)[200:240]
    at = stored.index(marker)
    return stored[:at] + bytes(b ^ 0xFF for b in marker) + stored[at + len(marker) :]


def _a_coco_export(client, yard) -> bytes:
    url = f"{API}/tasks/{yard['task']}/annotations"
    params = {"format": "COCO 1.0"}
    wait(lambda: client.get(url, headers=yard["headers"], params=params))
    got = client.get(url, headers=yard["headers"], params=params | {"action": "download"})
    assert got.status_code == 200
    return got.content


def _zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return out.getvalue()


CVAT_MANIFEST = {"name": "t", "version": "1.0", "labels": [], "data": {}, "jobs": []}
REFUSED: dict[str, tuple[Callable[[bytes, Any, Any], bytes], str]] = {
    "not-a-zip": (lambda content, c, y: b"this is no zip at all", "not a zip"),
    "truncated-zip": (lambda content, c, y: content[: len(content) // 2], "zip"),
    "no-manifest": (lambda content, c, y: _zip_of({"hello.txt": b"hi"}), "task.json"),
    "a-coco-export": (lambda content, c, y: _a_coco_export(c, y), "task.json"),
    "a-cvat-backup": (
        lambda content, c, y: _zip_of(
            {"task.json": json.dumps(CVAT_MANIFEST).encode(), "annotations.json": b"[]"}
        ),
        "not a labelyard task backup",
    ),
    "unknown-version": (
        lambda content, c, y: rewritten(
            content, manifest_changed(lambda m: m.update(version="9.0"))
        ),
        "version '9.0'",
    ),
    "manifest-not-json": (
        lambda content, c, y: rewritten(content, lambda m: m.update({"task.json": b"{nope"})),
        "not valid JSON",
    ),
    "missing-media": (
        lambda content, c, y: rewritten(content, lambda m: m.pop("data/street/img_3.jpg")),
        "data/street/img_3.jpg",
    ),
    "traversal-member": (
        lambda content, c, y: rewritten(content, lambda m: m.update({"../evil.jpg": b"x"})),
        "..",
    ),
    "traversal-in-manifest": (
        lambda content, c, y: rewritten(
            content,
            manifest_changed(
                lambda m: m["data"]["media"][0].update(file="data/../../../etc/passwd")
            ),
        ),
        "not a safe path",
    ),
    "corrupted-member": (lambda content, c, y: _corrupted(content), "cannot be read"),
    "unknown-label": (
        lambda content, c, y: rewritten(
            content, annotations_changed(lambda jobs: jobs[0]["shapes"][0].update(label="ghost"))
        ),
        "ghost",
    ),
    "annotations-of-too-few-jobs": (
        lambda content, c, y: rewritten(content, annotations_changed(lambda jobs: jobs.pop())),
        "each of the 3 jobs",
    ),
    # Found only once the task exists: what was made is removed again.
    "a-broken-image": (
        lambda content, c, y: rewritten(
            content, lambda m: m.update({"data/street/img_2.jpg": m["data/street/img_2.jpg"][:300]})
        ),
        "img_2.jpg",
    ),
    "an-annotation-outside-its-job": (
        lambda content, c, y: rewritten(
            content, annotations_changed(lambda jobs: jobs[0]["shapes"][0].update(frame=4))
        ),
        "outside this job",
    ),
}


def counts(factory, storage) -> tuple[int, int, int, int, int]:
    with factory.uow() as uow:
        tasks = uow.session.scalar(select(func.count(Task.id)))
        datasets = uow.session.scalar(select(func.count(Dataset.id)))
        assets = uow.session.scalar(select(func.count(Asset.id)))
    media = len(list(storage.list("datasets/")))
    return tasks, datasets, assets, media, len(list(storage.list("staging/")))


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_bad_archive_is_refused_and_creates_nothing(client, factory, app, yard, case):
    make, reason = REFUSED[case]
    bad = make(backup(client, yard["headers"], yard["task"]), client, yard)
    before = counts(factory, app.state.storage)
    answer = restore_answer(client, yard["headers"], bad)
    assert answer.status_code == 400, answer.text
    assert reason in answer.json()["detail"], answer.json()
    assert counts(factory, app.state.storage) == before


def test_a_refused_archive_is_refused_before_it_is_kept(client, factory, app, yard):
    answer = start_restore(client, yard["headers"], b"PK not really")
    assert answer.status_code == 400 and "task_file" in answer.json()
    missing = client.post(f"{API}/tasks", headers=yard["headers"], params={"action": "import"},
                          data={"other": "x"})  # fmt: skip
    assert missing.status_code == 400 and "task_file" in missing.json()
    assert list(app.state.storage.list("staging/")) == []


# --- sizes ------------------------------------------------------------------------------------


@pytest.fixture
def small_requests(settings, engine, app):
    """A server whose ordinary requests are held to 8 KiB, uploads to 10 MiB."""
    limited = settings.model_copy(update={"max_request_bytes": 8 * 1024})
    limited_app = create_app(limited, engine=engine)
    with TestClient(limited_app) as client:
        yield client
    limited_app.state.runner.shutdown()


def test_an_import_may_be_larger_than_a_task_body(small_requests, factory):
    owner = factory.user("owner")
    headers = factory.headers(owner)
    task_id = make_task(small_requests, headers, [("big.jpg", jpeg(640, 480, quality=100))])
    content = backup(small_requests, headers, task_id)
    assert len(content) > 8 * 1024
    assert restore_answer(small_requests, headers, content).status_code == 201
    huge = {"name": "x" * 9000}
    refused = small_requests.post(f"{API}/tasks", headers=headers, json=huge)
    assert refused.status_code == 413, refused.text


# --- media in S3 -----------------------------------------------------------------------------


@pytest.fixture
def s3_server(app, engine, settings, s3_endpoint) -> Iterator[TestClient]:
    """A server keeping media in a fresh bucket of moto's S3 (``app`` is requested so that
    the database is emptied afterwards)."""
    s3_settings = settings.model_copy(update={
        "storage": "s3", "s3_endpoint": s3_endpoint, "s3_bucket": f"test-{uuid.uuid4().hex[:16]}",
        "s3_access_key": "testing", "s3_secret_key": "testing",
    })  # fmt: skip
    s3_app = create_app(s3_settings, engine=engine)
    try:
        with TestClient(s3_app) as client:
            yield client
    finally:
        s3_app.state.runner.shutdown()


def test_a_backup_of_media_in_s3_is_downloaded_from_the_bucket_and_restores(s3_server, factory):
    client = s3_server
    owner = factory.user("owner")
    headers = factory.headers(owner)
    task_id = make_task(client, headers, images())
    annotate(client, headers, task_id)
    before = snapshot(client, headers, task_id)
    url = f"{API}/tasks/{task_id}"
    assert client.get(url, headers=headers, params={"action": "export"}).status_code == 202
    wait(lambda: client.get(url, headers=headers, params={"action": "export"}))
    sent = client.get(url, headers=headers, params={"action": "download"}, follow_redirects=False)
    assert sent.status_code == 302, sent.text
    content = httpx.get(sent.headers["location"]).content
    assert snapshot(client, headers, restore(client, headers, content)) == before
