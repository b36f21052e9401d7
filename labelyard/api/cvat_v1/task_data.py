"""Task and job media: ``POST/GET /tasks/{id}/data``, ``data/meta``, ``status``, the same
reads on jobs, and ``/server/share``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from labelyard.adapters.storage import Storage
from labelyard.api.deps import ActorDep, SettingsDep, UowDep
from labelyard.api.errors import validation_fields
from labelyard.api.responses import MediaFileResponse
from labelyard.api.uploads import read_upload_form, stage_uploads
from labelyard.domain import Task
from labelyard.services import frames, ingest, jobs, task_data
from labelyard.services.errors import InvalidInput, NotFound
from labelyard.services.operations import UserFacingError
from labelyard.services.tasks import get_task

router = APIRouter(tags=["data"])


@router.post("/tasks/{task_id:int}/data", status_code=202)
async def add_data(task_id: int, request: Request, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    """Attach images, a video, archives, share files, remote files or an existing dataset
    to the task; answers at once, poll ``GET /tasks/{id}/status``. A task with data gets
    the new frames appended as new segments and jobs."""
    await run_in_threadpool(task_data.check_can_add, uow, actor, task_id)
    fields, uploads = await read_upload_form(request)
    try:
        data = task_data.DataRequest.model_validate(fields)
    except ValidationError as exc:
        found, detail = validation_fields(exc.errors())
        raise InvalidInput(found, detail) from None
    storage: Storage = request.app.state.storage
    staged = await run_in_threadpool(stage_uploads, storage, uploads) if uploads else []
    try:
        operation = await run_in_threadpool(
            task_data.request_data, uow, request.app.state.runner, actor, task_id, data, staged
        )
    except BaseException:
        for item in staged:
            storage.delete(item["key"])
        raise
    answer = data.model_dump()
    answer.update(
        client_files=[item["name"] for item in staged],
        chunk_size=data.chunk_size,
        size=0,
        compressed_chunk_type="imageset",
        original_chunk_type="imageset",
        operation_id=operation.id,
    )
    return answer


@router.get("/tasks/{task_id:int}/status")
def data_status(task_id: int, actor: ActorDep, uow: UowDep) -> dict[str, str]:
    """Queued / Started / Finished / Failed, with the progress or failure message."""
    return task_data.status(uow, actor, task_id)


@router.get("/tasks/{task_id:int}/data/meta")
def task_meta(task_id: int, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    return task_data.meta(uow, get_task(uow, actor, task_id))


@router.get("/jobs/{job_id:int}/data/meta")
def job_meta(job_id: int, actor: ActorDep, uow: UowDep) -> dict[str, Any]:
    job = jobs.get_job(uow, actor, job_id)
    return task_data.meta(uow, job.task, job.segment.start_frame, job.segment.stop_frame)


DataType = Literal["chunk", "frame", "preview"]


@router.get("/tasks/{task_id:int}/data")
def task_data_read(
    task_id: int,
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    type: DataType,
    number: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    quality: frames.Quality = "compressed",
) -> Response:
    """``type=chunk&number=N`` (a zip of JPEGs, or an MP4), ``type=frame&number=N``,
    ``type=preview``; ``quality=compressed|original``."""
    task = get_task(uow, actor, task_id)
    return _read(request, uow, task, type, number, quality, None)


@router.get("/jobs/{job_id:int}/data")
def job_data_read(
    job_id: int,
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    type: DataType,
    number: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    quality: frames.Quality = "compressed",
) -> Response:
    """The task's media seen through a job: frames and chunks of its segment only."""
    job = jobs.get_job(uow, actor, job_id)
    bounds = (job.segment.start_frame, job.segment.stop_frame)
    return _read(request, uow, job.task, type, number, quality, bounds)


def _read(
    request: Request,
    uow: UowDep,
    task: Task,
    kind: str,
    number: int | None,
    quality: frames.Quality,
    bounds: tuple[int, int] | None,
) -> Response:
    storage: Storage = request.app.state.storage
    files = frames.AssetFiles(storage, request.app.state.settings)
    if kind == "preview":
        return _stored(storage, frames.read_preview(uow, storage, files, task), "image/jpeg")
    if number is None:
        raise InvalidInput.on("number", "This field is required.")
    if kind == "frame":
        if bounds and not bounds[0] <= number <= bounds[1]:
            raise NotFound(f"Frame {number} is not in this job.")
        body, media_type = frames.read_frame(uow, files, task, quality, number)
        return Response(body, media_type=media_type)
    if bounds and task.chunk_size:
        first, last = bounds[0] // task.chunk_size, bounds[1] // task.chunk_size
        if not first <= number <= last:
            raise NotFound(f"Chunk {number} is not in this job.")
    key = frames.read_chunk(uow, storage, files, task, quality, number)
    return _stored(storage, key, frames.chunk_media_type(task, quality))


def _stored(storage: Storage, key: str, media_type: str) -> Response:
    local = storage.local_path(key)
    if local is not None:
        return MediaFileResponse(local, media_type=media_type)
    return StreamingResponse(storage.open(key), media_type=media_type)


@router.get("/server/share", tags=["server"])
def server_share(
    actor: ActorDep,
    settings: SettingsDep,
    directory: Annotated[str, Query(max_length=4096)] = "/",
) -> list[dict[str, str]]:
    """Files and folders in one directory of the server's share (LABELYARD_SHARE_DIR)."""
    try:
        return ingest.share_listing(settings, directory)
    except UserFacingError as exc:
        raise InvalidInput.on("directory", str(exc)) from None
