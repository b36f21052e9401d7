"""The authorization matrix: every operation of the OpenAPI document, asked by every role.

EXPECTED is the policy, not a record of today's answers. README "Roles": admins see
everything; a task's owner and assignee (and its project's owner and assignee) see and edit
it; a job's assignee and reviewer see that job and read its task; workers see only what they
are assigned; observers read everything and change nothing; objects you may not see answer
404. The finer rules are labelyard/services/access.py's; the work face (/api/platform/v1)
has rules of its own, written above its rows. The table is checked against
``app.openapi()``, so a new endpoint fails test_every_operation_has_a_row until it has a row;
a row the server contradicts is listed in BUGS (strict xfail) instead of bent to fit.

One world serves the whole module (it has real media, exports and a git repository, too
slow to make per test); what a request destroys or uses up (a deleted task, a cancelled
operation, a logged-out token) is made afresh for each role.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from labelyard.app import create_app
from labelyard.config import Settings
from labelyard.domain import (
    DEFAULT_SPACE_ID,
    ApiToken,
    Dataset,
    Space,
    SpaceMember,
    Task,
    TaskState,
    User,
)
from labelyard.services import operations, passwords
from labelyard.services.auth import _digest, new_token_key
from tests.conftest import _empty
from tests.factories import PASSWORD, Factory
from tests.support.media import jpeg

API = "/api/v1"
WORK = "/api/platform/v1"
FORMAT = "CVAT for images 1.1"
MISSING_ID, MISSING_KEY = 987654, "00000000-0000-0000-0000-000000000000"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})

ROLES = ("owner", "assignee", "annotator", "reviewer", "other", "observer", "anon")
GROUPS = {
    "owner": ("user",),  # owns the project, the tasks, the datasets and the operations
    "assignee": ("user",),  # the tasks' assignee
    "annotator": ("worker",),  # assignee of the task's first job
    "reviewer": ("user",),  # reviewer of that job
    "other": ("user",),  # a user with nothing
    "observer": ("observer",),
}
OK, HIDDEN, DENIED, ANON = "ok", "hidden", "denied", "anon"
# ok: authorized (any answer but 401, 403 or a 404 that hides the object; never a 5xx);
# hidden: 404 as for an object that does not exist, the object is invisible to the role (on
# a list: the world's object is not in it); denied: 403, visible but not allowed; anon: 401.
# Keys are "METHOD path", the path under /api/v1 unless it starts with "/"; a key with a "?"
# is one use of an operation (an export, an import, a backup, one signal) that the row's
# request in REQUESTS selects by its query or its body.
EVERYONE = "ok     ok     ok     ok     ok     ok     ok"
SIGNED_IN = "ok     ok     ok     ok     ok     ok     anon"
READ_TASK = "ok     ok     ok     ok     hidden ok     anon"  # the task, or its first job
WORK_JOB = "ok     ok     ok     ok     hidden denied anon"
CHANGE_TASK = "ok     ok     denied denied hidden denied anon"
OWN_TASK = "ok     denied denied denied hidden denied anon"  # deleting, results: the owner's
READ_PROJECT = "ok     ok     hidden hidden hidden ok     anon"
CHANGE_PROJECT = "ok     denied hidden hidden hidden denied anon"
CREATE = "ok     ok     denied ok     ok     denied anon"  # workers and observers create nothing
READ_DATASET = "ok     hidden hidden hidden hidden ok     anon"  # a dataset is its owner's
CHANGE_DATASET = "ok     hidden hidden hidden hidden denied anon"
MINE = "ok     hidden hidden hidden hidden hidden anon"  # operations, client events
#                                               owner  asgn   annot  review other  obsrv  anon
EXPECTED: dict[str, str] = {
    "POST auth/login":                             EVERYONE,
    "POST auth/logout":                            EVERYONE,
    "POST auth/register":                          EVERYONE,
    "POST auth/password/change":                   SIGNED_IN,
    "GET users":                                   SIGNED_IN,
    "GET users/self":                              SIGNED_IN,
    "GET users/{user_id}":                         SIGNED_IN,  # the owner: names are public
    "PATCH users/{user_id}":                       "ok     denied denied denied denied denied anon",
    "DELETE users/{user_id}":                      "denied denied denied denied denied denied anon",
    "GET projects":                                READ_PROJECT,
    "POST projects":                               CREATE,
    "GET projects/{project_id}":                   READ_PROJECT,
    "PUT projects/{project_id}":                   CHANGE_PROJECT,
    "PATCH projects/{project_id}":                 CHANGE_PROJECT,
    "DELETE projects/{project_id}":                CHANGE_PROJECT,
    "GET projects/{project_id}/tasks":             READ_PROJECT,
    "GET tasks":                                   READ_TASK,
    "POST tasks":                                  CREATE,
    "POST tasks?action=import":                    CREATE,  # a restore makes a task
    "GET tasks/{task_id}":                         READ_TASK,
    "GET tasks/{task_id}?action=export":           READ_TASK,  # a backup: whoever sees it
    "PUT tasks/{task_id}":                         CHANGE_TASK,
    "PATCH tasks/{task_id}":                       CHANGE_TASK,
    "DELETE tasks/{task_id}":                      OWN_TASK,
    "GET tasks/{task_id}/jobs":                    READ_TASK,
    "GET tasks/{task_id}/publish":                 CHANGE_TASK,
    "POST tasks/{task_id}/data":                   CHANGE_TASK,
    "GET tasks/{task_id}/data":                    READ_TASK,
    "GET tasks/{task_id}/status":                  READ_TASK,
    "GET tasks/{task_id}/data/meta":               READ_TASK,
    "GET jobs/{job_id}/data/meta":                 READ_TASK,
    "GET jobs/{job_id}/data":                      READ_TASK,
    "GET server/share":                            SIGNED_IN,
    "GET jobs":                                    READ_TASK,
    "GET jobs/{job_id}":                           READ_TASK,
    "PUT jobs/{job_id}":                           WORK_JOB,
    "PATCH jobs/{job_id}":                         WORK_JOB,
    "GET jobs/{job_id}/annotations":               READ_TASK,
    "GET jobs/{job_id}/annotations?format":        READ_TASK,  # an export
    "PUT jobs/{job_id}/annotations":               WORK_JOB,
    "PUT jobs/{job_id}/annotations?format":        WORK_JOB,  # an import of a file
    "PATCH jobs/{job_id}/annotations":             WORK_JOB,
    "DELETE jobs/{job_id}/annotations":            WORK_JOB,
    "GET jobs/{job_id}/dataset":                   READ_TASK,
    "GET tasks/{task_id}/annotations":             READ_TASK,
    "GET tasks/{task_id}/annotations?format":      READ_TASK,
    "PUT tasks/{task_id}/annotations":             CHANGE_TASK,
    "PUT tasks/{task_id}/annotations?format":      CHANGE_TASK,
    "PATCH tasks/{task_id}/annotations":           CHANGE_TASK,
    "DELETE tasks/{task_id}/annotations":          CHANGE_TASK,
    "GET tasks/{task_id}/dataset":                 READ_TASK,
    "GET projects/{project_id}/annotations":       READ_PROJECT,
    "GET projects/{project_id}/dataset":           READ_PROJECT,
    "GET server/about":                            EVERYONE,
    "GET server/plugins":                          SIGNED_IN,
    "GET server/annotation/formats":               SIGNED_IN,
    "POST server/logs":                            SIGNED_IN,  # one's own client events
    "GET server/logs":                             MINE,
    "POST server/exception":                       SIGNED_IN,
    "GET restrictions/terms-of-use":               EVERYONE,
    "GET restrictions/user-agreements":            EVERYONE,
    "GET operations":                              MINE,
    "GET operations/{operation_id}":               MINE,
    "POST operations/{operation_id}/retry":        MINE,
    "POST operations/{operation_id}/cancel":       MINE,
    "GET datasets":                                READ_DATASET,
    "POST datasets":                               CREATE,
    "PATCH datasets":                              CHANGE_DATASET,
    "GET datasets/{dataset_id}":                   READ_DATASET,
    "PATCH datasets/{dataset_id}":                 CHANGE_DATASET,
    "DELETE datasets/{dataset_id}":                CHANGE_DATASET,
    "POST datasets/{dataset_id}/batchs":           CHANGE_DATASET,
    "GET datasets/process/{upload_id}":            MINE,
    "GET datas":                                   READ_DATASET,
    "POST datasets/exports":                       READ_DATASET,  # a download, not a change
    "GET datasets/exports/{export_id}":            MINE,
    "POST exports":                                OWN_TASK,
    "GET exports/{export_id}":                     MINE,
    "GET datasets/{dataset_id}/versions":          READ_DATASET,
    "GET storage/{key}":                           EVERYONE,  # the signature is the credential
    "POST /git/repository/create/{task_id}":       CHANGE_TASK,
    "GET /git/repository/get/{task_id}":           READ_TASK,
    "GET /git/repository/push/{task_id}":          WORK_JOB,  # whoever sees it, but observers
    "GET /git/repository/check/{rq_id}":           MINE,
    "GET /git/repository/meta/get":                READ_TASK,
    "GET health":                                  EVERYONE,
    "GET docs":                                    EVERYONE,
    "GET schema":                                  EVERYONE,
}  # fmt: skip

# The work face (/api/platform/v1) asks who belongs to a space and who manages a project's
# work, not who owns or is assigned a task:
# - Everyone signed in belongs to the default space, which holds the world's project: every
#   signed-in role sees the project, its batches and workflow, and the space's projects,
#   members and work.
# - Its work is managed (items and batches made, the workflow changed, seed 003 tasks
#   changed, items cancelled and reopened, file and label tasks made) by admins, business
#   users and the project's owner and assignee (access.manages_work): here the owner only,
#   as the project has no assignee; the "assignee" role (the CVAT tasks') is a worker.
# - Workers (the other roles who may write) see only the items assigned to or claimed by
#   them, or that they labelled or reviewed (any other is not found); they take items with
#   `next` (200, or 204 when there is none) and signal the items they hold. The world's item
#   is held by the annotator; the items reviewed, by the reviewer.
# - Observers read everything, items too, and change nothing: writes and `next` are 403.
# - Spaces, their members and moving a project to another space are the admins' (no role).
# - Space members who may write get upload URLs; observers get download URLs, but not upload
#   URLs; an upload URL's signature is its credential, as for storage/{key}.
MANAGES = "ok     denied denied denied denied denied anon"
ADMINS = "denied denied denied denied denied denied anon"
WORKS = "ok     ok     ok     ok     ok     denied anon"
SEE_HELD = "ok     hidden ok     hidden hidden ok     anon"  # the annotator's item
WORK_HELD = "ok     hidden ok     hidden hidden denied anon"
MANAGE_HELD = "ok     hidden denied hidden hidden denied anon"  # its holder sees it, no more
REVIEW_HELD = "ok     hidden denied ok     hidden denied anon"  # the reviewer holds its review
OVERSEE = "ok     hidden ok     hidden hidden ok     anon"  # by email: in projects one manages
WORK_FACE: dict[str, str] = {
    "GET spaces":                                                          SIGNED_IN,
    "POST spaces":                                                         ADMINS,
    "GET spaces/{space_id}/members":                                       SIGNED_IN,
    "POST spaces/{space_id}/members":                                      ADMINS,
    "DELETE spaces/{space_id}/members/{user_id}":                          ADMINS,
    "GET spaces/{space_id}/projects":                                      SIGNED_IN,
    "GET spaces/{space_id}/projects/{project_id}":                         SIGNED_IN,
    "PATCH spaces/{space_id}/projects/{project_id}":                       MANAGES,
    "PATCH spaces/{space_id}/projects/{project_id}?spaceID":               ADMINS,  # a move
    "GET projects/{project_id}/workflow":                                  SIGNED_IN,
    "PUT projects/{project_id}/workflow":                                  MANAGES,
    "GET projects/{project_id}/batches":                                   SIGNED_IN,
    "POST projects/{project_id}/batches":                                  MANAGES,
    "PATCH projects/{project_id}/batches/{batch_id}":                      MANAGES,
    "GET projects/{project_id}/work-items":                                SEE_HELD,
    "POST projects/{project_id}/work-items":                               MANAGES,
    "GET projects/{project_id}/work-items/{work_item_id}":                 SEE_HELD,
    "PUT projects/{project_id}/work-items/{work_item_id}/labels":          WORK_HELD,
    "GET projects/{project_id}/work-items/{work_item_id}/annotations":     SEE_HELD,
    "GET projects/{project_id}/work-items/{work_item_id}/signals":         SEE_HELD,
    "POST projects/{project_id}/work-items/{work_item_id}/signals":        WORK_HELD,  # complete
    "POST projects/{project_id}/work-items/{work_item_id}/signals?cancel": MANAGE_HELD,
    "POST projects/{project_id}/work-items/{work_item_id}/signals?reopen": MANAGE_HELD,
    "POST projects/{project_id}/work-items/signals":                       WORK_HELD,  # a bulk
    "POST projects/{project_id}/work-items/next":                          WORKS,
    "GET datasets/{dataset_id}/tasks":                                     SEE_HELD,
    "POST datasets/{dataset_id}/file-tasks":                               MANAGES,
    "POST datasets/{dataset_id}/label-tasks":                              MANAGES,
    "POST tasks/{task_id}":                                                MANAGE_HELD,
    "POST tasks/{task_id}/accept":                                         REVIEW_HELD,
    "POST tasks/{task_id}/reject":                                         REVIEW_HELD,
    "GET clients/{client_id}/tasks":                                       OVERSEE,
    "GET clients/{client_id}/delayed-tasks":                               SEE_HELD,
    "POST spaces/{space_id}/upload-urls":                                  WORKS,
    "POST spaces/{space_id}/download-urls":                                SIGNED_IN,
    "PUT uploads/{space_uuid}/{path}":                                     EVERYONE,  # a signed URL
}  # fmt: skip


def work(key: str) -> str:
    """A work face row's key in EXPECTED: ``GET spaces`` -> ``GET /api/platform/v1/spaces``."""
    return key.replace(" ", f" {WORK}/", 1)


EXPECTED.update({work(key): row for key, row in WORK_FACE.items()})
# Served, but not operations of the OpenAPI document: the documentation itself.
UNLISTED = frozenset({"GET docs", "GET schema"})
# Rows where the server contradicts the policy: operation -> what it does instead.
BUGS: dict[str, str] = {}


def url(path: str) -> str:
    return path if path.startswith("/") else f"{API}/{path}"


def operation_id(key: str) -> str:
    """``GET tasks/{task_id}?action=export`` -> ``GET /api/v1/tasks/{task_id}?action=export``."""
    method, path = key.split(" ", 1)
    return f"{method} {url(path)}"


def operation_of(key: str) -> str:
    """The OpenAPI operation a row asks: a row after "?" is one use of it (the query or
    the body the row's Call sends tells the server so)."""
    return operation_id(key).partition("?")[0]


def on_work_face(key: str) -> bool:
    return url(key.split(" ", 1)[1]).startswith(f"{WORK}/")


@dataclass
class Call:
    """What one role sends: path parameters over the world's, a query, a body, headers."""

    ids: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, Any] | None = None
    files: list[Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    app: FastAPI
    client: TestClient
    factory: Factory
    root: Path
    users: dict[str, User]
    # The value of each path parameter, unless a row's Call says otherwise; the work face
    # names its own objects (UUIDs mostly) with the same parameter names.
    ids: dict[str, Any] = field(default_factory=dict)
    work_ids: dict[str, Any] = field(default_factory=dict)
    # Everything else requests refer to: other ids, the label, a signed URL's query.
    refs: dict[str, Any] = field(default_factory=dict)
    serial: Iterator[int] = field(default_factory=itertools.count)

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "anon" else self.factory.headers(self.users[role])

    def seed(
        self, method: str, path: str, status: int = 200, *, role: str = "owner", **kwargs: Any
    ) -> Any:
        """A request (the owner's, unless ``role`` says) that builds the world and must
        succeed."""
        response = self.client.request(method, url(path), headers=self.headers(role), **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def wait(self, operation: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while True:
            body = self.seed("GET", f"operations/{operation}")
            if body["status"] in ("finished", "failed", "cancelled"):
                return body
            assert time.monotonic() < deadline, body
            time.sleep(0.02)

    def download(self, path: str, query: dict[str, str]) -> bytes:
        """An export's file: asked for until it is made (201), then downloaded."""
        owner, deadline = self.headers("owner"), time.monotonic() + 30
        while (made := self.client.get(url(path), params=query, headers=owner)).status_code == 202:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert made.status_code == 201, made.text
        query = query | {"action": "download"}
        response = self.client.get(url(path), params=query, headers=owner)
        assert response.status_code == 200, response.text
        return response.content

    def name(self, prefix: str) -> str:
        return f"{prefix}{next(self.serial)}"

    def published(self) -> Call:
        """Nothing to send; but wait for the last publish to end, which would refuse
        the next one with 409."""
        deadline = time.monotonic() + 30
        path = f"datasets/{self.refs['task_dataset']}/versions"
        while any(v["status"] == "building" for v in self.seed("GET", path)):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return Call()

    # --- what a request uses up, made afresh for each role ---------------------------

    def fresh_task(self, project: Any = None) -> int:
        """A task like the world's: the assignee's, its job the annotator's and the
        reviewer's (frames and jobs cut as data would cut them)."""
        users = self.users
        task = self.factory.task(
            users["owner"], self.name("task"), assignee=users["assignee"],
            project=project if project is not None else self.refs["project"], frames=2,
            job_assignees=[users["annotator"]], job_reviewers=[users["reviewer"]],
        )  # fmt: skip
        return task.id

    def fresh_project(self) -> int:
        project = self.factory.project(self.users["owner"], self.name("project"))
        self.fresh_task(project)
        return project.id

    def fresh_dataset(self) -> int:
        dataset: int = self.seed("POST", "datasets", 201, json={"name": self.name("data")})["id"]
        return dataset

    def fresh_user(self) -> int:
        return self.factory.user(self.name("victim")).id

    def queued_operation(self) -> str:
        """An operation of the owner's, queued and never started."""
        with self.factory.uow() as uow:
            operation = operations.create(uow, kind="test.echo", owner_id=self.users["owner"].id)
            operation_id = operation.id
            uow.commit()
        return operation_id

    def spare_headers(self, role: str) -> dict[str, str]:
        """Credentials of the role's that a logout may forget, sparing the world's."""
        if role == "anon":
            return {}
        key = new_token_key()
        with self.factory.uow() as uow:
            uow.session.add(ApiToken(user_id=self.users[role].id, key_hash=_digest(key)))
            uow.commit()
        return {"Authorization": f"Token {key}"}

    # --- the work face's objects, made afresh for each role -------------------------

    def work_item(self, **fields: Any) -> str:
        """A new work item of the owner's, on the work task's first image."""
        body = {"assetId": self.refs["work_asset"], "assetType": "image", **fields}
        item: str = self.seed("POST", f"{self.work_project}/work-items", 201, json=body)["id"]
        return item

    def signal(
        self, item: str, signal: str, task_type: str, role: str = "owner", **fields: Any
    ) -> None:
        body = {"signal": signal, "taskType": task_type, **fields}
        self.seed("POST", f"{self.work_project}/work-items/{item}/signals", role=role, json=body)

    def held_item(self) -> str:
        """An item the owner started for the annotator: the annotator holds it."""
        item = self.work_item()
        self.signal(item, "start", "labeling", assignee=self.users["annotator"].email)
        return item

    def cancelled_item(self) -> str:
        """An item the annotator held, cancelled: failed, and still the annotator's."""
        item = self.held_item()
        self.signal(item, "cancel", "labeling")
        return item

    def reviewed_item(self) -> str:
        """An item the annotator labelled, whose review the reviewer holds."""
        item = self.held_item()
        self.signal(item, "complete", "labeling", role="annotator")
        self.signal(item, "start", "review", assignee=self.users["reviewer"].email)
        return item

    def first_in_queue(self) -> Call:
        """An item due sooner than any other in the queue, so that the role's `next` has
        one to claim (and takes no item another row needs)."""
        self.work_item(dueInSeconds=3600)
        return Call(query={"taskType": "labeling"})

    def upload_link(self) -> Call:
        """A fresh upload URL of the owner's (each stores one file), and an image for it."""
        body = self.seed("POST", f"{WORK}/spaces/{self.work_ids['space_id']}/upload-urls")
        signed = httpx.URL(body["items"][0]["signedUrl"])
        space, path = signed.path.removeprefix(f"{WORK}/uploads/").split("/", 1)
        return Call(
            ids={"space_uuid": space, "path": path}, query=dict(signed.params),
            content=jpeg(), headers={"Content-Type": "image/jpeg"},
        )  # fmt: skip

    def fresh_work_project(self) -> str:
        """A project of the owner's in the default space, that a move may take away."""
        return self.factory.project(self.users["owner"], self.name("project")).uuid

    def fresh_member(self) -> str:
        """A member of the crew space, that a removal may take away: their UUID."""
        user = self.factory.user(self.name("member"))
        with self.factory.uow() as uow:
            uow.session.add(SpaceMember(space_id=self.refs["crew"], user_id=user.id))
            uow.commit()
        return user.uuid

    @property
    def work_project(self) -> str:
        return f"{WORK}/projects/{self.work_ids['project_id']}"


def box(world: World) -> dict[str, Any]:
    shape = {"type": "rectangle", "frame": 0, "label_id": world.refs["label"],
             "points": [2, 3, 20, 30]}  # fmt: skip
    return {"tags": [], "shapes": [shape], "tracks": []}


def results(world: World) -> dict[str, Any]:
    """The completed task's results, to a directory under the export roots."""
    address = {"kind": "local", "path": str(world.root / "exports" / "out")}
    return {"task_id": world.refs["completed_task"], "format": FORMAT, "address": address}


def images(count: int, field_name: str = "client_files[{n}]") -> list[Any]:
    return [(field_name.format(n=n), (f"{n}.jpg", jpeg(shade=n * 40))) for n in range(count)]


def listed(body: Any) -> set[Any]:
    rows = body["results"] if isinstance(body, dict) else body
    return {row["id"] for row in rows}


def holds_item(world: World, tasks: list[dict[str, Any]]) -> bool:
    """Whether seed 003 tasks include a stage of the world's work item."""
    return world.work_ids["work_item_id"] in {task["workItemID"] for task in tasks}


# Lists answer 200 to everyone signed in; a role sees the world's object in them or not.
LISTS: dict[str, Callable[[World, Any], bool]] = {
    "GET users": lambda w, body: w.users["owner"].id in listed(body),
    "GET projects": lambda w, body: w.ids["project_id"] in listed(body),
    "GET projects/{project_id}/tasks": lambda w, body: w.ids["task_id"] in listed(body),
    "GET tasks": lambda w, body: w.ids["task_id"] in listed(body),
    "GET tasks/{task_id}/jobs": lambda w, body: w.ids["job_id"] in listed(body),
    "GET jobs": lambda w, body: w.ids["job_id"] in listed(body),
    "GET server/logs": lambda w, body: w.refs["event"] in listed(body),
    "GET operations": lambda w, body: w.ids["operation_id"] in listed(body),
    "GET datasets": lambda w, body: w.ids["dataset_id"] in listed(body),
    "GET datas": lambda w, body: w.refs["item"] in listed(body),
    "GET /git/repository/meta/get": lambda w, body: str(w.ids["task_id"]) in body,
    work("GET spaces"): lambda w, body: w.work_ids["space_id"] in listed(body["items"]),
    work("GET spaces/{space_id}/members"): lambda w, body: (
        w.users["owner"].id in {member["legacyId"] for member in body["items"]}
    ),
    work("GET spaces/{space_id}/projects"): lambda w, body: (
        w.work_ids["project_id"] in listed(body["items"])
    ),
    work("GET projects/{project_id}/batches"): lambda w, body: (
        w.work_ids["batch_id"] in listed(body["items"])
    ),
    work("GET projects/{project_id}/work-items"): lambda w, body: (
        w.work_ids["work_item_id"] in listed(body["items"])
    ),
    work("GET datasets/{dataset_id}/tasks"): lambda w, body: holds_item(w, body["tasks"]),
    work("GET clients/{client_id}/tasks"): lambda w, body: holds_item(w, body["file_tasks"]),
    work("GET clients/{client_id}/delayed-tasks"): lambda w, body: holds_item(
        w, body["delayed tasks"]
    ),
}
# A bulk signal answers 200 with each item's own answer: that is the row's.
BULK_SIGNAL = work("POST projects/{project_id}/work-items/signals")
EVERYTHING = Call(query={"page_size": "all"})
COMPLETE = {"signal": "complete", "taskType": "labeling"}

Spec = Call | Callable[[World, str], Call]
# What each row sends beyond its path; a row not named here sends its path alone.
REQUESTS: dict[str, Spec] = {
    **dict.fromkeys([key for key in LISTS if not on_work_face(key)], EVERYTHING),
    "POST auth/login": lambda w, role: Call(
        json={"username": "other" if role == "anon" else role, "password": PASSWORD}
    ),
    "POST auth/logout": lambda w, role: Call(headers=w.spare_headers(role)),
    "POST auth/register": lambda w, role: Call(
        json={"username": w.name("newcomer"), "password1": PASSWORD, "password2": PASSWORD}
    ),
    "POST auth/password/change": Call(
        json={"old_password": PASSWORD, "new_password1": PASSWORD, "new_password2": PASSWORD}
    ),
    "PATCH users/{user_id}": Call(json={"first_name": "Ada"}),
    "DELETE users/{user_id}": lambda w, role: Call(ids={"user_id": w.fresh_user()}),
    "POST projects": Call(json={"name": "new project"}),
    "PUT projects/{project_id}": Call(json={"name": "project"}),
    "PATCH projects/{project_id}": Call(json={"bug_tracker": "https://bugs.example.com/1"}),
    "DELETE projects/{project_id}": lambda w, role: Call(ids={"project_id": w.fresh_project()}),
    "POST tasks": Call(json={"name": "new task", "labels": [{"name": "car"}]}),
    "POST tasks?action=import": lambda w, role: Call(
        query={"action": "import"}, files=[("task_file", ("task.zip", w.refs["backup"]))]
    ),
    "GET tasks/{task_id}?action=export": Call(query={"action": "export"}),
    "PUT tasks/{task_id}": Call(json={"name": "task"}),
    "PATCH tasks/{task_id}": Call(json={"bug_tracker": "https://bugs.example.com/2"}),
    "DELETE tasks/{task_id}": lambda w, role: Call(ids={"task_id": w.fresh_task()}),
    "GET tasks/{task_id}/publish": lambda w, role: w.published(),
    "POST tasks/{task_id}/data": lambda w, role: Call(
        ids={"task_id": w.fresh_task()}, data={"image_quality": "70"}, files=images(1)
    ),
    "GET tasks/{task_id}/data": Call(query={"type": "frame", "number": 0}),
    "GET jobs/{job_id}/data": Call(query={"type": "frame", "number": 0}),
    "GET server/share": Call(query={"directory": "/"}),
    "PUT jobs/{job_id}": Call(json={"status": "annotation"}),
    "PATCH jobs/{job_id}": Call(json={"status": "validation"}),
    "PUT jobs/{job_id}/annotations": lambda w, role: Call(json=box(w)),
    "PATCH jobs/{job_id}/annotations": lambda w, role: Call(
        query={"action": "create"}, json=box(w)
    ),
    "GET jobs/{job_id}/dataset": Call(query={"format": FORMAT}),
    "GET jobs/{job_id}/annotations?format": Call(query={"format": FORMAT}),
    "PUT jobs/{job_id}/annotations?format": lambda w, role: Call(
        query={"format": FORMAT}, files=[("annotation_file", ("job.zip", w.refs["annotations"]))]
    ),
    "GET tasks/{task_id}/annotations?format": Call(query={"format": FORMAT}),
    "PUT tasks/{task_id}/annotations?format": lambda w, role: Call(
        query={"format": FORMAT}, files=[("annotation_file", ("job.zip", w.refs["annotations"]))]
    ),
    "PUT tasks/{task_id}/annotations": lambda w, role: Call(json=box(w)),
    "PATCH tasks/{task_id}/annotations": lambda w, role: Call(
        query={"action": "create"}, json=box(w)
    ),
    "GET tasks/{task_id}/dataset": Call(query={"format": FORMAT}),
    "GET projects/{project_id}/annotations": Call(query={"format": FORMAT}),
    "GET projects/{project_id}/dataset": Call(query={"format": FORMAT}),
    "POST server/logs": Call(json=[{"name": "matrix", "time": "2024-01-01T00:00:00Z"}]),
    "POST server/exception": Call(json={"time": "2024-01-01T00:00:00Z", "message": "boom"}),
    "POST operations/{operation_id}/retry": lambda w, role: Call(
        ids={"operation_id": w.refs["failed_operation"]}
    ),
    "POST operations/{operation_id}/cancel": lambda w, role: Call(
        ids={"operation_id": w.queued_operation()}
    ),
    "POST datasets": Call(json={"name": "new dataset"}),
    "PATCH datasets": lambda w, role: Call(
        json={"id": w.ids["dataset_id"], "description": "by body"}
    ),
    "PATCH datasets/{dataset_id}": Call(json={"description": "by path"}),
    "DELETE datasets/{dataset_id}": lambda w, role: Call(ids={"dataset_id": w.fresh_dataset()}),
    "POST datasets/{dataset_id}/batchs": Call(files=images(1, "files")),
    "POST datasets/exports": lambda w, role: Call(json={"dataset_id": w.ids["dataset_id"]}),
    "POST exports": lambda w, role: Call(json=results(w)),
    "GET exports/{export_id}": lambda w, role: Call(ids={"export_id": w.refs["task_export"]}),
    "GET datasets/{dataset_id}/versions": lambda w, role: Call(
        ids={"dataset_id": w.refs["task_dataset"]}
    ),
    "GET storage/{key}": lambda w, role: Call(query=w.refs["signature"]),
    "POST /git/repository/create/{task_id}": lambda w, role: Call(
        json={"path": str(w.refs["repository"]), "format": FORMAT}
    ),
    work("POST spaces"): Call(json={"name": "new space"}),
    work("POST spaces/{space_id}/members"): lambda w, role: Call(
        ids={"space_id": w.refs["crew_uuid"]},
        json={"email": w.factory.user(w.name("joiner")).email},
    ),
    work("DELETE spaces/{space_id}/members/{user_id}"): lambda w, role: Call(
        ids={"space_id": w.refs["crew_uuid"], "user_id": w.fresh_member()}
    ),
    work("PATCH spaces/{space_id}/projects/{project_id}"): Call(json={"description": "roads"}),
    work("PATCH spaces/{space_id}/projects/{project_id}?spaceID"): lambda w, role: Call(
        ids={"project_id": w.fresh_work_project()}, json={"spaceID": w.refs["crew_uuid"]}
    ),
    work("PUT projects/{project_id}/workflow"): Call(
        json={"stages": [{"taskType": "labeling"}, {"taskType": "review", "review": True}]}
    ),
    work("POST projects/{project_id}/batches"): lambda w, role: Call(json={"name": w.name("b")}),
    work("PATCH projects/{project_id}/batches/{batch_id}"): Call(json={"metadata": {"k": 1}}),
    work("GET projects/{project_id}/work-items"): lambda w, role: Call(
        query={"workItemIDs": w.work_ids["work_item_id"]}
    ),
    work("POST projects/{project_id}/work-items"): lambda w, role: Call(
        json={"assetId": w.refs["work_asset"], "assetType": "image"}
    ),
    work("PUT projects/{project_id}/work-items/{work_item_id}/labels"): Call(
        json={"labels": [{"bbox": [2, 3, 18, 27], "label": "car"}]}
    ),
    work("POST projects/{project_id}/work-items/{work_item_id}/signals"): lambda w, role: Call(
        ids={"work_item_id": w.held_item()}, json=COMPLETE
    ),
    work("POST projects/{project_id}/work-items/{work_item_id}/signals?cancel"): (
        lambda w, role: Call(
            ids={"work_item_id": w.held_item()}, json={"signal": "cancel", "taskType": "labeling"}
        )
    ),
    work("POST projects/{project_id}/work-items/{work_item_id}/signals?reopen"): (
        lambda w, role: Call(
            ids={"work_item_id": w.cancelled_item()},
            json={"signal": "reopen", "taskType": "labeling"},
        )
    ),
    BULK_SIGNAL: lambda w, role: Call(
        json=COMPLETE | {"workItems": [{"workItemID": w.held_item()}]}
    ),
    work("POST projects/{project_id}/work-items/next"): lambda w, role: w.first_in_queue(),
    work("POST tasks/{task_id}"): Call(json={"difficulty": 5}),
    work("POST tasks/{task_id}/accept"): lambda w, role: Call(
        ids={"task_id": f"{w.reviewed_item()}:review"}
    ),
    work("POST tasks/{task_id}/reject"): lambda w, role: Call(
        ids={"task_id": f"{w.reviewed_item()}:review"}, json={"comments": ["a loose box"]}
    ),
    work("GET clients/{client_id}/tasks"): lambda w, role: Call(
        query={"email": w.users["annotator"].email}
    ),
    work("POST spaces/{space_id}/download-urls"): lambda w, role: Call(
        json={"paths": [w.refs["upload_path"]]}
    ),
    work("PUT uploads/{space_uuid}/{path}"): lambda w, role: w.upload_link(),
}


def git(*args: str, cwd: Path | None = None) -> None:
    command = ["git", "-c", "user.name=matrix", "-c", "user.email=matrix@example.com", *args]
    subprocess.run(command, cwd=cwd, capture_output=True, check=True)


def bare_repository(root: Path) -> Path:
    """A bare repository under the export roots whose default branch holds a README."""
    bare, work = root / "exports" / "annotations.git", root / "seed"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git("init", "--quiet", "--initial-branch=main", str(work))
    (work / "README.md").write_text("labels live here\n")
    git("add", "README.md", cwd=work)
    git("commit", "--quiet", "-m", "start", cwd=work)
    git("push", "--quiet", str(bare), "main", cwd=work)
    return bare


def build(world: World) -> None:
    """The owner's project and task (four images, two jobs of two frames; the first job
    the annotator's and the reviewer's), a box on frame 0, a dataset with a batch, a
    completed task, a linked repository, and an operation, upload and export of each
    kind, all the owner's."""
    users, refs = world.users, world.refs
    project = world.factory.project(users["owner"], "project", labels=("car",))
    refs["project"] = project
    refs["label"] = world.seed("GET", f"projects/{project.id}")["labels"][0]["id"]
    task = world.seed("POST", "tasks", 201, json={
        "name": "task", "project_id": project.id, "assignee_id": users["assignee"].id,
        "segment_size": 2,
    })["id"]  # fmt: skip
    added = world.seed("POST", f"tasks/{task}/data", 202, data={"image_quality": "70"},
                       files=images(4))  # fmt: skip
    assert world.wait(added["operation_id"])["status"] == "finished"
    job = min(job["id"] for job in world.seed("GET", f"tasks/{task}/jobs"))
    people = {"assignee": users["annotator"].id, "reviewer": users["reviewer"].id}
    world.seed("PATCH", f"jobs/{job}", json=people)
    world.seed("PUT", f"jobs/{job}/annotations", json=box(world))
    refs["annotations"] = world.download(f"jobs/{job}/annotations", {"format": FORMAT})
    refs["backup"] = world.download(f"tasks/{task}", {"action": "export"})
    refs["task_dataset"] = world.seed("GET", f"tasks/{task}")["dataset_id"]
    item = world.seed("GET", "datas", params={"dataset_id": refs["task_dataset"]})["results"][0]
    signed = httpx.URL(item["url"])
    refs["signature"] = dict(signed.params)
    event = {"name": "seed", "time": "2024-01-01T00:00:00Z"}
    refs["event"] = world.seed("POST", "server/logs", 201, json=[event])[0]["id"]

    dataset = world.seed("POST", "datasets", 201, json={"name": "dogs"})["id"]
    upload = world.seed("POST", f"datasets/{dataset}/batchs", 202, files=images(1, "files"))
    assert world.wait(upload["upload_id"])["status"] == "finished"
    refs["item"] = world.seed("GET", "datas", params={"dataset_id": dataset})["results"][0]["id"]
    dataset_export = world.seed("POST", "datasets/exports", 202, json={"dataset_id": dataset})

    completed = world.fresh_task()
    with world.factory.uow() as uow:
        uow.session.get_one(Task, completed).state = TaskState.COMPLETED
        failed = operations.create(uow, kind="test.fail", owner_id=users["owner"].id)
        refs["failed_operation"] = failed.id
        uow.commit()
    world.app.state.runner.submit(refs["failed_operation"])
    refs["completed_task"] = completed
    refs["task_export"] = world.seed("POST", "exports", 202, json=results(world))["export_id"]

    refs["repository"] = bare_repository(world.root)
    link = world.seed("POST", f"/git/repository/create/{task}", 202,
                      json={"path": str(refs["repository"]), "format": FORMAT})  # fmt: skip
    world.wait(link["rq_id"])
    assert world.wait(refs["failed_operation"])["status"] == "failed"

    world.ids.update(
        task_id=task, job_id=job, project_id=project.id, dataset_id=dataset,
        user_id=users["owner"].id, operation_id=added["operation_id"],
        upload_id=upload["upload_id"], export_id=dataset_export["export_id"],
        rq_id=link["rq_id"], key=signed.path.removeprefix(f"{API}/storage/"),
    )  # fmt: skip


def build_work(world: World) -> None:
    """The work face's: a task of the project on three images of its own (so that no
    work item touches the CVAT rows' task), a batch, the world's work item on its first
    image (held by the annotator, and overdue), a file uploaded to the default space, and
    a space of its own (crew) whose members are all the roles."""
    users, refs, project = world.users, world.refs, world.refs["project"]
    task = world.seed("POST", "tasks", 201, json={"name": "work", "project_id": project.id})["id"]
    added = world.seed("POST", f"tasks/{task}/data", 202, data={"image_quality": "70"},
                       files=images(3))  # fmt: skip
    assert world.wait(added["operation_id"])["status"] == "finished"
    dataset = world.seed("GET", f"tasks/{task}")["dataset_id"]
    refs["work_asset"] = min(
        asset["id"]
        for asset in world.seed("GET", "datas", params={"dataset_id": dataset})["results"]
    )
    with world.factory.uow() as uow:
        default = uow.session.get_one(Space, DEFAULT_SPACE_ID).uuid
        dataset_uuid = uow.session.get_one(Dataset, dataset).uuid
        crew = Space(name="crew")
        uow.session.add(crew)
        uow.flush()
        uow.session.add_all(
            SpaceMember(space_id=crew.id, user_id=user.id) for user in users.values()
        )
        refs["crew"], refs["crew_uuid"] = crew.id, crew.uuid
        uow.commit()
    world.work_ids.update(space_id=default, client_id=default, project_id=project.uuid)

    batch = world.seed("POST", f"{world.work_project}/batches", 201, json={"name": "matrix"})
    item = world.held_item()
    world.seed("POST", f"{WORK}/tasks/{item}:labeling", json={"due": "2020-01-01T00:00:00Z"})
    link = world.upload_link()
    path = f"{WORK}/uploads/{link.ids['space_uuid']}/{link.ids['path']}"
    uploaded = world.client.put(path, params=link.query, content=link.content, headers=link.headers)
    assert uploaded.status_code == 201, uploaded.text
    refs["upload_path"] = link.ids["path"]
    world.work_ids.update(
        batch_id=batch["id"], work_item_id=item, task_id=f"{item}:labeling",
        dataset_id=dataset_uuid,
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(
    engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("matrix")
    (root / "share").mkdir()
    (root / "share" / "street.jpg").write_bytes(jpeg())
    (root / "exports" / "out").mkdir(parents=True)
    settings = Settings(
        data_dir=root / "data",
        database_url=database_url,
        operation_modules=["tests.support.operations"],
        export_roots=[root / "exports"],
        share_dir=root / "share",
        # The annotator's claim on the world's work item outlasts the module.
        lease_seconds=86_400,
    )
    app = create_app(settings, engine=engine)
    try:
        # 5xx answers are recorded (and fail their row), not raised.
        with (
            pytest.MonkeyPatch.context() as patch,
            TestClient(app, raise_server_exceptions=False) as client,
        ):
            # The rows that log in, register or change a password hash or check one two
            # dozen times: with argon2's cheapest parameters, in milliseconds, not seconds.
            patch.setattr(passwords, "_hasher", CHEAP)
            factory = Factory(app.state.session_factory)
            users = {role: factory.user(role, groups) for role, groups in GROUPS.items()}
            with factory.uow() as uow:
                for user in users.values():
                    uow.session.get_one(User, user.id).password_hash = CHEAP.hash(PASSWORD)
                uow.commit()
            world = World(app, client, factory, root, users)
            build(world)
            build_work(world)
            yield world
    finally:
        app.state.runner.shutdown()
        _empty(engine)


def call_for(world: World, key: str, role: str) -> Call:
    spec = REQUESTS.get(key, Call())
    return spec(world, role) if callable(spec) else spec


def path_ids(world: World, key: str, call: Call) -> dict[str, Any]:
    """The path parameters this call fills in, by name."""
    names = re.findall(r"{(\w+)}", key)
    known = world.work_ids if on_work_face(key) else world.ids
    return {name: (known | call.ids)[name] for name in names}


def send(world: World, key: str, role: str, call: Call, ids: dict[str, Any]) -> httpx.Response:
    method, path = operation_of(key).split(" ", 1)
    # Only the role's own credentials: not the session cookies a login or register set.
    world.client.cookies.clear()
    return world.client.request(
        method, path.format(**ids), params=call.query, json=call.json, data=call.data,
        files=call.files, content=call.content, headers=world.headers(role) | call.headers,
    )  # fmt: skip


def outcome(world: World, key: str, response: httpx.Response) -> str:
    status = response.status_code
    if key == BULK_SIGNAL and status == 200:
        (answer,) = response.json()["items"]
        status = answer["error"]["status"] if answer["result"] == "ERROR" else status
    if status >= 500:
        return f"{status}!"
    if status == 401:
        return ANON
    if status == 403:
        return DENIED
    if status == 404:
        return HIDDEN
    if key == "GET /git/repository/check/{rq_id}" and response.json() == {"status": "unknown"}:
        # CVAT answers an rq_id it will not show as one it does not know, not with a 404.
        return HIDDEN
    if key in LISTS and status == 200 and not LISTS[key](world, response.json()):
        return HIDDEN
    return OK


def masked(response: httpx.Response, ids: dict[str, Any]) -> tuple[int, str]:
    text = response.text
    for value in ids.values():
        text = text.replace(str(value), "<id>")
    return response.status_code, text


def missing(ids: dict[str, Any]) -> dict[str, Any]:
    """The ids with the last, the object a hidden answer hides, one that does not exist
    (of the same kind); those before it name its parents, which the role sees."""
    name, value = list(ids.items())[-1]
    return ids | {name: MISSING_ID if isinstance(value, int) else MISSING_KEY}


def expectations(key: str) -> dict[str, str]:
    cells = EXPECTED[key].split()
    assert set(cells) <= {OK, HIDDEN, DENIED, ANON}, key
    return dict(zip(ROLES, cells, strict=True))


PARAMS = [
    pytest.param(
        key,
        id=operation_id(key),
        marks=[pytest.mark.xfail(strict=True, reason=BUGS[key])] if key in BUGS else [],
    )
    for key in EXPECTED
]


@pytest.mark.parametrize("key", PARAMS)
def test_each_role_gets_what_the_policy_says(world: World, key: str) -> None:
    lines, wrong = [], False
    for role, expected in expectations(key).items():
        call = call_for(world, key, role)
        ids = path_ids(world, key, call)
        response = send(world, key, role, call, ids)
        got = outcome(world, key, response)
        line = f"  {role:<9} expected {expected:<6}  got {got:<6} ({response.status_code})"
        in_body = key in LISTS or key == BULK_SIGNAL  # what a success hides is in its body
        if got == HIDDEN == expected and ids and not (in_body and response.is_success):
            # Hidden means answered as for an object that does not exist: ids leak nothing.
            absent = send(world, key, role, call, missing(ids))
            if masked(response, ids) != masked(absent, missing(ids)):
                got = "leaks"
                line = f"{line}  <-- {response.text[:200]}, but a missing id: {absent.text[:200]}"
        elif got != expected:
            line += f"  <-- {response.text[:300]}"
        wrong = wrong or got != expected
        lines.append(line)
    assert not wrong, "\n".join([operation_id(key), *lines])


def test_every_operation_has_a_row(world: World) -> None:
    served = {
        f"{method.upper()} {path}"
        for path, item in world.app.openapi()["paths"].items()
        for method in item
        if method in METHODS
    }
    listed = {operation_of(key) for key in EXPECTED.keys() - UNLISTED}
    missing, stale = sorted(served - listed), sorted(listed - served)
    assert not missing and not stale, (
        f"operations without a row in EXPECTED: {missing}; "
        f"rows of operations the API no longer has: {stale}"
    )
    routes = {getattr(route, "path", None) for route in world.app.routes}
    assert {operation_of(key).split(" ", 1)[1] for key in UNLISTED} <= routes
    assert REQUESTS.keys() <= EXPECTED.keys()
    assert LISTS.keys() <= EXPECTED.keys()
    assert BUGS.keys() <= EXPECTED.keys()
