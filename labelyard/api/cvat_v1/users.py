"""``/users``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from labelyard.api.cvat_v1.schemas import BasicUserOut, UserOut
from labelyard.api.deps import ActorDep, CurrentUser, IdQuery, LinksDep, UowDep
from labelyard.api.pagination import Page, PageDep, paginate
from labelyard.api.routing import GatedRouter
from labelyard.services import users
from labelyard.services.access import Actor

router = GatedRouter(prefix="/users", tags=["users"])


def user_filter(
    id: IdQuery = None,
    username: str | None = None,
    is_active: bool | None = None,
    search: Annotated[str | None, Query(max_length=256)] = None,
    ordering: str | None = None,
) -> users.UserFilter:
    return users.UserFilter(id, username, is_active, search, ordering)


def _shown(actor: Actor, user_id: int) -> bool:
    """Admins and the user themself see every field; others see the public ones."""
    return actor.is_admin or actor.id == user_id


@router.get("", response_model=Page[UserOut | BasicUserOut])
def list_users(
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    links: LinksDep,
    page: PageDep,
    filters: Annotated[users.UserFilter, Depends(user_filter)],
) -> Page[UserOut | BasicUserOut]:
    serialize = UserOut.of if actor.is_admin else BasicUserOut.of
    return paginate(
        uow.session, users.list_users(actor, filters), page, request, lambda u: serialize(u, links)
    )


@router.get("/self", response_model=UserOut)
def read_self(user: CurrentUser, links: LinksDep) -> UserOut:
    return UserOut.of(user, links)


@router.get("/{user_id:int}", response_model=UserOut | BasicUserOut)
def read_user(user_id: int, actor: ActorDep, uow: UowDep, links: LinksDep) -> BasicUserOut:
    user = users.get_user(uow, actor, user_id)
    return UserOut.of(user, links) if _shown(actor, user_id) else BasicUserOut.of(user, links)


@router.patch("/{user_id:int}", response_model=UserOut)
def update_user(
    user_id: int, body: users.UserWrite, actor: ActorDep, uow: UowDep, links: LinksDep
) -> UserOut:
    return UserOut.of(users.update_user(uow, actor, user_id, body), links)


@router.delete("/{user_id:int}", status_code=204)
def delete_user(user_id: int, actor: ActorDep, uow: UowDep) -> Response:
    users.delete_user(uow, actor, user_id)
    return Response(status_code=204)
