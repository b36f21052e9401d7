"""Task backups on ``/tasks`` (CVAT 1.5+): ``GET tasks/{id}?action=export|download`` and
``POST tasks?action=import``. The routes are tasks.py's; this is what they answer and
how they read an import.

``POST tasks`` reads its body itself: an import is a multipart upload as large as any
task data, so that path has the uploads' size limit in the body limit middleware,
which sees paths only. A JSON body (creating a task) is held to the ordinary limit here."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from labelyard.api.errors import validation_fields
from labelyard.api.responses import export_answer
from labelyard.api.uploads import stage_uploads
from labelyard.domain import Operation, OperationStatus
from labelyard.services import backups
from labelyard.services.access import Actor
from labelyard.services.errors import InvalidInput
from labelyard.services.tasks import TaskCreate
from labelyard.services.uow import UnitOfWork

JSON_ONLY = "Expected a JSON object sent with Content-Type: application/json."


class BackupStarted(BaseModel):
    """A backup (or a restore) under way, or a backup ready (201): the operation's id,
    CVAT's ``rq_id`` (also readable at ``/api/v1/operations/{id}``)."""

    rq_id: str


class TaskRestored(BaseModel):
    """A finished restore: the new task's id."""

    id: int


ExportAction = Annotated[
    Literal["export", "download"] | None,
    Query(description="export: make a backup of the task (202, then 201 when it is ready); "
                      "download: send the ready backup (a zip)."),
]  # fmt: skip
ImportAction = Annotated[
    Literal["import"] | None,
    Query(description="import: restore the backup sent as the multipart task_file into a "
                      "new task (202); send rq_id to poll it."),
]  # fmt: skip
RqId = Annotated[
    str | None, Query(max_length=64, description="With action=import: the restore to poll.")
]

EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The task; with action=download, its backup",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    },
    201: {"model": BackupStarted, "description": "The backup is ready (action=export)"},
    202: {"model": BackupStarted, "description": "The backup is being made"},
    302: {"description": "action=download: where the backup is stored (S3)"},
}
IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": BackupStarted, "description": "action=import: the restore is under way"},
}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the definitions it refers to put in place (pydantic refers to
    them under ``$defs``, which an OpenAPI document does not hold)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_POLL = {"type": "object", "properties": {"rq_id": {"type": "string", "maxLength": 64}},
         "required": ["rq_id"]}  # fmt: skip
CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"anyOf": [_inlined(TaskCreate.model_json_schema()), _POLL]}
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "task_file": {"type": "string", "format": "binary"},
                        "rq_id": {"type": "string", "maxLength": 64},
                    },
                }
            },
        },
    }
}


# --- POST tasks: the body ---------------------------------------------------------


async def read_task_body(request: Request) -> TaskCreate | None:
    """The new task, from a JSON body held to the ordinary size limit; None for an
    import, whose form the route reads once it knows who is asking."""
    if request.query_params.get("action") == "import":
        return None
    raw = await _read_limited(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise InvalidInput.on("non_field_errors", JSON_ONLY)
    if not raw.strip():
        raise InvalidInput.on("non_field_errors", "This field is required.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.on("non_field_errors", f"JSON parse error - {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput.on("non_field_errors", JSON_ONLY)
    try:
        return TaskCreate.model_validate(body)
    except ValidationError as exc:
        fields, detail = validation_fields(exc.errors())
        raise InvalidInput(fields, detail) from None


async def _read_limited(request: Request) -> bytes:
    limit: int = request.app.state.settings.max_request_bytes
    too_large = f"The request body is larger than {limit} bytes."
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=too_large)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status_code=413, detail=too_large)
    return bytes(body)


# --- GET tasks/{id}?action=export|download --------------------------------------------


def exported(
    request: Request, uow: UnitOfWork, actor: Actor, task_id: int, action: str
) -> Response:
    """CVAT's flow: 202 while the backup is made (a download asked for too early
    starts it, as CVAT does), 201 when it is ready; ``download`` then sends it."""
    settings = request.app.state.settings
    storage = request.app.state.storage
    state = backups.export(
        uow, request.app.state.runner, actor, task_id,
        ttl=timedelta(hours=settings.export_ttl_hours), storage=storage,
    )  # fmt: skip
    return export_answer(storage, state, action)


# --- POST tasks?action=import ----------------------------------------------------------


async def imported(request: Request, uow: UnitOfWork, actor: Actor, rq_id: str | None) -> Response:
    """Start a restore from the ``task_file`` sent, or poll the one ``rq_id`` names (a
    query parameter, a form field or a JSON body's, as CVAT's clients send it)."""
    backups.check_can_import(actor)
    # This request's unit of work holds SQLite's write lock from its start; an upload
    # can take minutes, in which every other writer would wait.
    await run_in_threadpool(uow.commit)
    upload, sent_id = await _import_form(request)
    rq_id = rq_id or sent_id
    if upload is None:
        if not rq_id:
            raise InvalidInput.on("task_file", "Send the backup as task_file (or an rq_id).")
        operation = await run_in_threadpool(backups.restore_state, uow, actor, rq_id)
        return _restore_answer(operation)
    storage = request.app.state.storage
    try:
        await run_in_threadpool(backups.check_archive, upload.file)
        staged = (await run_in_threadpool(stage_uploads, storage, [upload]))[0]
    finally:
        await upload.close()
    try:
        operation = await run_in_threadpool(
            backups.restore, uow, request.app.state.runner, actor, staged
        )
    except BaseException:
        storage.delete(staged["key"])
        raise
    return _restore_answer(operation)


async def _import_form(request: Request) -> tuple[UploadFile | None, str | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form(max_files=1, max_fields=16)
        upload, rq_id = form.get("task_file"), form.get("rq_id")
        if upload is not None and not isinstance(upload, UploadFile):
            raise InvalidInput.on("task_file", "Send the backup as a file.")
        return upload, rq_id if isinstance(rq_id, str) else None
    raw = await _read_limited(request)
    if not raw.strip():
        return None, None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput.on("non_field_errors", f"JSON parse error - {exc}") from None
    rq_id = body.get("rq_id") if isinstance(body, dict) else None
    return None, rq_id if isinstance(rq_id, str) else None


def _restore_answer(operation: Operation) -> Response:
    status = OperationStatus(operation.status)
    if status == OperationStatus.FINISHED:
        return JSONResponse({"id": (operation.result or {})["task_id"]}, status_code=201)
    if status in (OperationStatus.FAILED, OperationStatus.CANCELLED):
        return JSONResponse({"detail": operation.message, "rq_id": operation.id}, status_code=400)
    return JSONResponse({"rq_id": operation.id}, status_code=202)
