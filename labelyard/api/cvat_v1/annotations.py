"""``/jobs/{id}/annotations`` and ``/tasks/{id}/annotations``: CVAT's annotation model,
versioned; with ``format=`` the same paths export and import files (and ``/dataset``
exports with images)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from labelyard.api.deps import ActorDep, UowDep
from labelyard.api.responses import export_answer
from labelyard.api.uploads import stage_uploads
from labelyard.collector import pause_collector
from labelyard.domain import OperationStatus
from labelyard.services import annotation_body, exchange, imports, task_annotations
from labelyard.services import annotations as job_annotations
from labelyard.services.annotation_body import AnnotationsIn
from labelyard.services.annotations import Annotations
from labelyard.services.errors import InvalidInput
from labelyard.services.uow import UnitOfWork

# Annotation bodies and answers can hold 100,000s of objects: see labelyard.collector.
router = APIRouter(tags=["annotations"], dependencies=[Depends(pause_collector)])
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=64)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
SCHEMA_REF = "#/components/schemas/{name}"
BODY_SCHEMA, BODY_COMPONENTS = annotation_body.body_schemas(SCHEMA_REF)
# The body is read and decoded by the service's own decoder, not by FastAPI: this is
# what the OpenAPI document says of it.
DOCUMENTED_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": BODY_SCHEMA}}}
}


FormatName = Annotated[str | None, Query(max_length=64, description="e.g. COCO 1.0")]
DownloadAction = Annotated[Literal["download"] | None, Query()]
CreateLabels = Annotated[
    bool, Query(description="On import: add the labels the file has and the task lacks.")
]


async def _raw_body(request: Request) -> bytes:
    if "format" in request.query_params:
        return b""  # an import: the file comes as multipart (see _annotation_file)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise InvalidInput.on(
            "non_field_errors", "Expected a JSON object sent with Content-Type: application/json."
        )
    return await request.body()


def _decoded_body(
    request: Request, raw: Annotated[bytes, Depends(_raw_body)]
) -> AnnotationsIn | None:
    # A sync dependency: decoding a large body runs in the thread pool, before the unit
    # of work (listed after it) takes the database's write lock.
    if "format" in request.query_params:
        return None
    return annotation_body.decode(raw)


async def _annotation_file(request: Request) -> UploadFile | None:
    if "format" not in request.query_params:
        return None
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return None  # a poll of the import under way
    form = await request.form(max_files=1, max_fields=16)
    upload = form.get("annotation_file")
    if isinstance(upload, UploadFile):
        return upload
    if any(isinstance(value, UploadFile) for _, value in form.multi_items()):
        raise InvalidInput.on("annotation_file", "Send the file as annotation_file.")
    return None  # an empty form: CVAT's web client polls so


def _received_file(
    request: Request, upload: Annotated[UploadFile | None, Depends(_annotation_file)]
) -> imports.ReceivedFile | None:
    # A sync dependency: hashing a large file runs in the thread pool, before the unit of
    # work (listed after it) takes the database's write lock.
    if upload is None:
        return None
    storage = request.app.state.storage
    return imports.ReceivedFile(
        imports.file_digest(upload.file), lambda: stage_uploads(storage, [upload])[0]
    )


Body = Annotated[AnnotationsIn | None, Depends(_decoded_body)]
AnnotationFile = Annotated[imports.ReceivedFile | None, Depends(_received_file)]


def _exported(
    request: Request,
    uow: UnitOfWork,
    actor: Any,
    scope: exchange.Scope,
    object_id: int,
    format_name: str,
    action: str | None,
    *,
    with_images: bool,
) -> Response:
    settings = request.app.state.settings
    state = exchange.export(
        uow, request.app.state.runner, actor, scope, object_id, format_name,
        with_images=with_images, ttl=timedelta(hours=settings.export_ttl_hours),
        storage=request.app.state.storage,
    )  # fmt: skip
    return export_answer(request.app.state.storage, state, action)


def _imported(
    request: Request,
    uow: UnitOfWork,
    actor: Any,
    scope: exchange.Scope,
    object_id: int,
    format_name: str,
    received: imports.ReceivedFile | None,
    create_labels: bool,
) -> Response:
    operation = imports.receive(
        uow, request.app.state.runner, actor, scope, object_id, format_name, received,
        create_labels=create_labels,
    )  # fmt: skip
    status = OperationStatus(operation.status)
    if status == OperationStatus.FINISHED:
        return JSONResponse({"rq_id": operation.id, **(operation.result or {})}, status_code=201)
    if status in (OperationStatus.FAILED, OperationStatus.CANCELLED):
        return JSONResponse({"detail": operation.message, "rq_id": operation.id}, status_code=400)
    return JSONResponse({"rq_id": operation.id}, status_code=202)


def _required(body: AnnotationsIn | None) -> AnnotationsIn:
    if body is None:
        raise InvalidInput.on("format", "format= is for exports (GET) and imports (PUT).")
    return body


def _json(annotations: Annotations) -> Response:
    return Response(annotations.to_json(), media_type="application/json")


@router.get("/jobs/{job_id:int}/annotations")
def read_annotations(
    job_id: int,
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    format: FormatName = None,
    action: DownloadAction = None,
) -> Response:
    """The job's tags, shapes and tracks, and their ``version``. With ``format``: an
    export of them in that format (202 while it is made, then 201; ``action=download``
    sends the zip)."""
    if format:
        return _exported(request, uow, actor, "job", job_id, format, action, with_images=False)
    return _json(job_annotations.read(uow, actor, job_id))


@router.get("/jobs/{job_id:int}/dataset")
def export_job_dataset(
    job_id: int,
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    format: Annotated[str, Query(max_length=64)],
    action: DownloadAction = None,
) -> Response:
    """The job's annotations with its images, in ``format`` (202, 201, then download)."""
    return _exported(request, uow, actor, "job", job_id, format, action, with_images=True)


@router.put("/jobs/{job_id:int}/annotations", openapi_extra=DOCUMENTED_BODY)
def replace_annotations(
    job_id: int,
    request: Request,
    body: Body,
    upload: AnnotationFile,
    actor: ActorDep,
    uow: UowDep,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
    format: FormatName = None,
    create_labels: CreateLabels = False,
) -> Response:
    """Replace all of the job's annotations. Send the ``version`` you read (in the body or
    as ``If-Match``) to be refused with 409 instead of overwriting someone's newer work.
    With ``format``: import a multipart ``annotation_file`` in that format instead (202).
    The same call polls it, with the same file again or none: 202 while it runs, then
    201 (or 400 with the reason) once; a file sent after that is imported anew."""
    if format:
        return _imported(request, uow, actor, "job", job_id, format, upload, create_labels)
    return _json(
        job_annotations.write(
            uow,
            actor,
            job_id,
            _required(body),
            action=None,
            if_match=if_match,
            idempotency_key=idempotency_key,
        )
    )


@router.patch("/jobs/{job_id:int}/annotations", openapi_extra=DOCUMENTED_BODY)
def change_annotations(
    job_id: int,
    body: Body,
    actor: ActorDep,
    uow: UowDep,
    action: Annotated[job_annotations.Action, Query()],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """``action=create`` adds the objects (ids are assigned), ``update`` replaces objects
    by id, ``delete`` removes them by id. Every write increments ``version``."""
    return _json(
        job_annotations.write(
            uow,
            actor,
            job_id,
            _required(body),
            action=action,
            if_match=if_match,
            idempotency_key=idempotency_key,
        )
    )


@router.delete("/jobs/{job_id:int}/annotations", status_code=204)
def delete_annotations(
    job_id: int, actor: ActorDep, uow: UowDep, if_match: IfMatch = None
) -> Response:
    job_annotations.clear(uow, actor, job_id, if_match)
    return Response(status_code=204)


@router.get("/tasks/{task_id:int}/annotations")
def read_task_annotations(
    task_id: int,
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    format: FormatName = None,
    action: DownloadAction = None,
) -> Response:
    """All jobs' annotations together (objects that overlapping jobs both hold, once).
    With ``format``: an export, as for a job."""
    if format:
        return _exported(request, uow, actor, "task", task_id, format, action, with_images=False)
    return _json(task_annotations.read(uow, actor, task_id))


@router.get("/tasks/{task_id:int}/dataset")
def export_task_dataset(
    task_id: int,
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    format: Annotated[str, Query(max_length=64)],
    action: DownloadAction = None,
) -> Response:
    """The task's annotations with its images, in ``format`` (202, 201, then download)."""
    return _exported(request, uow, actor, "task", task_id, format, action, with_images=True)


@router.put("/tasks/{task_id:int}/annotations", openapi_extra=DOCUMENTED_BODY)
def replace_task_annotations(
    task_id: int,
    request: Request,
    body: Body,
    upload: AnnotationFile,
    actor: ActorDep,
    uow: UowDep,
    if_match: IfMatch = None,
    format: FormatName = None,
    create_labels: CreateLabels = False,
) -> Response:
    """Replace the task's annotations: objects go to the jobs whose frames hold them.
    With ``format``: import an ``annotation_file``, as for a job."""
    if format:
        return _imported(request, uow, actor, "task", task_id, format, upload, create_labels)
    return _json(
        task_annotations.write(uow, actor, task_id, _required(body), action=None, if_match=if_match)
    )


@router.patch("/tasks/{task_id:int}/annotations", openapi_extra=DOCUMENTED_BODY)
def change_task_annotations(
    task_id: int,
    body: Body,
    actor: ActorDep,
    uow: UowDep,
    action: Annotated[job_annotations.Action, Query()],
    if_match: IfMatch = None,
) -> Response:
    return _json(
        task_annotations.write(
            uow, actor, task_id, _required(body), action=action, if_match=if_match
        )
    )


@router.delete("/tasks/{task_id:int}/annotations", status_code=204)
def delete_task_annotations(
    task_id: int, actor: ActorDep, uow: UowDep, if_match: IfMatch = None
) -> Response:
    task_annotations.clear(uow, actor, task_id, if_match)
    return Response(status_code=204)


@router.get("/projects/{project_id:int}/annotations")
def export_project_annotations(
    project_id: int,
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    format: Annotated[str, Query(max_length=64)],
    action: DownloadAction = None,
) -> Response:
    """The annotations of all the project's tasks in ``format`` (each task's subset is
    its items' subset): 202 while it is made, 201, then ``action=download``."""
    return _exported(request, uow, actor, "project", project_id, format, action, with_images=False)


@router.get("/projects/{project_id:int}/dataset")
def export_project_dataset(
    project_id: int,
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    format: Annotated[str, Query(max_length=64)],
    action: DownloadAction = None,
) -> Response:
    """The project's annotations with its tasks' images, in ``format``."""
    return _exported(request, uow, actor, "project", project_id, format, action, with_images=True)
