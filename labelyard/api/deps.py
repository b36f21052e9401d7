"""Dependencies every router shares: settings, the unit of work, who is asking."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Query, Request

from labelyard.config import Settings
from labelyard.domain import User
from labelyard.services import auth
from labelyard.services.access import Actor
from labelyard.services.errors import NotAuthenticated, PermissionDenied
from labelyard.services.fields import MAX_INT
from labelyard.services.uow import UnitOfWork

SESSION_COOKIE = "sessionid"
CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


async def get_settings(request: Request) -> Settings:
    # async: nothing here blocks, and a sync dependency costs a hop to the thread pool.
    settings: Settings = request.app.state.settings
    return settings


def get_uow(request: Request) -> Iterator[UnitOfWork]:
    writes = request.method not in SAFE_METHODS
    with UnitOfWork(request.app.state.session_factory, writes=writes) as uow:
        yield uow


SettingsDep = Annotated[Settings, Depends(get_settings)]
UowDep = Annotated[UnitOfWork, Depends(get_uow)]


def authorization(request: Request) -> tuple[str, str] | None:
    """``(scheme, credentials)`` from the Authorization header, scheme lower-cased."""
    header = request.headers.get("authorization", "").strip()
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    return scheme.lower(), credentials.strip()


def find_user(request: Request, uow: UnitOfWork, *, changes_state: bool = False) -> User | None:
    """The user behind a token, HTTP Basic credentials or a session cookie; ``None`` when
    the request carries none. Bad credentials are refused, never treated as anonymous.
    With a session cookie, an unsafe method, or a GET that ``changes_state``, needs the
    CSRF header: a cookie is sent along with whatever another site makes a browser ask."""
    header = authorization(request)
    if header is not None:
        scheme, credentials = header
        if scheme == "token":
            user = auth.user_by_token(uow, credentials) if credentials else None
            if user is None:
                raise NotAuthenticated("Invalid token.")
        elif scheme == "basic":
            user = _basic_user(request, uow, credentials)
        else:
            raise NotAuthenticated(
                f"Unsupported authorization scheme {scheme!r}; use Token or Basic."
            )
        if not user.is_active:
            raise NotAuthenticated("User inactive or deleted.")
        return user

    session_key = request.cookies.get(SESSION_COOKIE)
    browser_session = auth.session_by_key(uow, session_key) if session_key else None
    if browser_session is None or not browser_session.user.is_active:
        return None
    if changes_state or request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not secrets.compare_digest(sent, browser_session.csrf_token):
            raise PermissionDenied("CSRF Failed: CSRF token missing or incorrect.")
    return browser_session.user


def client_address(request: Request) -> str:
    """Where the request comes from (uvicorn puts a trusted proxy's X-Forwarded-For here)."""
    return request.client.host if request.client else "unknown"


def _basic_user(request: Request, uow: UnitOfWork, credentials: str) -> User:
    try:
        login, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise NotAuthenticated("Invalid basic header.") from None
    user = auth.throttled_credentials(
        uow, request.app.state.throttle, login, password, client_address(request)
    )
    if user is None:
        raise NotAuthenticated("Invalid username/password.")
    return user


def current_user(request: Request, uow: UowDep) -> User:
    user = find_user(request, uow)
    if user is None:
        raise NotAuthenticated()
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def current_actor(request: Request, uow: UowDep) -> Actor:
    """Who is asking, as permissions see them. A token (what clients send with every
    request) is looked up in one statement without loading the user."""
    header = authorization(request)
    if header is not None and header[0] == "token":
        holder = auth.token_holder(uow, header[1]) if header[1] else None
        if holder is None:
            raise NotAuthenticated("Invalid token.")
        if not holder.is_active:
            raise NotAuthenticated("User inactive or deleted.")
        return Actor.of(holder)
    return Actor.of(current_user(request, uow))


ActorDep = Annotated[Actor, Depends(current_actor)]


def changing_actor(request: Request, uow: UowDep) -> Actor:
    """Who asks, for a GET that changes state (CVAT's publish and git push are GETs)."""
    user = find_user(request, uow, changes_state=True)
    if user is None:
        raise NotAuthenticated()
    return Actor.of(user)


# For a GET that changes state: under a session cookie it needs the CSRF header.
ChangingActorDep = Annotated[Actor, Depends(changing_actor)]


class Links:
    """Absolute URLs of resources, as CVAT answers them (``"url": "http://host/api/v1/…"``)."""

    def __init__(self, request: Request) -> None:
        self.base = str(request.base_url).rstrip("/") + "/api/v1"

    def of(self, resource: str, object_id: int) -> str:
        return f"{self.base}/{resource}/{object_id}"


LinksDep = Annotated[Links, Depends(Links)]
# An id in a query-string filter.
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_INT)]
