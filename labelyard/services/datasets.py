"""Datasets, batches and their items (seed 000's dataset management)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field
from sqlalchemy import Select, delete, func, or_, select

from labelyard.adapters.storage import Storage
from labelyard.config import Settings
from labelyard.domain import Asset, Batch, Dataset, DatasetStatus, Operation, Scene, Task
from labelyard.domain.datasets import NAME_MAX
from labelyard.services import access, ingest, operations
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labelyard.services.fields import Id, WriteModel, is_id, one_line
from labelyard.services.listing import icontains, order_by
from labelyard.services.operations import OperationContext, UserFacingError
from labelyard.services.uow import UnitOfWork

UPLOAD_KIND = "dataset.upload"


class DatasetWrite(WriteModel):
    read_only = frozenset(
        {"url", "status", "item_count", "annotated_count", "storage", "owner", "batches",
         "created_date", "updated_date"}
    )  # fmt: skip

    name: str = Field(default="", min_length=1, max_length=NAME_MAX)
    description: str = Field(default="", max_length=10_000)
    scene: Scene = Scene.IMAGE
    annotation_type: str = Field(default="", max_length=64)
    format: str = Field(default="", max_length=64)
    version: str = Field(default="0.1", max_length=32)


class DatasetCreate(DatasetWrite):
    read_only = DatasetWrite.read_only | {"id"}

    name: str = Field(min_length=1, max_length=NAME_MAX)


class DatasetPatch(DatasetWrite):
    """``PATCH /datasets`` names the dataset in the body, as seed 000 lists it."""

    id: Id | None = None


@dataclass
class DatasetFilter:
    id: int | None = None
    name: str | None = None
    scene: str | None = None
    status: str | None = None
    search: str | None = None
    ordering: str | None = None


def item_counts(session: Any, dataset_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(Asset.dataset_id, func.count())
        .where(Asset.dataset_id.in_(dataset_ids))
        .group_by(Asset.dataset_id)
    )
    return {dataset_id: count for dataset_id, count in rows}


def list_datasets(actor: Actor, filters: DatasetFilter) -> Select[Any]:
    stmt = select(Dataset).where(access.visible_datasets(actor))
    for column, value in ((Dataset.id, filters.id), (Dataset.scene, filters.scene),
                          (Dataset.status, filters.status)):  # fmt: skip
        if value is not None:
            stmt = stmt.where(column == value)
    if filters.name:
        stmt = stmt.where(icontains(Dataset.name, filters.name))
    if filters.search:
        stmt = stmt.where(
            or_(
                icontains(Dataset.name, filters.search),
                icontains(Dataset.description, filters.search),
            )
        )
    columns = {"id": Dataset.id, "name": Dataset.name, "created_date": Dataset.created_date,
               "updated_date": Dataset.updated_date}  # fmt: skip
    return order_by(stmt, filters.ordering, columns, default="-id")


def get_dataset(uow: UnitOfWork, actor: Actor, dataset_id: int) -> Dataset:
    if not is_id(dataset_id):
        raise NotFound()
    dataset = uow.session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, access.visible_datasets(actor))
    )
    if dataset is None:
        raise NotFound()
    return dataset


def create_dataset(
    uow: UnitOfWork, actor: Actor, data: DatasetCreate, settings: Settings
) -> Dataset:
    if not actor.can_create:
        raise PermissionDenied()
    dataset = Dataset(owner_id=actor.id, storage=settings.storage, status=DatasetStatus.EMPTY)
    _write(dataset, data, data.model_fields_set | {"name"})
    uow.session.add(dataset)
    uow.commit()
    return dataset


def update_dataset(uow: UnitOfWork, actor: Actor, dataset_id: int, data: DatasetWrite) -> Dataset:
    dataset = get_dataset(uow, actor, dataset_id)
    if not access.can_use_dataset(actor, dataset):
        raise PermissionDenied()
    _write(dataset, data, data.model_fields_set - {"id"})
    uow.commit()
    return dataset


def _write(dataset: Dataset, data: DatasetWrite, fields: set[str]) -> None:
    for name in ("name", "description", "scene", "annotation_type", "format", "version"):
        if name in fields:
            value = getattr(data, name)
            setattr(dataset, name, value.value if isinstance(value, Scene) else value)


def delete_dataset(uow: UnitOfWork, storage: Storage, actor: Actor, dataset_id: int) -> None:
    dataset = get_dataset(uow, actor, dataset_id)
    if not access.can_use_dataset(actor, dataset):
        raise PermissionDenied()
    users = list(uow.session.scalars(select(Task.id).where(Task.dataset_id == dataset.id)))
    if users:
        raise Conflict(f"Tasks {', '.join(map(str, users))} use this dataset; delete them first.")
    prefix = dataset.storage_prefix
    uow.session.execute(delete(Asset).where(Asset.dataset_id == dataset.id))
    uow.session.delete(dataset)
    uow.commit()
    storage.delete_prefix(prefix + "/")


def list_items(
    actor: Actor, dataset_id: int | None, batch_id: int | None, kind: str | None, name: str | None
) -> Select[Any]:
    stmt = (
        select(Asset)
        .join(Dataset, Dataset.id == Asset.dataset_id)
        .where(access.visible_datasets(actor))
    )
    for column, value in ((Asset.dataset_id, dataset_id), (Asset.batch_id, batch_id),
                          (Asset.kind, kind)):  # fmt: skip
        if value is not None:
            stmt = stmt.where(column == value)
    if name:
        stmt = stmt.where(icontains(Asset.name, name))
    return stmt.order_by(Asset.id)


def check_can_upload(uow: UnitOfWork, actor: Actor, dataset_id: int) -> None:
    """Refuse before any file is received when the actor may not upload into it."""
    if not access.can_use_dataset(actor, get_dataset(uow, actor, dataset_id)):
        raise PermissionDenied()


def start_upload(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    dataset_id: int,
    batch_name: str | None,
    sources: list[dict[str, Any]],
) -> tuple[Operation, Batch]:
    """Create the batch (its name must be free in the dataset) and queue the upload."""
    dataset = get_dataset(uow, actor, dataset_id)
    if not access.can_use_dataset(actor, dataset):
        raise PermissionDenied()
    if not sources:
        raise InvalidInput.on("files", "Give files, remote_files or server_files.")
    count = uow.session.scalar(select(func.count()).where(Batch.dataset_id == dataset.id)) or 0
    name = one_line((batch_name or "").strip(), "name") or f"batch-{count + 1}"
    for source in sources:
        if source["kind"] in ("share", "remote"):
            field = "server_files" if source["kind"] == "share" else "remote_files"
            one_line(source.get("path") or source.get("url") or "", field)
    if len(name) > NAME_MAX:
        raise InvalidInput.on("name", f"At most {NAME_MAX} characters.")
    if uow.session.scalar(
        select(Batch.id).where(Batch.dataset_id == dataset.id, Batch.name == name)
    ):
        raise InvalidInput.on("name", f'This dataset already has a batch named "{name}".')
    batch = Batch(dataset_id=dataset.id, name=name)
    uow.session.add(batch)
    dataset.status = DatasetStatus.UPLOADING
    uow.flush()
    operation = operations.create(
        uow, kind=UPLOAD_KIND, owner_id=actor.id, target=f"dataset:{dataset.id}",
        params={"dataset_id": dataset.id, "batch_id": batch.id, "sources": sources},
    )  # fmt: skip
    uow.commit()
    runner.submit(operation.id)
    return operation, batch


def upload_batch(context: OperationContext) -> dict[str, Any]:
    """Store every file that is good media; report the others per file."""
    runtime = context.deps
    params = context.params
    storage: Storage = runtime.storage
    errors: list[dict[str, str]] = []
    with UnitOfWork(context.session_factory, writes=False) as uow:
        batch = uow.session.get(Batch, params["batch_id"])
        if batch is None:
            raise UserFacingError("The batch was deleted.")
        prefix = f"{uow.session.get_one(Dataset, batch.dataset_id).storage_prefix}/{batch.id}"
    try:
        with ingest.work_dir(runtime.settings) as workdir:
            files = []
            for index, source in enumerate(params["sources"]):
                try:
                    files += ingest.gather(
                        [source], storage, runtime.settings, workdir / str(index)
                    )
                except UserFacingError as exc:
                    errors.append({"file": _source_name(source), "message": str(exc)})
            # Sources refused while gathering count as handled files.
            gather_errors = len(errors)
            total_bytes = sum(f.path.stat().st_size for f in files)
            probed, done_bytes = [], 0
            for index, file in enumerate(files):
                try:
                    probed.append(ingest.probe(file))
                except UserFacingError as exc:
                    errors.append({"file": file.name, "message": str(exc)})
                done_bytes += file.path.stat().st_size
                refused = gather_errors
                _report(context, refused + index + 1, refused + len(files), done_bytes,
                        total_bytes, errors)  # fmt: skip
            if not probed:
                raise UserFacingError(
                    "No file could be added: " + "; ".join(e["message"] for e in errors[:5])
                )
            assets = ingest.put_files(storage, prefix, probed)
        with context.uow() as uow:
            batch = uow.session.get_one(Batch, params["batch_id"])
            ingest.insert_assets(uow, batch, assets)
            uow.session.get_one(Dataset, batch.dataset_id).status = DatasetStatus.READY
            uow.commit()
    except BaseException:
        storage.delete_prefix(prefix + "/")
        with context.uow() as uow:
            uow.session.execute(delete(Batch).where(Batch.id == params["batch_id"]))
            dataset = uow.session.get(Dataset, params["dataset_id"])
            if dataset is not None and dataset.status == DatasetStatus.UPLOADING:
                has_items = uow.session.scalar(
                    select(Asset.id).where(Asset.dataset_id == dataset.id).limit(1)
                )
                dataset.status = DatasetStatus.READY if has_items else DatasetStatus.EMPTY
            uow.commit()
        raise
    finally:
        for source in params["sources"]:
            if source["kind"] == "staged":
                storage.delete(source["key"])
    return {"batch_id": params["batch_id"], "items": len(assets), "errors": errors}


def _source_name(source: dict[str, Any]) -> str:
    return str(source.get("name") or source.get("path") or source.get("url"))


def _report(
    context: OperationContext, done: int, total: int, done_bytes: int, total_bytes: int,
    errors: list[dict[str, str]],
) -> None:  # fmt: skip
    details = {"files_total": total, "files_done": done, "bytes_total": total_bytes,
               "bytes_done": done_bytes, "errors": list(errors)}  # fmt: skip
    context.progress(
        0.9 * done / max(total, 1), f"{done} of {total} files", details=details,
        force=done == total,
    )  # fmt: skip


def register(registry: operations.HandlerRegistry) -> None:
    registry.register(UPLOAD_KIND)(upload_batch)
