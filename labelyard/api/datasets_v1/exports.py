"""``/datasets/exports``, ``/exports`` (seed 000's dataset download and task result
export, each followed by its export id) and ``/datasets/{id}/versions``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from labelyard.adapters.storage import Storage
from labelyard.api.deps import ActorDep, SettingsDep, UowDep
from labelyard.domain import DatasetVersion, Operation
from labelyard.services import dataset_versions, deliveries, destinations
from labelyard.services.datasets import get_dataset

router = APIRouter(tags=["exports"])
MAX_ID = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
FormatField = Annotated[str, Field(max_length=64, description="e.g. COCO 1.0")]


class DatasetExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: Id
    format: FormatField | None = Field(
        default=None, description="None: the files as they were uploaded."
    )
    with_annotations: StrictBool = False
    version: Annotated[str, Field(max_length=32)] | None = Field(
        default=None, description="A published version; the newest when not given."
    )


class TaskExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: Id
    format: FormatField
    with_images: StrictBool = False
    address: dict[str, Any] | Annotated[str, Field(max_length=2048)] = Field(
        description='{"kind": "local" | "s3" | "http", ...}, or an s3://, file:// or '
        "http(s):// URL."
    )


class ExportError(BaseModel):
    message: str


class DatasetExportOut(BaseModel):
    export_id: str
    dataset_id: int
    status: str
    progress: float
    message: str
    format: str | None
    with_annotations: bool
    version: str | None
    filename: str | None
    size: int | None
    download_url: str | None
    errors: list[ExportError]
    created_date: datetime
    finished_date: datetime | None


class TaskExportOut(BaseModel):
    export_id: str
    task_id: int
    status: str
    progress: float
    message: str
    format: str
    with_images: bool
    address: dict[str, Any]
    location: str | None
    size: int | None
    errors: list[ExportError]
    created_date: datetime
    finished_date: datetime | None


class VersionOut(BaseModel):
    id: int
    version: str
    number: int
    status: str
    message: str
    task_id: int | None
    annotated_count: int
    object_count: int
    created_date: datetime


def _errors(operation: Operation) -> list[ExportError]:
    return [ExportError(message=operation.message)] if operation.status == "failed" else []


def _dataset_export(operation: Operation, storage: Storage) -> DatasetExportOut:
    params, result = operation.params, operation.result or {}
    key = result.get("key")
    return DatasetExportOut(
        export_id=operation.id, dataset_id=params["dataset_id"], status=operation.status,
        progress=operation.progress, message=operation.message, format=params["format"],
        with_annotations=params["annotations"],
        version=result.get("version", params.get("version")),
        filename=result.get("filename"), size=result.get("size"),
        download_url=storage.signed_url(key, filename=result["filename"]) if key else None,
        errors=_errors(operation), created_date=operation.created,
        finished_date=operation.finished,
    )  # fmt: skip


def _task_export(operation: Operation) -> TaskExportOut:
    params, result = operation.params, operation.result or {}
    return TaskExportOut(
        export_id=operation.id, task_id=params["task_id"], status=operation.status,
        progress=operation.progress, message=operation.message, format=params["format"],
        with_images=params["images"],
        address=destinations.Destination.from_params(params["address"]).public(),
        location=result.get("location"), size=result.get("size"), errors=_errors(operation),
        created_date=operation.created, finished_date=operation.finished,
    )  # fmt: skip


@router.post("/datasets/exports", status_code=202, response_model=DatasetExportOut)
def export_dataset(
    body: DatasetExportIn, request: Request, actor: ActorDep, uow: UowDep, settings: SettingsDep
) -> DatasetExportOut:
    """Pack a dataset for download: its files as uploaded (no ``format``), or its items in
    a format, with a published version's annotations when ``with_annotations``."""
    operation = deliveries.export_dataset(
        uow, request.app.state.runner, actor, body.dataset_id, body.format,
        with_annotations=body.with_annotations, version=body.version,
        storage=request.app.state.storage, ttl=timedelta(hours=settings.export_ttl_hours),
    )  # fmt: skip
    return _dataset_export(operation, request.app.state.storage)


@router.get("/datasets/exports/{export_id}", response_model=DatasetExportOut)
def dataset_export_progress(
    export_id: str, request: Request, actor: ActorDep, uow: UowDep
) -> DatasetExportOut:
    """Progress; once ``finished``, ``download_url`` is a signed link to the zip."""
    operation = deliveries.get_export(uow, actor, export_id, deliveries.DATASET_EXPORT)
    return _dataset_export(operation, request.app.state.storage)


@router.post("/exports", status_code=202, response_model=TaskExportOut)
def export_task(
    body: TaskExportIn, request: Request, actor: ActorDep, uow: UowDep, settings: SettingsDep
) -> TaskExportOut:
    """Write a completed task's results in a format to an export address; 409 when the
    task is not completed."""
    operation = deliveries.export_task(
        uow, request.app.state.runner, actor, body.task_id, body.format, body.address, settings,
        with_images=body.with_images,
    )  # fmt: skip
    return _task_export(operation)


@router.get("/exports/{export_id}", response_model=TaskExportOut)
def task_export_progress(export_id: str, actor: ActorDep, uow: UowDep) -> TaskExportOut:
    """Progress, where the file went (``location``), and errors."""
    return _task_export(deliveries.get_export(uow, actor, export_id, deliveries.TASK_EXPORT))


@router.get("/datasets/{dataset_id:int}/versions", response_model=list[VersionOut])
def list_versions(dataset_id: int, actor: ActorDep, uow: UowDep) -> list[VersionOut]:
    """The versions tasks published into the dataset, oldest first."""
    dataset = get_dataset(uow, actor, dataset_id)
    return [_version(v) for v in dataset_versions.list_versions(uow, dataset.id)]


def _version(version: DatasetVersion) -> VersionOut:
    return VersionOut(
        id=version.id, version=version.version, number=version.number, status=version.status,
        message=version.message, task_id=version.task_id,
        annotated_count=version.annotated_count, object_count=version.object_count,
        created_date=version.created_date,
    )  # fmt: skip
