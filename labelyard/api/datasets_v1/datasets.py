"""``/datasets``, ``/datasets/{id}/batchs``, ``/datasets/process/{upload-id}``, ``/datas``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from labelyard.adapters.storage import Storage
from labelyard.api.deps import ActorDep, IdQuery, LinksDep, SettingsDep, UowDep
from labelyard.api.pagination import Page, PageDep, paginate
from labelyard.api.uploads import read_upload_form, stage_uploads
from labelyard.domain import Asset, Dataset, Operation
from labelyard.services import datasets, operations
from labelyard.services.errors import InvalidInput, NotFound

router = APIRouter(tags=["datasets"])


class BatchOut(BaseModel):
    id: int
    name: str
    created_date: datetime


class DatasetOut(BaseModel):
    url: str
    id: int
    name: str
    description: str
    scene: str
    annotation_type: str
    format: str
    version: str
    status: str
    item_count: int
    annotation_status: str
    annotated_count: int
    storage: str
    owner_id: int | None
    batches: list[BatchOut]
    created_date: datetime
    updated_date: datetime

    @classmethod
    def of(cls, dataset: Dataset, links: Any, item_count: int) -> DatasetOut:
        return cls(
            url=links.of("datasets", dataset.id),
            id=dataset.id,
            name=dataset.name,
            description=dataset.description,
            scene=dataset.scene,
            annotation_type=dataset.annotation_type,
            format=dataset.format,
            version=dataset.version,
            status=dataset.status,
            item_count=item_count,
            annotation_status=dataset.annotation_status,
            # Items with annotations in the newest version a task published.
            annotated_count=dataset.annotated_count,
            storage=dataset.storage,
            owner_id=dataset.owner_id,
            batches=[
                BatchOut(id=b.id, name=b.name, created_date=b.created_date) for b in dataset.batches
            ],
            created_date=dataset.created_date,
            updated_date=dataset.updated_date,
        )


class ItemOut(BaseModel):
    id: int
    dataset_id: int
    batch_id: int
    name: str
    kind: str
    width: int
    height: int
    frame_count: int
    size_bytes: int
    url: str


class UploadOut(BaseModel):
    upload_id: str
    batch: BatchOut


class ProgressOut(BaseModel):
    upload_id: str
    status: str
    progress: float
    message: str
    files_total: int
    files_done: int
    bytes_total: int
    bytes_done: int
    errors: list[dict[str, str]]


def _one(uow: Any, links: Any, dataset: Dataset) -> DatasetOut:
    counts = datasets.item_counts(uow.session, [dataset.id])
    return DatasetOut.of(dataset, links, counts.get(dataset.id, 0))


def dataset_filter(
    id: IdQuery = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
    scene: str | None = None,
    status: str | None = None,
    search: Annotated[str | None, Query(max_length=256)] = None,
    ordering: str | None = None,
) -> datasets.DatasetFilter:
    return datasets.DatasetFilter(id, name, scene, status, search, ordering)


@router.get("/datasets", response_model=Page[DatasetOut])
def list_datasets(
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    links: LinksDep,
    page: PageDep,
    filters: Annotated[datasets.DatasetFilter, Depends(dataset_filter)],
) -> Page[DatasetOut]:
    listed = paginate(
        uow.session, datasets.list_datasets(actor, filters), page, request, lambda d: d
    )
    counts = datasets.item_counts(uow.session, [d.id for d in listed.results])
    return Page(
        count=listed.count, next=listed.next, previous=listed.previous,
        results=[DatasetOut.of(d, links, counts.get(d.id, 0)) for d in listed.results],
    )  # fmt: skip


@router.post("/datasets", status_code=201, response_model=DatasetOut)
def create_dataset(
    body: datasets.DatasetCreate,
    actor: ActorDep,
    uow: UowDep,
    links: LinksDep,
    settings: SettingsDep,
) -> DatasetOut:
    return _one(uow, links, datasets.create_dataset(uow, actor, body, settings))


@router.get("/datasets/{dataset_id:int}", response_model=DatasetOut)
def read_dataset(dataset_id: int, actor: ActorDep, uow: UowDep, links: LinksDep) -> DatasetOut:
    return _one(uow, links, datasets.get_dataset(uow, actor, dataset_id))


@router.patch("/datasets/{dataset_id:int}", response_model=DatasetOut)
def update_dataset(
    dataset_id: int, body: datasets.DatasetWrite, actor: ActorDep, uow: UowDep, links: LinksDep
) -> DatasetOut:
    return _one(uow, links, datasets.update_dataset(uow, actor, dataset_id, body))


@router.patch("/datasets", response_model=DatasetOut)
def update_dataset_by_body(
    body: datasets.DatasetPatch, actor: ActorDep, uow: UowDep, links: LinksDep
) -> DatasetOut:
    """Seed 000's form: the dataset's ``id`` travels in the body."""
    if body.id is None:
        raise InvalidInput.on("id", "This field is required.")
    return _one(uow, links, datasets.update_dataset(uow, actor, body.id, body))


@router.delete("/datasets/{dataset_id:int}", status_code=204)
def delete_dataset(dataset_id: int, request: Request, actor: ActorDep, uow: UowDep) -> Response:
    """Deletes the dataset and its files; 409 while a task uses it."""
    datasets.delete_dataset(uow, request.app.state.storage, actor, dataset_id)
    return Response(status_code=204)


@router.post("/datasets/{dataset_id:int}/batchs", status_code=202, response_model=UploadOut)
async def upload_batch(
    dataset_id: int, request: Request, actor: ActorDep, uow: UowDep
) -> UploadOut:
    """Upload a batch: multipart files (images, videos, zip/tar archives), or
    ``remote_files`` / ``server_files``; ``name`` names the batch. Answers an upload id at
    once; ``GET /datasets/process/{upload-id}`` follows it."""
    await run_in_threadpool(datasets.check_can_upload, uow, actor, dataset_id)
    fields, uploads = await read_upload_form(request)
    storage: Storage = request.app.state.storage
    staged = await run_in_threadpool(stage_uploads, storage, uploads) if uploads else []
    sources = (
        staged
        + [{"kind": "share", "path": str(p)} for p in fields.get("server_files", [])]
        + [{"kind": "remote", "url": str(u)} for u in fields.get("remote_files", [])]
    )
    name = fields.get("name")
    try:
        operation, batch = await run_in_threadpool(
            datasets.start_upload, uow, request.app.state.runner, actor, dataset_id,
            str(name) if name is not None else None, sources,
        )  # fmt: skip
    except BaseException:
        for item in staged:
            storage.delete(item["key"])
        raise
    return UploadOut(
        upload_id=operation.id,
        batch=BatchOut(id=batch.id, name=batch.name, created_date=batch.created_date),
    )


@router.get("/datasets/process/{upload_id}", response_model=ProgressOut)
def upload_progress(upload_id: str, actor: ActorDep, uow: UowDep) -> ProgressOut:
    operation: Operation = operations.get_operation(uow, actor, upload_id)
    if operation.kind != datasets.UPLOAD_KIND:
        raise NotFound()
    details = operation.details or {}
    return ProgressOut(
        upload_id=operation.id,
        status=operation.status,
        progress=operation.progress,
        message=operation.message,
        files_total=details.get("files_total", 0),
        files_done=details.get("files_done", 0),
        bytes_total=details.get("bytes_total", 0),
        bytes_done=details.get("bytes_done", 0),
        errors=details.get("errors", []),
    )


@router.get("/datas", response_model=Page[ItemOut])
def list_items(
    request: Request,
    actor: ActorDep,
    uow: UowDep,
    page: PageDep,
    dataset_id: IdQuery = None,
    batch_id: IdQuery = None,
    kind: str | None = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
) -> Page[ItemOut]:
    """The items (images and videos) of the datasets you can see, each with a signed
    download URL."""
    storage: Storage = request.app.state.storage

    def item(asset: Asset) -> ItemOut:
        return ItemOut(
            id=asset.id, dataset_id=asset.dataset_id, batch_id=asset.batch_id, name=asset.name,
            kind=asset.kind, width=asset.width, height=asset.height,
            frame_count=asset.frame_count, size_bytes=asset.size_bytes,
            url=storage.signed_url(asset.storage_key, filename=asset.name.rsplit("/", 1)[-1]),
        )  # fmt: skip

    stmt = datasets.list_items(actor, dataset_id, batch_id, kind, name)
    return paginate(uow.session, stmt, page, request, item)
