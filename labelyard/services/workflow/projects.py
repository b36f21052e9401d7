"""Spaces and the projects, datasets and people in them, as the work face finds them."""

from __future__ import annotations

import functools
import uuid as uuid_module

from sqlalchemy import Integer, Select, bindparam, func, select
from sqlalchemy.orm import Session, defer, lazyload

from labelyard.domain import DEFAULT_SPACE_ID, Dataset, Project, Space, SpaceMember, Task, User
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labelyard.services.workflow.uploads import UPLOADS_FORMAT


def canonical_uuid(text: str) -> str | None:
    """``text`` as a lower-case hyphenated UUID, or None when it is not one."""
    try:
        return str(uuid_module.UUID(text))
    except (ValueError, AttributeError, TypeError):
        return None


def get_space(session: Session, actor: Actor, space_uuid: str) -> Space:
    key = canonical_uuid(space_uuid)
    space = None
    if key is not None:
        space = session.scalars(
            select(Space).where(Space.uuid == key, access.in_visible_space(actor, Space.id))
        ).first()
    if space is None:
        raise NotFound("No such space.")
    return space


def list_spaces(actor: Actor) -> Select[Space]:
    return select(Space).where(access.in_visible_space(actor, Space.id)).order_by(Space.id)


def space_projects(space: Space) -> Select[Project]:
    return select(Project).where(Project.space_id == space.id).order_by(Project.id)


def get_project(
    session: Session, actor: Actor, project_uuid: str, *, space: Space | None = None
) -> Project:
    """A project of a space the actor belongs to; any other id is not found."""
    key = canonical_uuid(project_uuid)
    project = None
    if key is not None:
        stmt = _by_uuid(actor.reads_everything, space is not None)
        values = {"uuid": key, "actor_id": actor.id, "space_id": space.id if space else None}
        project = session.scalars(stmt, values).first()
    if project is None:
        raise NotFound("No such project.")
    return project


@functools.cache
def _by_uuid(reads_everything: bool, in_space: bool) -> Select[Project]:
    # Built once with parameters (every work face request asks for its project).
    stmt = (
        select(Project)
        .where(Project.uuid == bindparam("uuid"))
        # The work face needs none of these on every request; labels load when used.
        .options(
            defer(Project.status),
            lazyload(Project.owner),
            lazyload(Project.assignee),
            lazyload(Project.labels),
        )
    )
    if not reads_everything:
        member = bindparam("actor_id", type_=Integer)
        stmt = stmt.where(access.in_spaces_of(member, Project.space_id))
    if in_space:
        stmt = stmt.where(Project.space_id == bindparam("space_id"))
    return stmt


def get_dataset(session: Session, actor: Actor, dataset_ref: str) -> Dataset:
    """A dataset of a space the actor belongs to, by its UUID (or its integer id, as the
    dataset face names it)."""
    key = canonical_uuid(dataset_ref)
    stmt = select(Dataset).where(access.in_visible_space(actor, Dataset.space_id))
    dataset = None
    if key is not None:
        dataset = session.scalars(stmt.where(Dataset.uuid == key)).first()
    elif dataset_ref.isascii() and dataset_ref.isdigit() and len(dataset_ref) < 10:
        dataset = session.scalars(stmt.where(Dataset.id == int(dataset_ref))).first()
    if dataset is None:
        raise NotFound("No such dataset.")
    return dataset


def is_member(session: Session, space_id: int, user: User) -> bool:
    if space_id == DEFAULT_SPACE_ID or user.is_superuser:
        return True
    return (
        session.scalar(
            select(func.count())
            .select_from(SpaceMember)
            .where(SpaceMember.space_id == space_id, SpaceMember.user_id == user.id)
        )
        or 0
    ) > 0


def member_by_email(session: Session, space_id: int, email: str, path: str) -> User:
    """The active member of the space with this email (or user name), for an assignee."""
    wanted = email.strip().lower()
    user = session.scalars(
        select(User)
        .where(func.lower(User.email) == wanted, User.is_active.is_(True))
        .order_by(User.id)
        .limit(1)
    ).first()
    if user is None:
        user = session.scalars(
            select(User).where(func.lower(User.username) == wanted, User.is_active.is_(True))
        ).first()
    if user is None or not is_member(session, space_id, user):
        raise InvalidInput.on(path, f'No user "{email}" in this space.')
    return user


# --- changing spaces (admins) -------------------------------------------------------


def create_space(session: Session, actor: Actor, name: str) -> Space:
    _check_admin(actor)
    space = Space(name=name)
    session.add(space)
    session.flush()
    return space


def add_member(session: Session, actor: Actor, space: Space, email: str) -> User:
    _check_admin(actor)
    if space.is_default:
        raise Conflict("Everyone belongs to the default space.")
    user = member_by_email(session, DEFAULT_SPACE_ID, email, "email")
    if session.get(SpaceMember, (space.id, user.id)) is None:
        session.add(SpaceMember(space_id=space.id, user_id=user.id))
        session.flush()
    return user


def remove_member(session: Session, actor: Actor, space: Space, user_uuid: str) -> None:
    _check_admin(actor)
    if space.is_default:
        raise Conflict("Everyone belongs to the default space.")
    key = canonical_uuid(user_uuid)
    user = session.scalars(select(User).where(User.uuid == key)).first() if key else None
    membership = session.get(SpaceMember, (space.id, user.id)) if user is not None else None
    if membership is None:
        raise NotFound("No such member.")
    session.delete(membership)
    session.flush()


def members(session: Session, space: Space) -> list[User]:
    stmt = select(User).where(User.is_active.is_(True)).order_by(User.id)
    if not space.is_default:
        stmt = stmt.join(SpaceMember, SpaceMember.user_id == User.id).where(
            SpaceMember.space_id == space.id
        )
    return list(session.scalars(stmt))


def move_project(session: Session, actor: Actor, project: Project, space: Space) -> None:
    """A project (and the datasets its tasks use) moves to another space."""
    _check_admin(actor)
    project.space_id = space.id
    datasets = select(Task.dataset_id).where(
        Task.project_id == project.id, Task.dataset_id.is_not(None)
    )
    # A space's uploads dataset stays with its space: other projects' items use it too.
    moving = select(Dataset).where(Dataset.id.in_(datasets), Dataset.format != UPLOADS_FORMAT)
    for dataset in session.scalars(moving):
        dataset.space_id = space.id
    session.flush()


def _check_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise PermissionDenied("Only admins change spaces and who belongs to them.")
