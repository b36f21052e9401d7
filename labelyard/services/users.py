"""User use cases: list, read, change and remove accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field
from sqlalchemy import Select, func, or_, select

from labelyard.domain import Group, User
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.auth import EMAIL_RE, USERNAME_RE
from labelyard.services.errors import InvalidInput, NotFound, PermissionDenied
from labelyard.services.fields import WriteModel, is_id
from labelyard.services.listing import icontains, order_by
from labelyard.services.uow import UnitOfWork

PRIVILEGED_FIELDS = frozenset({"groups", "is_staff", "is_superuser", "is_active"})


class UserWrite(WriteModel):
    read_only = frozenset({"id", "url", "last_login", "date_joined", "password"})

    username: str = Field(default="", min_length=1, max_length=150)
    first_name: str = Field(default="", max_length=150)
    last_name: str = Field(default="", max_length=150)
    email: str = Field(default="", max_length=254)
    groups: list[Group] = Field(default_factory=list)
    is_staff: bool = False
    is_superuser: bool = False
    is_active: bool = True


@dataclass
class UserFilter:
    id: int | None = None
    username: str | None = None
    is_active: bool | None = None
    search: str | None = None
    ordering: str | None = None


def list_users(actor: Actor, filters: UserFilter) -> Select[Any]:
    stmt = select(User).where(access.visible_users(actor))
    if filters.id is not None:
        stmt = stmt.where(User.id == filters.id)
    if filters.username:
        stmt = stmt.where(User.username == filters.username)
    if filters.is_active is not None:
        stmt = stmt.where(User.is_active == filters.is_active)
    if filters.search:
        stmt = stmt.where(
            or_(
                icontains(User.username, filters.search),
                icontains(User.first_name, filters.search),
                icontains(User.last_name, filters.search),
            )
        )
    columns = {
        "id": User.id,
        "username": User.username,
        "first_name": User.first_name,
        "last_name": User.last_name,
        "date_joined": User.date_joined,
        "last_login": User.last_login,
    }
    return order_by(stmt, filters.ordering, columns, default="id")


def get_user(uow: UnitOfWork, actor: Actor, user_id: int) -> User:
    if not is_id(user_id):
        raise NotFound()
    user = uow.session.scalar(select(User).where(User.id == user_id, access.visible_users(actor)))
    if user is None:
        raise NotFound()
    return user


def update_user(uow: UnitOfWork, actor: Actor, user_id: int, data: UserWrite) -> User:
    user = get_user(uow, actor, user_id)
    if not access.can_change_user(actor, user):
        raise PermissionDenied("Only an admin can change another user.")
    fields = data.model_fields_set
    if fields & PRIVILEGED_FIELDS and not access.can_change_privileges(actor):
        changed = [n for n in sorted(fields & PRIVILEGED_FIELDS) if _differs(user, data, n)]
        if changed:
            raise PermissionDenied(f"Only an admin can change {', '.join(changed)}.")
    if "username" in fields and data.username != user.username:
        if not USERNAME_RE.match(data.username):
            raise InvalidInput.on("username", "Enter a valid username.")
        taken = uow.session.scalar(
            select(User.id).where(
                func.lower(User.username) == data.username.lower(), User.id != user.id
            )
        )
        if taken:
            raise InvalidInput.on("username", "A user with that username already exists.")
    if "email" in fields and data.email and not EMAIL_RE.match(data.email):
        raise InvalidInput.on("email", "Enter a valid email address.")
    for name in ("username", "first_name", "last_name", "email", "is_staff", "is_superuser",
                 "is_active"):  # fmt: skip
        if name in fields:
            setattr(user, name, getattr(data, name))
    if "groups" in fields:
        user.set_groups([str(group) for group in data.groups])
    uow.commit()
    return user


def _differs(user: User, data: UserWrite, name: str) -> bool:
    if name == "groups":
        return sorted(str(g) for g in data.groups) != sorted(user.groups)
    return bool(getattr(data, name) != getattr(user, name))


def delete_user(uow: UnitOfWork, actor: Actor, user_id: int) -> None:
    user = get_user(uow, actor, user_id)
    if not access.can_delete_user(actor, user):
        raise PermissionDenied("Only an admin can delete users.")
    if user.id == actor.id:
        raise InvalidInput.on("id", "An admin cannot delete their own account.")
    uow.session.delete(user)
    uow.commit()
