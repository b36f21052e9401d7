"""Seed 000's exports, each an operation whose id is the export id:

- ``POST /datasets/exports``: a dataset's items, as they were uploaded or in a format,
  with a published version's annotations or without; ``GET /datasets/exports/{id}``
  answers the progress and, once done, a download URL.
- ``POST /exports``: a completed task's results in a format, written to an export address
  (``services/destinations.py``); ``GET /exports/{id}`` answers progress, where the file
  went, and errors."""

from __future__ import annotations

import tempfile
import zipfile
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select, update

from labelyard.adapters.storage import Storage
from labelyard.config import Settings
from labelyard.domain import Asset, Batch, Operation, TaskState, User
from labelyard.formats.registry import find
from labelyard.services import access, dataset_versions, destinations, exchange, operations
from labelyard.services.access import Actor
from labelyard.services.datasets import get_dataset
from labelyard.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labelyard.services.frames import AssetFiles
from labelyard.services.operations import OperationContext, UserFacingError
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork

TASK_EXPORT = "exports.task"
DATASET_EXPORT = "exports.dataset"


def export_task(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    task_id: int,
    format_name: str,
    address: Any,
    settings: Settings,
    *,
    with_images: bool,
) -> Operation:
    """Start writing a completed task's results to ``address``."""
    task = get_task(uow, actor, task_id)
    if not access.can_manage_task(actor, task):
        raise PermissionDenied()
    chosen = find(format_name, exporting=True)
    destination = destinations.parse(address, settings)
    if task.state != TaskState.COMPLETED:
        raise Conflict(
            f"Only completed tasks export their results; this one is {task.state}. "
            "A manager completes it first."
        )
    operation = operations.create(
        uow, kind=TASK_EXPORT,
        params={"task_id": task.id, "format": chosen.display_name, "images": with_images,
                "address": destination.to_params()},
        owner_id=actor.id, target=f"task:{task.id}",
    )  # fmt: skip
    uow.commit()
    runner.submit(operation.id)
    return operation


def export_dataset(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    dataset_id: int,
    format_name: str | None,
    *,
    with_annotations: bool,
    version: str | None,
    storage: Storage,
    ttl: timedelta,
) -> Operation:
    """Start packing a dataset for download (and remove downloads older than ``ttl``)."""
    dataset = get_dataset(uow, actor, dataset_id)
    exchange.sweep_expired(uow, storage, ttl, DATASET_EXPORT)
    if format_name is None and with_annotations:
        raise InvalidInput.on("format", "Annotations are exported in a format: name one.")
    chosen = find(format_name, exporting=True) if format_name is not None else None
    if with_annotations:
        named = dataset_versions.list_versions(uow, dataset.id)
        ready = [v for v in named if v.status == "ready"]
        if version is not None and version not in {v.version for v in ready}:
            raise InvalidInput.on("version", f"The dataset has no published version {version}.")
        if not ready:
            raise Conflict("The dataset has no published annotations: publish a task's first.")
    operation = operations.create(
        uow, kind=DATASET_EXPORT,
        params={"dataset_id": dataset.id,
                "format": chosen.display_name if chosen is not None else None,
                "annotations": with_annotations, "version": version},
        owner_id=actor.id, target=f"dataset:{dataset.id}",
    )  # fmt: skip
    uow.commit()
    runner.submit(operation.id)
    return operation


def get_export(uow: UnitOfWork, actor: Actor, export_id: str, kind: str) -> Operation:
    operation = operations.get_operation(uow, actor, export_id)
    if operation.kind != kind:
        raise NotFound()
    return operation


# --- the operations ---------------------------------------------------------------


def run_task_export(context: OperationContext) -> dict[str, Any]:
    params = context.params
    try:
        chosen = find(params["format"], exporting=True)
        destination = destinations.Destination.from_params(params["address"])
        with tempfile.TemporaryDirectory(prefix="labelyard-delivery-") as scratch:
            archive = Path(scratch) / "export.zip"
            snapshot = exchange.take_snapshot(context, "task", params["task_id"])
            exchange.build_archive(
                context, snapshot, chosen, with_images=bool(params["images"]), archive=archive
            )
            filename = exchange.archive_name(
                "task", params["task_id"], chosen, bool(params["images"])
            )
            context.progress(0.9, f"Writing to {destination.location(filename)}", force=True)
            location = destinations.deliver(destination, archive, filename, context.deps.settings)
            return {"location": location, "filename": filename, "size": archive.stat().st_size}
    finally:
        _forget_secrets(context)


def _forget_secrets(context: OperationContext) -> None:
    """Credentials given with an address are not kept once the export has ended."""
    address = context.params.get("address") or {}
    if not any(key in address for key in destinations.SECRETS):
        return
    kept = {k: v for k, v in address.items() if k not in destinations.SECRETS}
    with context.uow() as uow:
        uow.session.execute(
            update(Operation)
            .where(Operation.id == context.operation_id)
            .values(params=context.params | {"address": kept})
        )
        uow.commit()


def run_dataset_export(context: OperationContext) -> dict[str, Any]:
    params = context.params
    storage = context.deps.storage
    with tempfile.TemporaryDirectory(prefix="labelyard-download-") as scratch:
        archive = Path(scratch) / "export.zip"
        with UnitOfWork(context.session_factory, writes=False) as uow:
            owner = uow.session.get(User, context.owner_id) if context.owner_id else None
            if owner is None:
                raise UserFacingError("The user who asked for this is gone.")
            actor = Actor.of(owner)
            try:
                dataset = get_dataset(uow, actor, params["dataset_id"])
            except NotFound:
                raise UserFacingError("The dataset was deleted.") from None
            name = dataset.name
            items = dataset_versions.dataset_frames(uow, dataset.id)
            labels: list[Any] = []
            objects: dict[str, list[dict[str, Any]]] = {"tags": [], "shapes": [], "tracks": []}
            version = None
            if params["annotations"]:
                found, content = dataset_versions.load_version(
                    uow, storage, dataset, params.get("version")
                )
                version = found.version
                labels, objects = dataset_versions.lay_over(content, items)
        if params["format"] is None:
            _pack_originals(context, params["dataset_id"], archive)
            suffix = "files"
        else:
            chosen = find(params["format"], exporting=True)
            part = exchange.Part(0, "default", items.frames, objects, refs=items.refs)
            snapshot = exchange.Snapshot(labels, [part], actor)
            exchange.build_archive(context, snapshot, chosen, with_images=True, archive=archive)
            suffix = chosen.display_name.replace(" ", "_").lower()
        filename = f"dataset_{params['dataset_id']}-{_safe(name)}-{suffix}.zip"
        key = f"exports/{context.operation_id}/{filename}"
        storage.put_file(key, archive, "application/zip")
        size = archive.stat().st_size
    return {"key": key, "filename": filename, "size": size, "version": version}


def _pack_originals(context: OperationContext, dataset_id: int, archive: Path) -> None:
    """The dataset's files as they were uploaded, each batch a folder."""
    runtime = context.deps
    files = AssetFiles(runtime.storage, runtime.settings)
    with UnitOfWork(context.session_factory, writes=False) as uow:
        assets = [
            (batch, asset)
            for asset, batch in uow.session.execute(
                select(Asset, Batch.name)
                .join(Batch, Batch.id == Asset.batch_id)
                .where(Asset.dataset_id == dataset_id)
                .order_by(Batch.id, Asset.name)
            )
        ]
        uow.session.expunge_all()
    # Stored media is compressed already (JPEG, PNG, video): stored as is, not deflated.
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as bundle:
        for done, (batch, asset) in enumerate(assets):
            bundle.write(files.path(asset), str(PurePosixPath(batch) / asset.name))
            context.progress(0.1 + 0.8 * done / max(len(assets), 1), "Packing the files")


def _safe(name: str) -> str:
    kept = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return kept.strip("._")[:64] or "dataset"


def register(registry: operations.HandlerRegistry) -> None:
    registry.register(TASK_EXPORT)(run_task_export)
    registry.register(DATASET_EXPORT)(run_dataset_export)
