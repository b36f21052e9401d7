"""CVAT's git integration: link a task to a repository, push its annotations as commits
on the task's branch of a real (local, bare) repository, and read the status."""

from __future__ import annotations

import json
import subprocess
import time
import xml.etree.ElementTree as ET
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from labelyard.config import Settings
from labelyard.domain import GitRepository
from labelyard.services import git as git_service
from labelyard.services import operations
from labelyard.services.uow import UnitOfWork
from tests.support.media import jpeg

API = "/api/v1"
GIT = "/git/repository"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # Local repositories are allowed only under the export roots.
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        export_roots=[tmp_path / "repos"],
    )


def git(*args: str, cwd: Path | None = None) -> str:
    command = ["git", "-c", "user.name=tester", "-c", "user.email=tester@example.com", *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository whose default branch, main, holds a README."""
    bare = tmp_path / "repos" / "annotations.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    work = tmp_path / "seed"
    git("init", "--quiet", "--initial-branch=main", str(work))
    (work / "README.md").write_text("labels live here\n")
    git("add", "README.md", cwd=work)
    git("commit", "--quiet", "-m", "start", cwd=work)
    git("push", "--quiet", str(bare), "main", cwd=work)
    return bare


@pytest.fixture
def empty(client, factory) -> dict[str, Any]:
    """A task without data, for what needs no annotations."""
    owner = factory.user("owner")
    headers = factory.headers(owner)
    task = client.post(
        f"{API}/tasks", headers=headers,
        json={"name": "street cars", "labels": [{"name": "car"}, {"name": "person"}]},
    ).json()  # fmt: skip
    labels = {label["name"]: label["id"] for label in task["labels"]}
    return {"headers": headers, "task": task["id"], "labels": labels}


@pytest.fixture
def yard(client, empty) -> dict[str, Any]:
    """The task with two images."""
    url, headers = f"{API}/tasks/{empty['task']}", empty["headers"]
    files = [(f"client_files[{i}]", (f"img_{i}.jpg", jpeg(64, 48, shade=i * 40))) for i in range(2)]
    posted = client.post(f"{url}/data", headers=headers, data={"image_quality": "70"}, files=files)
    assert posted.status_code == 202, posted.text
    deadline = time.monotonic() + 30
    while client.get(f"{url}/status", headers=headers).json()["state"] not in (
        "Finished",
        "Failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return empty


def boxes(yard, *corners: tuple[int, int, int, int, int]) -> dict[str, Any]:
    """Rectangles (frame, x1, y1, x2, y2) of cars."""
    car = yard["labels"]["car"]
    shapes = [
        {"type": "rectangle", "frame": frame, "label_id": car, "points": [x1, y1, x2, y2]}
        for frame, x1, y1, x2, y2 in corners
    ]
    return {"shapes": shapes}


def save(client, yard, body) -> None:
    response = client.put(
        f"{API}/tasks/{yard['task']}/annotations", headers=yard["headers"], json=body
    )
    assert response.status_code == 200, response.text


def wait(client, headers, rq_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        answer = client.get(f"{GIT}/check/{rq_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] not in ("queued", "started"):
            return answer.json()
        assert time.monotonic() < deadline, answer.json()
        time.sleep(0.05)


def link(client, yard, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{GIT}/create/{yard['task']}", headers=yard["headers"], json=body)
    assert response.status_code == 202, response.text
    return wait(client, yard["headers"], response.json()["rq_id"])


def push(client, yard) -> dict[str, Any]:
    response = client.get(f"{GIT}/push/{yard['task']}", headers=yard["headers"])
    assert response.status_code == 200, response.text
    return wait(client, yard["headers"], response.json()["rq_id"])


def state(client, yard) -> dict[str, Any]:
    response = client.get(f"{GIT}/get/{yard['task']}", headers=yard["headers"])
    assert response.status_code == 200, response.text
    return response.json()


def branch(yard) -> str:
    return f"labelyard_{yard['task']}_street_cars"


def test_push_commits_the_annotations_in_the_format_on_the_task_branch(client, yard, remote):
    assert state(client, yard) == {
        "url": {"value": None}, "status": {"value": None, "error": None}, "format": None,
    }  # fmt: skip
    # What CVAT's client sends.
    body = {"path": f"{remote} [annotations/coco.json]", "format": "COCO 1.0", "lfs": False,
            "tid": yard["task"]}  # fmt: skip
    checked = link(client, yard, body)
    assert checked["status"] == "finished", checked
    assert state(client, yard) == {
        "url": {"value": f"{remote} [annotations/coco.json]"},
        "status": {"value": "!sync", "error": None},
        "format": "COCO 1.0",
    }

    save(client, yard, boxes(yard, (0, 2, 3, 20, 30), (1, 10, 10, 40, 44)))
    assert push(client, yard)["status"] == "finished"
    assert state(client, yard)["status"] == {"value": "sync", "error": None}

    # The branch starts from main and adds the file, in COCO, with what was saved.
    ref = branch(yard)
    assert git("log", "--format=%s", ref, cwd=remote).splitlines() == [
        f'Annotations of task {yard["task"]} "street cars" in COCO 1.0', "start",
    ]  # fmt: skip
    assert git("log", "-1", "--format=%an <%ae>", ref, cwd=remote) == "owner <owner@example.com>"
    assert "Shapes: 2" in git("log", "-1", "--format=%b", ref, cwd=remote)
    assert git("show", f"{ref}:README.md", cwd=remote) == "labels live here"
    coco = json.loads(git("show", f"{ref}:annotations/coco.json", cwd=remote))
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert sorted((names[a["category_id"]], a["bbox"]) for a in coco["annotations"]) == [
        ("car", [2.0, 3.0, 18.0, 27.0]), ("car", [10.0, 10.0, 30.0, 34.0]),
    ]  # fmt: skip

    # A change makes the status !sync; the next push is a new commit on the same branch.
    save(client, yard, boxes(yard, (1, 5, 5, 15, 15)))
    assert state(client, yard)["status"]["value"] == "!sync"
    assert push(client, yard)["status"] == "finished"
    assert state(client, yard)["status"]["value"] == "sync"
    assert len(git("log", "--format=%H", ref, cwd=remote).splitlines()) == 3
    coco = json.loads(git("show", f"{ref}:annotations/coco.json", cwd=remote))
    assert [a["bbox"] for a in coco["annotations"]] == [[5.0, 5.0, 10.0, 10.0]]

    # Nothing changed: nothing is committed.
    head = git("rev-parse", ref, cwd=remote)
    rq_id = client.get(f"{GIT}/push/{yard['task']}", headers=yard["headers"]).json()["rq_id"]
    assert wait(client, yard["headers"], rq_id)["status"] == "finished"
    operation = client.get(f"{API}/operations/{rq_id}", headers=yard["headers"]).json()
    assert operation["kind"] == "git.push"
    assert operation["result"] == {"branch": ref, "path": "annotations/coco.json",
                                   "commit": head, "changed": False}  # fmt: skip
    assert git("rev-parse", ref, cwd=remote) == head
    assert git("rev-parse", "main", cwd=remote) == git("rev-parse", f"{ref}~2", cwd=remote)


def test_a_zip_path_holds_the_whole_export_by_default_in_cvat_xml(client, yard, remote, tmp_path):
    """No path: CVAT's default file, annotation/<task name>.zip, in CVAT for images."""
    assert link(client, yard, {"path": str(remote)})["status"] == "finished"
    linked = state(client, yard)
    assert linked["url"]["value"] == f"{remote} [annotation/street_cars.zip]"
    assert linked["format"] == "CVAT for images 1.1"
    save(client, yard, boxes(yard, (1, 1, 2, 11, 12)))
    assert push(client, yard)["status"] == "finished"

    clone = tmp_path / "clone"
    git("clone", "--quiet", "--branch", branch(yard), str(remote), str(clone))
    with zipfile.ZipFile(clone / "annotation" / "street_cars.zip") as bundle:
        root = ET.fromstring(bundle.read("annotations.xml"))
    found = [(image.get("name"), box.get("label"), box.get("xtl"), box.get("ybr"))
             for image in root.iter("image") for box in image.iter("box")]  # fmt: skip
    assert found == [("img_1.jpg", "car", "1.00", "12.00")]


def test_the_status_is_merged_once_main_holds_the_pushed_commit(client, yard, remote, monkeypatch):
    monkeypatch.setattr(git_service, "CHECK_EVERY", timedelta(0))
    link(client, yard, {"path": f"file://{remote} [labels.json]", "format": "Datumaro 1.0"})
    save(client, yard, boxes(yard, (0, 1, 1, 5, 5)))
    assert push(client, yard)["status"] == "finished"
    assert state(client, yard)["status"]["value"] == "sync"
    # Someone merges the task's branch (a fast-forward of main).
    git("update-ref", "refs/heads/main", branch(yard), cwd=remote)
    deadline = time.monotonic() + 15
    while state(client, yard)["status"]["value"] != "merged":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Merged until the annotations change again.
    save(client, yard, boxes(yard, (0, 1, 1, 6, 6)))
    assert state(client, yard)["status"]["value"] == "!sync"


def test_an_unreachable_repository_fails_the_operation_and_says_why(client, empty, tmp_path):
    missing = tmp_path / "repos" / "missing.git"
    checked = link(client, empty, {"path": f"{missing} [a.zip]", "format": "COCO 1.0"})
    assert checked["status"] == "failed"
    assert "does not appear to be a git repository" in checked["stderr"]
    linked = state(client, empty)
    assert linked["url"]["value"] == f"{missing} [a.zip]"
    assert linked["status"]["value"] == "!sync"
    assert "does not appear to be a git repository" in linked["status"]["error"]
    pushed = push(client, empty)
    assert pushed["status"] == "failed" and "Could not read the repository" in pushed["stderr"]


def test_a_password_in_the_url_is_never_shown(client, empty):
    # .invalid never resolves (RFC 6761): the check fails in the operation.
    url = "https://user:s3cret@labels.invalid:9/team/labels.git"
    checked = link(client, empty, {"path": f"{url} [a.zip]"})
    assert checked["status"] == "failed" and "cannot be resolved" in checked["stderr"]
    linked = state(client, empty)
    assert linked["url"]["value"] == "https://***@labels.invalid:9/team/labels.git [a.zip]"
    assert "s3cret" not in json.dumps(checked) + json.dumps(linked)
    assert linked["status"]["error"]


def test_a_file_of_one_kind_needs_a_format_that_makes_exactly_one(client, yard, remote):
    link(client, yard, {"path": f"{remote} [voc.xml]", "format": "PASCAL VOC 1.1"})
    save(client, yard, boxes(yard, (0, 1, 1, 5, 5), (1, 1, 1, 5, 5)))
    pushed = push(client, yard)
    assert pushed["status"] == "failed"
    assert "PASCAL VOC 1.1 makes 2 .xml files" in pushed["stderr"]
    assert git("branch", "--list", branch(yard), cwd=remote) == ""


# Bad bodies for create, and the field each answer names.
BAD_LINKS = [
    ({"path": "ftp://example.com/repo.git"}, "path"),
    ({"path": "repo.git"}, "path"),
    ({"path": "/etc/repo.git"}, "path"),
    ({"path": "https://example.com"}, "path"),
    ({"path": "https://example.com/r.git [../out.zip]"}, "path"),
    ({"path": "https://example.com/r.git [.git/config.zip]"}, "path"),
    ({"path": "https://example.com/r.git [notes.txt]"}, "path"),
    ({"path": "https://example.com/r.git", "format": "No such 1.0"}, "format"),
    (
        {"path": "https://example.com/r.git", "format": "COCO 1.0", "export_format": "VOC"},
        "format",
    ),
    ({"path": "https://example.com/r.git", "lfs": True}, "lfs"),
    ({"path": "https://example.com/r.git", "tid": 999999}, "tid"),
    ({"url": "-upload-pack=touch", "path": "a.zip"}, "url"),
    ({"path": "https://example.com/r.git", "color": "red"}, "color"),
]


def test_bad_links_are_refused_naming_the_field(client, empty):
    for body, field in BAD_LINKS:
        response = client.post(f"{GIT}/create/{empty['task']}", headers=empty["headers"], json=body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.json() and response.json()["detail"], body
    assert state(client, empty)["url"]["value"] is None


def test_local_repositories_need_export_roots(tmp_path):
    (tmp_path / "repos").mkdir()
    off = Settings(data_dir=tmp_path)
    with pytest.raises(ValueError, match="LABELYARD_EXPORT_ROOTS"):
        git_service.check_url(f"file://{tmp_path}/repos/a.git", off)
    on = Settings(data_dir=tmp_path, export_roots=[tmp_path / "repos"])
    assert git_service.check_url(f"{tmp_path}/repos/a.git", on) == f"{tmp_path}/repos/a.git"
    with pytest.raises(ValueError, match="under one of"):
        git_service.check_url(f"{tmp_path}/repos/../elsewhere.git", on)
    for url in ("git@github.com:team/labels.git", "ssh://git@host:2222/team/labels.git",
                "git://host/labels.git", "http://gitlab.internal/team/labels"):  # fmt: skip
        assert git_service.check_url(url, off) == url


def test_malformed_json_is_a_400(client, empty):
    response = client.post(
        f"{GIT}/create/{empty['task']}",
        headers=empty["headers"] | {"Content-Type": "application/json"},
        content=b'{"path": ',
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


def test_the_url_and_path_may_be_given_apart_and_under_api_v1(client, empty, remote):
    body = {"url": f"file://{remote}", "path": "/out/labels.zip", "export_format": "YOLO 1.1"}
    response = client.post(
        f"{API}{GIT}/create/{empty['task']}", headers=empty["headers"], json=body
    )
    assert response.status_code == 202, response.text
    assert wait(client, empty["headers"], response.json()["rq_id"])["status"] == "finished"
    linked = client.get(f"{API}{GIT}/get/{empty['task']}", headers=empty["headers"]).json()
    assert linked["url"]["value"] == f"file://{remote} [out/labels.zip]"
    assert linked["format"] == "YOLO 1.1"


def test_who_may_link_push_and_read(client, factory, empty, remote):
    task = empty["task"]
    stranger = factory.headers(factory.user("stranger"))
    observer = factory.headers(factory.user("watcher", ("observer",)))
    body = {"path": str(remote)}
    assert client.post(f"{GIT}/create/{task}", headers=stranger, json=body).status_code == 404
    assert client.post(f"{GIT}/create/{task}", headers=observer, json=body).status_code == 403
    assert (
        client.post(f"{GIT}/create/99999", headers=empty["headers"], json=body).status_code == 404
    )
    assert client.get(f"{GIT}/get/{task}", headers=stranger).status_code == 404
    assert client.get(f"{GIT}/get/99999", headers=empty["headers"]).status_code == 404
    assert client.get(f"{GIT}/get/{task}").status_code == 401

    unlinked = client.get(f"{GIT}/push/{task}", headers=empty["headers"])
    assert unlinked.status_code == 404
    assert "no linked repository" in unlinked.json()["detail"]

    link(client, empty, body)
    assert client.get(f"{GIT}/push/{task}", headers=stranger).status_code == 404
    assert client.get(f"{GIT}/push/{task}", headers=observer).status_code == 403
    assert client.get(f"{GIT}/get/{task}", headers=observer).json()["status"]["value"] == "!sync"
    assert client.get(f"{GIT}/meta/get", headers=observer).json() == {str(task): "!sync"}
    assert client.get(f"{GIT}/meta/get", headers=stranger).json() == {}
    assert client.get(f"{GIT}/check/not-an-id", headers=stranger).json() == {"status": "unknown"}


def test_a_queued_push_is_syncing_and_a_second_push_answers_it(client, empty, remote, app):
    link(client, empty, {"path": str(remote)})
    with UnitOfWork(app.state.session_factory) as uow:
        # Queued but never handed to the runner: it stays queued while the test looks.
        queued = operations.create(
            uow,
            kind=git_service.PUSH,
            params={"task": empty["task"]},
            target=f"task:{empty['task']}",
        ).id
        uow.commit()
    assert state(client, empty)["status"] == {"value": "syncing", "error": None}
    again = client.get(f"{GIT}/push/{empty['task']}", headers=empty["headers"])
    assert again.json() == {"rq_id": queued}
    relink = client.post(f"{GIT}/create/{empty['task']}", headers=empty["headers"],
                         json={"path": str(remote)})  # fmt: skip
    assert relink.status_code == 409


def test_deleting_the_task_deletes_its_link(client, empty, remote, session_factory):
    link(client, empty, {"path": str(remote)})
    assert (
        client.delete(f"{API}/tasks/{empty['task']}", headers=empty["headers"]).status_code == 204
    )
    with session_factory() as session:
        assert session.scalars(select(GitRepository)).all() == []


def test_the_plugins_report_git_integration(client, empty):
    plugins = client.get(f"{API}/server/plugins", headers=empty["headers"]).json()
    assert plugins["GIT_INTEGRATION"] is True


def test_a_push_under_a_session_cookie_needs_the_csrf_header(client, empty, remote):
    """A GET that changes state, as CVAT has it: under a cookie, CSRF-checked."""
    from tests.factories import PASSWORD

    link(client, empty, {"path": str(remote)})
    assert client.post(f"{API}/auth/login", json={"username": "owner", "password": PASSWORD})
    url = f"{GIT}/push/{empty['task']}"
    refused = client.get(url)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert git("branch", "--list", "--format=%(refname:short)", cwd=remote) == "main"
    started = client.get(url, headers={"X-CSRFToken": client.cookies["csrftoken"]})
    assert started.status_code == 200, started.text
    assert wait(client, empty["headers"], started.json()["rq_id"])["status"] == "finished"
    # Reading the state is no change: the cookie alone does.
    assert client.get(f"{GIT}/get/{empty['task']}").status_code == 200


# --- the server's own network is not a git remote ------------------------------------

PRIVATE_REMOTES = [
    "http://127.0.0.1/team/r.git",
    "https://localhost:8443/team/r.git",
    "http://169.254.169.254/latest/meta-data.git",
    "http://[::1]/r.git",
    "http://[::ffff:127.0.0.1]/r.git",
    "http://10.0.0.7/r.git",
    "git://192.168.1.10/r.git",
    "ssh://git@127.0.0.1/r.git",
    "git@localhost:team/r.git",
    "http://224.0.0.1/r.git",
]


@pytest.mark.parametrize("url", PRIVATE_REMOTES)
def test_remotes_on_private_addresses_are_refused(client, empty, url):
    response = client.post(
        f"{GIT}/create/{empty['task']}", headers=empty["headers"], json={"path": f"{url} [a.zip]"}
    )
    assert response.status_code == 400, response.text
    assert "not a public one" in response.json()["path"][0]
    assert state(client, empty)["url"]["value"] is None


@pytest.mark.parametrize(
    "url", ["ext::sh -c touch% /tmp/pwned", "ext::nc%S127.0.0.1%S22", "fd::17", "file:///etc"]
)
def test_transport_helpers_and_local_files_are_refused(client, empty, url, app):
    app.state.settings.export_roots = []
    response = client.post(
        f"{GIT}/create/{empty['task']}", headers=empty["headers"], json={"path": url}
    )
    assert response.status_code == 400 and "path" in response.json(), response.text


def test_private_remotes_are_linked_when_allowed(client, empty, app):
    app.state.settings.allow_private_urls = True
    checked = link(client, empty, {"path": "http://127.0.0.1:9/team/r.git [a.zip]"})
    # Linked: the check then fails only because nothing listens on the discard port.
    assert checked["status"] == "failed" and "127.0.0.1" in checked["stderr"]


def test_git_connects_to_the_address_it_checked(client, empty):
    """DNS rebinding: the name answers a public address to the check, and git must not
    resolve it again to connect (which would reach the private one)."""
    from tests.support.network import rebinding

    with rebinding() as (public, private):
        url = f"http://localhost:{public.port}/team/r.git"
        checked = link(client, empty, {"path": f"{url} [a.zip]"})
    assert checked["status"] == "failed"  # the "public" host is no git server
    assert private.requests == []
    assert public.requests == [("GET", "/team/r.git/info/refs?service=git-upload-pack")]


def test_ssh_connects_to_the_address_it_checked(client, empty, monkeypatch, tmp_path):
    """ssh is told the checked address (HostName), and checks the key under the name."""
    from tests.support.network import PUBLIC, rebinding

    called = tmp_path / "ssh-arguments"
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text(f'#!/bin/sh\necho "$@" > {called}\nexit 255\n')
    fake_ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(fake_ssh))
    with rebinding():
        checked = link(client, empty, {"path": "git@localhost:team/r.git [a.zip]"})
    assert checked["status"] == "failed"
    arguments = called.read_text().split()
    assert arguments[:4] == ["-o", f"HostName={PUBLIC}", "-o", "HostKeyAlias=localhost"]
    assert "git@localhost" in arguments


def test_a_link_made_before_its_name_rebinds_is_refused_when_pushed(client, empty):
    """Checked at every operation, not only when linked."""
    from tests.support.network import rebinding

    with rebinding() as (public, private):
        link(client, empty, {"path": f"http://localhost:{public.port}/r.git [a.zip]"})
    pushed = push(client, empty)
    assert pushed["status"] == "failed" and "not a public one" in pushed["stderr"]
    assert private.requests == []
