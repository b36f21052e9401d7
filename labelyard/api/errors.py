"""Refusals -> HTTP, in one place. Every error body is JSON with a ``detail``; a 400 also
names each bad field (dotted paths for nested ones, as DRF names top-level fields)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError

from labelyard.adapters.media.errors import MediaError
from labelyard.formats.registry import FormatDisabled
from labelyard.services.errors import (
    Conflict,
    InvalidInput,
    LabelyardError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from labelyard.services.exchange import ExportFailed
from labelyard.services.fields import ReadOnlyFields
from labelyard.services.throttle import Throttled

log = logging.getLogger(__name__)

STATUS = {
    NotAuthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 400,
    FormatDisabled: 405,
    ExportFailed: 422,
    Throttled: 429,
}
BODY_NOT_OBJECT = {"dict_type", "model_attributes_type", "model_type", "list_type"}
UNION_MEMBER = re.compile(r"(constrained-)?(int|str|float|bool)|function-\w+\[.*\]")
PARAM_SOURCES = {"body", "query", "path", "header", "cookie", "form"}


def field_errors_response(fields: dict[str, list[str]], detail: str | None = None) -> JSONResponse:
    error = InvalidInput(fields, detail)
    return JSONResponse({"detail": error.detail, **fields}, status_code=400)


def _message(error: dict[str, Any]) -> str:
    kind = error.get("type")
    if kind == "missing":
        return "This field is required."
    if kind == "extra_forbidden":
        return "Unknown field."
    message = str(error.get("msg", "Invalid value."))
    return message.removeprefix("Value error, ")


def _path(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in PARAM_SOURCES:
        parts = parts[1:]
    # pydantic names the union member it tried (``int``, ``str``); the user named a field.
    parts = [p for p in parts if not (isinstance(p, str) and UNION_MEMBER.fullmatch(p))]
    return ".".join(str(p) for p in parts) or "non_field_errors"


def validation_fields(errors: Sequence[Any]) -> tuple[dict[str, list[str]], str | None]:
    fields: dict[str, list[str]] = {}
    detail = None
    for error in errors:
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "invalid JSON")
            detail = f"JSON parse error - {reason}"
            fields.setdefault("non_field_errors", []).append(detail)
            continue
        loc = tuple(error.get("loc", ()))
        if loc == ("body",) and error.get("type") in BODY_NOT_OBJECT:
            detail = "Expected a JSON object sent with Content-Type: application/json."
            fields.setdefault("non_field_errors", []).append(detail)
            continue
        messages = fields.setdefault(_path(loc), [])
        message = _message(error)
        if message not in messages:
            messages.append(message)
    return fields, detail


def install(app: FastAPI) -> None:
    @app.exception_handler(LabelyardError)
    async def _refused(_: Request, exc: LabelyardError) -> JSONResponse:
        if isinstance(exc, InvalidInput):
            return field_errors_response(exc.fields, exc.detail)
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        headers = {"WWW-Authenticate": 'Token realm="api"'} if status == 401 else None
        if isinstance(exc, Throttled):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(
            {"detail": exc.detail, **exc.extra}, status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields, detail = validation_fields(list(exc.errors()))
        return field_errors_response(fields, detail)

    @app.exception_handler(ReadOnlyFields)
    async def _read_only(_: Request, exc: ReadOnlyFields) -> JSONResponse:
        return field_errors_response({name: ["This field is read-only."] for name in exc.names})

    @app.exception_handler(MediaError)
    async def _media(_: Request, exc: MediaError) -> JSONResponse:
        # A stored file that cannot be decoded (damaged after its upload was accepted).
        log.warning("media error: %s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # The database caught what validation could not (two writers racing for a name).
        log.warning("integrity error: %s", exc.orig)
        return JSONResponse(
            {"detail": "The change conflicts with existing data; reload and retry."},
            status_code=409,
        )

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold that validation let through; nothing was kept.
        log.warning("data error: %s", exc.orig)
        return JSONResponse(
            {"detail": "A value does not fit what the server stores (too large, or a NUL byte)."},
            status_code=400,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "Internal server error."}, status_code=500)


BAD_INPUT = {
    "description": "Bad input: a detail, and each bad field's messages under its name",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BadInput"}}},
}
BAD_INPUT_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "additionalProperties": True,
}


def document_bad_input(document: dict[str, Any]) -> None:
    """Every operation's 422 (FastAPI's validation error, which this server answers as a
    400 with field messages) becomes that 400."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["BadInput"] = BAD_INPUT_SCHEMA
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", BAD_INPUT)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
