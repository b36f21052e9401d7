"""Every permission rule, in one place.

Visibility is expressed as SQL filters (lists and detail lookups share them, so what a
user can list is exactly what they can open); write rules are predicates over loaded
objects. Objects a user cannot see answer 404, never 403, so ids leak nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from labelyard.domain import (
    DEFAULT_SPACE_ID,
    Dataset,
    Group,
    Job,
    Project,
    Segment,
    SpaceMember,
    Task,
    User,
    WorkItem,
)

CREATORS = frozenset({Group.ADMIN, Group.BUSINESS, Group.USER})
WRITERS = CREATORS | {Group.WORKER}


class Person(Protocol):
    """A user as far as permissions go: a User, or what a token lookup read of one."""

    @property
    def id(self) -> int: ...
    @property
    def is_superuser(self) -> bool: ...
    @property
    def groups(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Actor:
    """Who is asking: a user id and the groups that decide what they may do."""

    id: int
    groups: frozenset[str]

    @classmethod
    def of(cls, user: Person) -> Actor:
        groups = set(user.groups)
        if user.is_superuser:
            groups.add(Group.ADMIN)
        return cls(id=user.id, groups=frozenset(groups))

    @property
    def is_admin(self) -> bool:
        return Group.ADMIN in self.groups

    @property
    def is_manager(self) -> bool:
        return self.is_admin or Group.BUSINESS in self.groups

    @property
    def reads_everything(self) -> bool:
        """Admins, and observers (who see everything and change nothing)."""
        return self.is_admin or Group.OBSERVER in self.groups

    @property
    def can_write(self) -> bool:
        """An observer-only user never changes anything, whatever they are assigned."""
        return bool(self.groups & WRITERS)

    @property
    def can_create(self) -> bool:
        return bool(self.groups & CREATORS)


# --- visibility (SQL) -------------------------------------------------------------


def _projects_led_by(actor: Actor) -> ColumnElement[bool]:
    return or_(Project.owner_id == actor.id, Project.assignee_id == actor.id)


def _tasks_led_by(actor: Actor) -> ColumnElement[bool]:
    """Tasks the actor runs: owner, assignee, or owner/assignee of the task's project."""
    return or_(
        Task.owner_id == actor.id,
        Task.assignee_id == actor.id,
        Task.project_id.in_(select(Project.id).where(_projects_led_by(actor))),
    )


def _jobs_worked_by(actor: Actor) -> ColumnElement[bool]:
    return or_(Job.assignee_id == actor.id, Job.reviewer_id == actor.id)


def visible_tasks(actor: Actor) -> ColumnElement[bool]:
    if actor.reads_everything:
        return true()
    return or_(
        _tasks_led_by(actor),
        Task.id.in_(
            select(Segment.task_id)
            .join(Job, Job.segment_id == Segment.id)
            .where(_jobs_worked_by(actor))
        ),
    )


def visible_projects(actor: Actor) -> ColumnElement[bool]:
    if actor.reads_everything:
        return true()
    return or_(
        _projects_led_by(actor),
        Project.id.in_(
            select(Task.project_id).where(
                Task.project_id.is_not(None),
                or_(Task.owner_id == actor.id, Task.assignee_id == actor.id),
            )
        ),
    )


def visible_jobs(actor: Actor) -> ColumnElement[bool]:
    if actor.reads_everything:
        return true()
    return or_(
        _jobs_worked_by(actor),
        Job.segment_id.in_(
            select(Segment.id).join(Task, Task.id == Segment.task_id).where(_tasks_led_by(actor))
        ),
    )


def visible_users(actor: Actor) -> ColumnElement[bool]:
    """Everyone signed in may list users: assigning work needs the names."""
    return true() if actor.id else false()


# --- writes (predicates) ----------------------------------------------------------


def _leads_project(actor: Actor, project: Project | None) -> bool:
    return project is not None and actor.id in (project.owner_id, project.assignee_id)


def can_create_project(actor: Actor) -> bool:
    return actor.can_create


def can_change_project(actor: Actor, project: Project) -> bool:
    return actor.can_write and (actor.is_admin or _leads_project(actor, project))


def can_delete_project(actor: Actor, project: Project) -> bool:
    return actor.can_write and (actor.is_admin or actor.id == project.owner_id)


def can_create_task(actor: Actor, project: Project | None = None) -> bool:
    if not actor.can_create:
        return False
    return project is None or can_change_project(actor, project)


def can_change_task(actor: Actor, task: Task) -> bool:
    return actor.can_write and (
        actor.is_admin
        or actor.id in (task.owner_id, task.assignee_id)
        or _leads_project(actor, task.project)
    )


def can_manage_task(actor: Actor, task: Task) -> bool:
    """Lifecycle state and ownership: the task's or project's owner, admins, and
    business users who may change the task."""
    if not actor.can_write:
        return False
    if actor.is_admin or actor.id == task.owner_id:
        return True
    if task.project is not None and actor.id == task.project.owner_id:
        return True
    return Group.BUSINESS in actor.groups and can_change_task(actor, task)


def can_push_task(actor: Actor, task: Task) -> bool:
    """Pushing a visible task's annotations to its linked git repository: like an export,
    open to whoever sees the task (CVAT: task access), except observers, since it changes
    the repository. Linking one is a change of the task (can_change_task)."""
    return actor.can_write


def can_delete_task(actor: Actor, task: Task) -> bool:
    return actor.can_write and (
        actor.is_admin
        or actor.id == task.owner_id
        or (task.project is not None and actor.id == task.project.owner_id)
    )


def can_assign_job(actor: Actor, job: Job) -> bool:
    """Choosing a job's assignee or reviewer is for those who run the task."""
    return can_change_task(actor, job.task)


def can_change_job(actor: Actor, job: Job) -> bool:
    return actor.can_write and (
        can_change_task(actor, job.task) or actor.id in (job.assignee_id, job.reviewer_id)
    )


def visible_datasets(actor: Actor) -> ColumnElement[bool]:
    """Datasets are their owner's (and readable by admins and observers)."""
    if actor.reads_everything:
        return true()
    return Dataset.owner_id == actor.id


def can_use_dataset(actor: Actor, dataset: Dataset) -> bool:
    """Binding a dataset to a task, uploading into it, changing it."""
    return actor.can_write and (actor.is_admin or dataset.owner_id == actor.id)


def can_change_user(actor: Actor, user: User) -> bool:
    return actor.is_admin or actor.id == user.id


def can_change_privileges(actor: Actor) -> bool:
    """Groups and the staff / superuser / active flags."""
    return actor.is_admin


def can_delete_user(actor: Actor, user: User) -> bool:
    return actor.is_admin


def can_read_all_client_events(actor: Actor) -> bool:
    return actor.is_admin


# --- the work face ------------------------------------------------------------------


def in_visible_space(actor: Actor, space_id: InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """Rows (spaces, projects, datasets) of a space the actor belongs to: the default
    space is everyone's, the others list their members; admins and observers see all."""
    if actor.reads_everything:
        return true()
    return in_spaces_of(actor.id, space_id)


def in_spaces_of(
    user_id: int | BindParameter[int], space_id: InstrumentedAttribute[int]
) -> ColumnElement[bool]:
    """Rows of a space ``user_id`` belongs to (not counting an admin's or observer's view
    of all: see in_visible_space)."""
    return or_(
        space_id == DEFAULT_SPACE_ID,
        space_id.in_(select(SpaceMember.space_id).where(SpaceMember.user_id == user_id)),
    )


def manages_work(actor: Actor, project: Project) -> bool:
    """Managers create work items and batches, assign, cancel and reopen: admins,
    business users and the project's owner and assignee."""
    return actor.can_write and (
        actor.is_admin or Group.BUSINESS in actor.groups or _leads_project(actor, project)
    )


def does_work(actor: Actor) -> bool:
    """Whoever may claim, label and review items of a project they can see."""
    return actor.can_write


def visible_work_items(actor: Actor, project: Project) -> ColumnElement[bool]:
    """Managers and readers of everything see a project's items; a worker sees those
    assigned to or claimed by them, and those they labelled or reviewed."""
    if sees_all_work(actor, project):
        return true()
    return worked_on_by(actor.id)


def sees_all_work(actor: Actor, project: Project) -> bool:
    return actor.reads_everything or manages_work(actor, project)


def worked_on_by(user_id: int | BindParameter[int]) -> ColumnElement[bool]:
    """The items a worker sees: assigned to or claimed by them, labelled or reviewed by
    them."""
    return or_(
        WorkItem.assignee_id == user_id,
        WorkItem.labeller_id == user_id,
        WorkItem.reviewer_id == user_id,
    )
