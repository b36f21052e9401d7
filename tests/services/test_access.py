"""The permission rules, table-driven: each case builds a small world in a real database
and asks the use cases what one actor may see and do in it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from labelyard.domain import Job, Project, Segment, Task, TaskState, User
from labelyard.services import access, jobs, projects, tasks
from labelyard.services.access import Actor
from labelyard.services.errors import InvalidInput, NotFound, PermissionDenied
from labelyard.services.uow import UnitOfWork
from tests.factories import Factory

GROUPS = {
    "owner": ("user",),
    "task_assignee": ("user",),
    "project_owner": ("user",),
    "project_assignee": ("business",),
    "job_assignee": ("worker",),
    "job_reviewer": ("user",),
    "worker_unrelated": ("worker",),
    "user_unrelated": ("user",),
    "observer": ("observer",),
    "business_unrelated": ("business",),
    "stranger": ("user",),
}
ACTORS = ("admin", *(name for name in GROUPS if name != "stranger"))

# "ok": allowed; "403": visible but refused; "404": not visible; "400": the project named
# in the body is not visible, answered as for a project that does not exist.
#                                   adm  own  t_as p_ow p_as j_as j_rv w_un u_un obs  b_un
RULES = {
    ("task", "view"):               "ok   ok   ok   ok   ok   ok   ok   404  404  ok   404",
    ("task", "change"):             "ok   ok   ok   ok   ok   403  403  404  404  403  404",
    ("task", "delete"):             "ok   ok   403  ok   403  403  403  404  404  403  404",
    ("task", "manage_state"):       "ok   ok   403  ok   ok   403  403  404  404  403  404",
    ("job", "view"):                "ok   ok   ok   ok   ok   ok   ok   404  404  ok   404",
    ("job", "change_status"):       "ok   ok   ok   ok   ok   ok   ok   404  404  403  404",
    ("job", "assign"):              "ok   ok   ok   ok   ok   403  403  404  404  403  404",
    ("project", "view"):            "ok   ok   ok   ok   ok   404  404  404  404  ok   404",
    ("project", "change"):          "ok   403  403  ok   ok   404  404  404  404  403  404",
    ("project", "delete"):          "ok   403  403  ok   403  404  404  404  404  403  404",
    ("new", "task"):                "ok   ok   ok   ok   ok   403  ok   403  ok   403  ok",
    ("new", "task_in_project"):     "ok   403  403  ok   ok   403  400  403  400  403  400",
    ("new", "project"):             "ok   ok   ok   ok   ok   403  ok   403  ok   403  ok",
}  # fmt: skip

CASES = [
    pytest.param(actor, obj, action, expected, id=f"{obj}-{action}-{actor}")
    for (obj, action), row in RULES.items()
    for actor, expected in zip(ACTORS, row.split(), strict=True)
]

EVERYTHING = {
    "tasks": {"task", "foreign_task"},
    "projects": {"project", "foreign_project"},
    "jobs": {"job", "other_job", "foreign_job"},
}
LEADS = {"tasks": {"task"}, "projects": {"project"}, "jobs": {"job", "other_job"}}
WORKS = {"tasks": {"task"}, "projects": set(), "jobs": {"job"}}
NOTHING: dict[str, set[str]] = {"tasks": set(), "projects": set(), "jobs": set()}
VISIBLE = {
    "admin": EVERYTHING,
    "owner": LEADS,
    "task_assignee": LEADS,
    "project_owner": LEADS,
    "project_assignee": LEADS,
    "job_assignee": WORKS,
    "job_reviewer": WORKS,
    "worker_unrelated": NOTHING,
    "user_unrelated": NOTHING,
    "observer": EVERYTHING,
    "business_unrelated": NOTHING,
}
TARGETS = {"task": ("tasks", "task"), "job": ("jobs", "job"), "project": ("projects", "project")}
TARGETS["new"] = TARGETS["project"]


@dataclass
class World:
    """Project "project" (project_owner, assigned to project_assignee) holds "task"
    (owner, assigned to task_assignee) with two jobs: "job" (job_assignee, reviewed by
    job_reviewer) and "other_job" (nobody). A stranger owns the "foreign_*" objects."""

    users: dict[str, User]
    ids: dict[str, dict[str, int]]

    def actor(self, name: str) -> Actor:
        return Actor.of(self.users[name])

    def target(self, obj: str) -> int:
        kind, name = TARGETS[obj]
        return self.ids[kind][name]


def build_world(factory: Factory) -> World:
    users = {"admin": factory.admin()}
    users.update({name: factory.user(name, groups) for name, groups in GROUPS.items()})
    project = factory.project(users["project_owner"], "led", assignee=users["project_assignee"])
    task = factory.task(
        users["owner"],
        "shared",
        assignee=users["task_assignee"],
        project=project,
        frames=10,
        segment_size=5,
        job_assignees=[users["job_assignee"]],
        job_reviewers=[users["job_reviewer"]],
    )
    foreign_project = factory.project(users["stranger"], "foreign")
    foreign_task = factory.task(users["stranger"], "foreign", project=foreign_project, frames=5)
    job, other_job = _job_ids(factory, task, first_assignee=users["job_assignee"])
    (foreign_job,) = _job_ids(factory, foreign_task)
    ids = {
        "tasks": {"task": task.id, "foreign_task": foreign_task.id},
        "projects": {"project": project.id, "foreign_project": foreign_project.id},
        "jobs": {"job": job, "other_job": other_job, "foreign_job": foreign_job},
    }
    return World(users, ids)


def _job_ids(factory: Factory, task: Task, first_assignee: User | None = None) -> list[int]:
    """``factory.jobs_of`` hands back expired jobs; read the ids inside the session."""
    first = first_assignee.id if first_assignee else None
    with factory.uow() as uow:
        rows = uow.session.scalars(
            select(Job).join(Job.segment).where(Segment.task_id == task.id)
        ).all()
        return [job.id for job in sorted(rows, key=lambda job: job.assignee_id != first)]


def _task(world: World) -> int:
    return world.target("task")


def _job(world: World) -> int:
    return world.target("job")


def _project(world: World) -> int:
    return world.target("project")


Action = Callable[[UnitOfWork, Actor, World], Any]
ACTIONS: dict[tuple[str, str], Action] = {
    ("task", "view"): lambda uow, a, w: tasks.get_task(uow, a, _task(w)),
    ("task", "change"): lambda uow, a, w: tasks.update_task(
        uow, a, _task(w), tasks.TaskWrite(name="renamed")
    ),
    ("task", "delete"): lambda uow, a, w: tasks.delete_task(uow, a, _task(w)),
    ("task", "manage_state"): lambda uow, a, w: tasks.update_task(
        uow, a, _task(w), tasks.TaskWrite(state=TaskState.PAUSED)
    ),
    ("job", "view"): lambda uow, a, w: jobs.get_job(uow, a, _job(w)),
    ("job", "change_status"): lambda uow, a, w: jobs.update_job(
        uow, a, _job(w), jobs.JobWrite(status="validation")
    ),
    ("job", "assign"): lambda uow, a, w: jobs.update_job(
        uow, a, _job(w), jobs.JobWrite(assignee="worker_unrelated")
    ),
    ("project", "view"): lambda uow, a, w: projects.get_project(uow, a, _project(w)),
    ("project", "change"): lambda uow, a, w: projects.update_project(
        uow, a, _project(w), projects.ProjectWrite(name="renamed")
    ),
    ("project", "delete"): lambda uow, a, w: projects.delete_project(uow, a, _project(w)),
    ("new", "task"): lambda uow, a, w: tasks.create_task(uow, a, tasks.TaskCreate(name="new")),
    ("new", "task_in_project"): lambda uow, a, w: tasks.create_task(
        uow, a, tasks.TaskCreate(name="new", project_id=_project(w))
    ),
    ("new", "project"): lambda uow, a, w: projects.create_project(
        uow, a, projects.ProjectCreate(name="new")
    ),
}
REFUSALS = {PermissionDenied: "403", NotFound: "404", InvalidInput: "400"}


def attempt(factory: Factory, world: World, actor: str, obj: str, action: str) -> str:
    with factory.uow() as uow:
        try:
            ACTIONS[obj, action](uow, world.actor(actor), world)
        except (PermissionDenied, NotFound, InvalidInput) as refusal:
            return REFUSALS[type(refusal)]
    return "ok"


def listed(factory: Factory, actor: Actor, kind: str) -> set[int]:
    statements = {
        "tasks": tasks.list_tasks(actor, tasks.TaskFilter()),
        "projects": projects.list_projects(actor, projects.ProjectFilter()),
        "jobs": jobs.list_jobs(actor, jobs.JobFilter()),
    }
    with factory.uow() as uow:
        return {row.id for row in uow.session.scalars(statements[kind]).unique()}


def opens(factory: Factory, actor: Actor, kind: str, object_id: int) -> bool:
    getters = {"tasks": tasks.get_task, "projects": projects.get_project, "jobs": jobs.get_job}
    with factory.uow() as uow:
        try:
            getters[kind](uow, actor, object_id)
        except NotFound:
            return False
    return True


def test_rule_table_covers_every_action_and_actor():
    assert set(RULES) == set(ACTIONS)
    assert set(VISIBLE) == set(ACTORS)
    assert len(CASES) == len(RULES) * len(ACTORS)


@pytest.mark.parametrize(("actor", "obj", "action", "expected"), CASES)
def test_permission(factory, actor, obj, action, expected):
    world = build_world(factory)
    assert attempt(factory, world, actor, obj, action) == expected


@pytest.mark.parametrize("kind", sorted(EVERYTHING))
@pytest.mark.parametrize("actor", ACTORS)
def test_lists_hold_exactly_what_opens(factory, actor, kind):
    world = build_world(factory)
    who = world.actor(actor)
    expected = {world.ids[kind][name] for name in VISIBLE[actor][kind]}
    assert listed(factory, who, kind) == expected
    assert {i for i in world.ids[kind].values() if opens(factory, who, kind, i)} == expected


def test_a_superuser_without_the_admin_group_is_an_admin(factory):
    root = factory.user("root", (), superuser=True)
    assert Actor.of(root).is_admin
    assert Actor.of(root).can_create


def _loaded(uow: UnitOfWork, world: World) -> tuple[Task, Job, Project]:
    task = uow.session.get_one(Task, world.target("task"))
    job = uow.session.get_one(Job, world.target("job"))
    project = uow.session.get_one(Project, world.target("project"))
    return task, job, project


def test_an_assigned_observer_reads_but_never_writes(factory):
    world = build_world(factory)
    watcher = factory.user("watcher", ("observer",))
    with factory.uow() as uow:
        task, job, project = _loaded(uow, world)
        task.assignee_id = job.assignee_id = watcher.id
        project.assignee_id = watcher.id
        uow.commit()
    actor = Actor.of(watcher)
    with factory.uow() as uow:
        task, job, project = _loaded(uow, world)
        assert not access.can_change_task(actor, task)
        assert not access.can_manage_task(actor, task)
        assert not access.can_change_job(actor, job)
        assert not access.can_assign_job(actor, job)
        assert not access.can_change_project(actor, project)
        assert not access.can_create_task(actor)
    assert opens(factory, actor, "jobs", world.target("job"))
    with factory.uow() as uow, pytest.raises(PermissionDenied):
        jobs.update_job(uow, actor, world.target("job"), jobs.JobWrite(status="validation"))


def test_a_business_user_who_cannot_change_the_task_cannot_manage_it(factory):
    world = build_world(factory)
    with factory.uow() as uow:
        task, _, _ = _loaded(uow, world)
        assert not access.can_manage_task(world.actor("business_unrelated"), task)
        assert access.can_manage_task(world.actor("project_assignee"), task)


def test_job_workers_cannot_hand_the_job_to_someone_else(factory):
    world = build_world(factory)
    for name in ("job_assignee", "job_reviewer"):
        for field in ("assignee", "reviewer"):
            with factory.uow() as uow, pytest.raises(PermissionDenied):
                body = jobs.JobWrite.model_validate({field: "user_unrelated"})
                jobs.update_job(uow, world.actor(name), world.target("job"), body)
    with factory.uow() as uow:
        job = uow.session.get_one(Job, world.target("job"))
        assert job.assignee_id == world.users["job_assignee"].id
        assert job.reviewer_id == world.users["job_reviewer"].id


def test_refused_writes_change_nothing(factory):
    world = build_world(factory)
    for (obj, action), row in RULES.items():
        for actor, expected in zip(ACTORS, row.split(), strict=True):
            if expected != "ok":
                attempt(factory, world, actor, obj, action)
    with factory.uow() as uow:
        task, job, project = _loaded(uow, world)
        assert (task.name, task.state) == ("shared", TaskState.IN_PROGRESS)
        assert (job.status, job.assignee_id) == ("annotation", world.users["job_assignee"].id)
        assert project.name == "led"
        assert len(uow.session.scalars(select(Task)).all()) == 2
        assert len(uow.session.scalars(select(Project)).all()) == 2
