"""``/auth``: login (JSON or form), logout, register, password change."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from labelyard.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentUser,
    SettingsDep,
    UowDep,
    authorization,
    client_address,
)
from labelyard.api.errors import field_errors_response, validation_fields
from labelyard.api.routing import GatedRouter
from labelyard.config import Settings
from labelyard.services import auth
from labelyard.services.errors import InvalidInput, PermissionDenied

router = GatedRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    username: str = Field(default="", max_length=254, description="A username or an email")
    email: str = Field(default="", max_length=254)
    password: str = Field(min_length=1, max_length=128)


class KeyOut(BaseModel):
    key: str


class DetailOut(BaseModel):
    detail: str


async def read_body(request: Request) -> dict[str, Any]:
    """A JSON object or form fields, whichever the client sent (seed 000 posts a form)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    raw = await request.body()
    if not raw.strip():
        return {}
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        # A text/plain POST needs no CORS preflight; refusing it keeps other sites from
        # signing a browser in (or up) behind its user's back.
        raise InvalidInput.on(
            "non_field_errors", "Expected JSON (Content-Type: application/json) or a form."
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.on("non_field_errors", f"JSON parse error - {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput.on("non_field_errors", "Expected a JSON object.")
    return body


def _parse(model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields, detail = validation_fields(list(exc.errors()))
        raise InvalidInput(fields, detail) from None


def _signed_in(sign: auth.SignIn, settings: Settings, status_code: int = 200) -> Response:
    response = JSONResponse({"key": sign.token_key}, status_code=status_code)
    max_age = settings.session_days * 86400
    response.set_cookie(
        SESSION_COOKIE,
        sign.session_key,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    response.set_cookie(
        CSRF_COOKIE,
        sign.csrf_token,
        max_age=max_age,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return response


def body_doc(model: type[BaseModel], *, form: bool = False) -> dict[str, Any]:
    """OpenAPI for a body these routes read themselves (JSON, or a form as well)."""
    schema = model.model_json_schema()
    kinds = ["application/json"] + (["application/x-www-form-urlencoded"] if form else [])
    return {
        "requestBody": {
            "content": {kind: {"schema": schema} for kind in kinds},
            "required": True,
        }
    }


@router.post("/login", response_model=KeyOut, openapi_extra=body_doc(LoginIn, form=True))
async def login(request: Request, uow: UowDep, settings: SettingsDep) -> Response:
    """Sign in with a username (or email) and password. Answers a token key and sets a
    session cookie and a CSRF cookie for browsers."""
    form = _parse(LoginIn, await read_body(request))
    login_name = form.username or form.email
    if not login_name:
        return field_errors_response({"username": ["This field is required."]})
    sign = await run_in_threadpool(
        auth.sign_in, uow, login_name, form.password, session_days=settings.session_days,
        throttle=request.app.state.throttle, address=client_address(request),
    )  # fmt: skip
    return _signed_in(sign, settings)


@router.post("/logout", response_model=DetailOut)
def logout(request: Request, uow: UowDep) -> Response:
    """Forget the token and the session this request came with."""
    header = authorization(request)
    token = header[1] if header is not None and header[0] == "token" else None
    auth.sign_out(uow, token_key=token, session_key=request.cookies.get(SESSION_COOKIE))
    response = JSONResponse({"detail": "Successfully logged out."})
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.post(
    "/register",
    status_code=201,
    response_model=KeyOut,
    openapi_extra=body_doc(auth.Registration, form=True),
)
async def register(request: Request, uow: UowDep, settings: SettingsDep) -> Response:
    """Create an account (when registration is open) and sign it in."""
    if not settings.allow_registration:
        raise PermissionDenied("Registration is closed on this server.")
    form = _parse(auth.Registration, await read_body(request))
    sign = await run_in_threadpool(
        auth.register,
        uow,
        form,
        default_groups=settings.default_groups,
        session_days=settings.session_days,
    )
    return _signed_in(sign, settings, status_code=201)


@router.post("/password/change", response_model=DetailOut)
def change_password(form: auth.PasswordChange, user: CurrentUser, uow: UowDep) -> dict[str, str]:
    auth.change_password(uow, user, form)
    return {"detail": "New password has been saved."}
