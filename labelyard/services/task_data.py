"""Giving a task its data (CVAT's ``POST /tasks/{id}/data``) as an operation, and the
task's data status. Adding data to a task that has some appends frames, segments and
jobs (CVAT refuses that)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import insert, select

from labelyard.adapters.media.chunks import default_chunk_size
from labelyard.adapters.media.sorting import sort_names
from labelyard.adapters.storage import Storage
from labelyard.config import Settings
from labelyard.domain import (
    Asset,
    AssetKind,
    Batch,
    Dataset,
    DatasetStatus,
    Operation,
    OperationStatus,
    Scene,
    Task,
    TaskFrame,
)
from labelyard.domain.datasets import new_storage_prefix
from labelyard.services import access, ingest, jobs, operations
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, InvalidInput, PermissionDenied
from labelyard.services.fields import MAX_INT, PathText
from labelyard.services.frames import (
    QUALITIES,
    AssetFiles,
    FrameRef,
    build_chunk,
    chunk_key,
    forget_chunk,
    is_video_chunk,
)
from labelyard.services.operations import OperationContext, UserFacingError
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork

KIND = "task.data"
STEP_RE = re.compile(r"^step=(\d{1,9})$")
STATES = {
    OperationStatus.QUEUED: "Queued",
    OperationStatus.STARTED: "Started",
    OperationStatus.FINISHED: "Finished",
    OperationStatus.FAILED: "Failed",
    OperationStatus.CANCELLED: "Failed",
}


class DataRequest(BaseModel):
    """The form CVAT's client posts (files themselves come separately)."""

    model_config = ConfigDict(extra="forbid")

    image_quality: int = Field(default=70, ge=1, le=100)
    use_zip_chunks: bool = False
    use_cache: bool = True
    chunk_size: int | None = Field(default=None, ge=1, le=1000)
    start_frame: int = Field(default=0, ge=0, le=MAX_INT)
    stop_frame: int | None = Field(default=None, ge=0, le=MAX_INT)
    frame_filter: str = Field(default="", max_length=32)
    sorting_method: Literal["lexicographical", "natural", "predefined", "random"] = (
        "lexicographical"
    )
    server_files: list[PathText] = Field(default_factory=list, max_length=100_000)
    remote_files: list[PathText] = Field(default_factory=list, max_length=10_000)
    dataset_ids: list[int] = Field(default_factory=list, max_length=1)
    client_files: list[str] = Field(default_factory=list)

    @field_validator("frame_filter")
    @classmethod
    def _step(cls, value: str) -> str:
        if value and (not STEP_RE.match(value) or int(value.split("=")[1]) < 1):
            raise ValueError('Use "step=N" with N >= 1.')
        return value

    @property
    def step(self) -> int:
        return int(self.frame_filter.split("=")[1]) if self.frame_filter else 1


def check_can_add(uow: UnitOfWork, actor: Actor, task_id: int) -> None:
    """Refuse before any file is received when the actor may not give the task data."""
    task = get_task(uow, actor, task_id)
    if not access.can_change_task(actor, task):
        raise PermissionDenied()


def request_data(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    task_id: int,
    request: DataRequest,
    staged: list[dict[str, Any]],
) -> Operation:
    """Check the request, then queue the operation; ``staged`` are the uploaded files,
    already in storage."""
    task = get_task(uow, actor, task_id)
    if not access.can_change_task(actor, task):
        raise PermissionDenied()
    given = {
        "client_files": staged,
        "server_files": request.server_files,
        "remote_files": request.remote_files,
        "dataset_ids": request.dataset_ids,
    }
    kinds = [name for name, values in given.items() if values]
    if len(kinds) != 1:
        raise InvalidInput.on(
            "non_field_errors",
            "Give exactly one of client_files, server_files, remote_files or dataset_ids"
            + (f" (got {', '.join(kinds)})." if kinds else "."),
        )
    if request.stop_frame is not None and request.stop_frame < request.start_frame:
        raise InvalidInput.on("stop_frame", "stop_frame must not be below start_frame.")
    if request.dataset_ids:
        dataset = uow.session.get(Dataset, request.dataset_ids[0])
        if dataset is None or not access.can_use_dataset(actor, dataset):
            raise InvalidInput.on(
                "dataset_ids", f'Invalid pk "{request.dataset_ids[0]}" - object does not exist.'
            )
        if task.dataset_id is not None and task.dataset_id != dataset.id:
            raise Conflict("A task binds exactly one dataset; this task already has another.")
    running = uow.session.scalar(
        select(Operation.id).where(
            Operation.target == f"task:{task.id}",
            Operation.kind == KIND,
            Operation.status.in_([OperationStatus.QUEUED, OperationStatus.STARTED]),
        )
    )
    if running:
        raise Conflict("Data is already being added to this task; wait for it to finish.")
    sources = (
        staged
        or [{"kind": "share", "path": p} for p in request.server_files]
        or [{"kind": "remote", "url": u} for u in request.remote_files]
    )
    params = request.model_dump(exclude={"client_files", "server_files", "remote_files"})
    params |= {"task_id": task.id, "sources": sources}
    operation = operations.create(
        uow, kind=KIND, params=params, owner_id=actor.id, target=f"task:{task.id}"
    )
    uow.commit()
    runner.submit(operation.id)
    return operation


def status(uow: UnitOfWork, actor: Actor, task_id: int) -> dict[str, str]:
    """CVAT's ``{"state", "message"}`` for the task's latest data operation."""
    task = get_task(uow, actor, task_id)
    operation = operations.latest_for(uow, f"task:{task.id}", KIND)
    if operation is None:
        return {"state": "Finished" if task.size else "Unknown", "message": ""}
    return {"state": STATES[OperationStatus(operation.status)], "message": operation.message}


# --- the operation ------------------------------------------------------------------


@dataclass
class Plan:
    """The frames to add, worked out before anything is written."""

    refs: list[FrameRef]
    assets: dict[int, Asset]
    video: bool
    width: int
    height: int


@dataclass(frozen=True)
class TaskSnapshot:
    id: int
    name: str
    owner_id: int | None
    size: int
    mode: str
    chunk_size: int | None
    dataset_id: int | None
    dataset_prefix: str | None


def attach_data(context: OperationContext) -> dict[str, Any]:
    """Slow work (fetching, probing, storing, building chunks) runs before the one short
    transaction that records frames, segments and jobs; a failure anywhere removes what
    was stored and leaves the task as it was, so the request can simply be retried."""
    runtime = context.deps
    settings: Settings = runtime.settings
    storage: Storage = runtime.storage
    params = context.params
    request = DataRequest.model_validate(
        {k: v for k, v in params.items() if k in DataRequest.model_fields}
    )
    snapshot = _snapshot(context, params["task_id"])
    stored_prefix: str | None = None
    written: list[str] = []
    try:
        with ingest.work_dir(settings) as workdir:
            if params["sources"]:
                assets, stored_prefix = _ingest_sources(context, snapshot, params, workdir)
            else:
                with context.uow() as uow:
                    dataset_id = params["dataset_ids"][0]
                    assets = list(
                        uow.session.scalars(select(Asset).where(Asset.dataset_id == dataset_id))
                    )
            # Unsaved assets get stand-in ids until they are inserted.
            for index, asset in enumerate(a for a in assets if a.id is None):
                asset.id = -(index + 1)
            plan = plan_frames(snapshot, assets, request)
            chunk_size = (
                snapshot.chunk_size
                or request.chunk_size
                or default_chunk_size(plan.width, plan.height, video=plan.video)
            )
            if not request.use_cache:
                written = _build_chunks(context, snapshot, request, plan, chunk_size, runtime)
            context.progress(0.97, "Saving")
            result = _record(context, snapshot, request, plan, assets, chunk_size)
        if snapshot.size % chunk_size:
            # The last chunk of the old frames now has more frames: build it again.
            forget_chunk(storage, snapshot.id, (snapshot.size - 1) // chunk_size)
        return result
    except BaseException:
        for key in written:
            storage.delete(key)
        if stored_prefix is not None:
            storage.delete_prefix(stored_prefix + "/")
        raise
    finally:
        for source in params["sources"]:
            if source["kind"] == "staged":
                storage.delete(source["key"])


def _snapshot(context: OperationContext, task_id: int) -> TaskSnapshot:
    with UnitOfWork(context.session_factory, writes=False) as uow:
        task = uow.session.get(Task, task_id)
        if task is None:
            raise UserFacingError("The task was deleted.")
        prefix = None
        if task.dataset_id is not None:
            prefix = uow.session.get_one(Dataset, task.dataset_id).storage_prefix
        return TaskSnapshot(task.id, task.name, task.owner_id, task.size, task.mode,
                            task.chunk_size, task.dataset_id, prefix)  # fmt: skip


def _ingest_sources(
    context: OperationContext, snapshot: TaskSnapshot, params: dict[str, Any], workdir: Any
) -> tuple[list[Asset], str]:
    runtime = context.deps
    context.progress(0.02, "Gathering files")
    files = ingest.gather(params["sources"], runtime.storage, runtime.settings, workdir)
    probed = []
    for index, file in enumerate(files):
        probed.append(ingest.probe(file))
        context.progress(0.05 + 0.3 * (index + 1) / len(files),
                         f"Checked {index + 1} of {len(files)} files")  # fmt: skip
    dataset_prefix = snapshot.dataset_prefix or new_storage_prefix()
    batch_prefix = f"{dataset_prefix}/{context.operation_id[:8]}"
    context.progress(0.4, "Storing files")
    return ingest.put_files(runtime.storage, batch_prefix, probed), batch_prefix


def _record(
    context: OperationContext,
    snapshot: TaskSnapshot,
    request: DataRequest,
    plan: Plan,
    assets: list[Asset],
    chunk_size: int,
) -> dict[str, Any]:
    with context.uow() as uow:
        task = uow.session.get(Task, snapshot.id)
        if task is None:
            raise UserFacingError("The task was deleted.")
        if task.size != snapshot.size:
            raise UserFacingError("The task's data changed meanwhile; retry.")
        new_assets = [a for a in assets if a.id is not None and a.id < 0]
        if new_assets:
            dataset = _dataset_for(uow, task, plan, snapshot.dataset_prefix)
            batch = Batch(dataset_id=dataset.id, name=f"data-{context.operation_id[:8]}")
            uow.session.add(batch)
            uow.flush()
            stand_ins = {a.id: a for a in new_assets}
            ingest.insert_assets(uow, batch, new_assets)
            real = {stand_in: asset.id for stand_in, asset in stand_ins.items()}
            plan.refs = [replace(r, asset_id=real.get(r.asset_id, r.asset_id)) for r in plan.refs]
            plan.assets = {a.id: a for a in assets}
            dataset_id = dataset.id
        else:
            dataset_id = request.dataset_ids[0]
        offset = task.size
        _update_task(task, request, plan, chunk_size, dataset_id)
        uow.session.execute(insert(TaskFrame), [
            {"task_id": task.id, "frame": offset + i, "asset_id": r.asset_id,
             "asset_frame": r.asset_frame, "name": r.name,
             "width": plan.assets[r.asset_id].width, "height": plan.assets[r.asset_id].height}
            for i, r in enumerate(plan.refs)
        ])  # fmt: skip
        ranges = jobs.segment_ranges(offset, len(plan.refs), task.segment_size, task.overlap or 0)
        jobs.add_segments(uow, task, ranges)
        uow.commit()
        return {"task_id": task.id, "dataset_id": dataset_id, "frames": len(plan.refs)}


def _dataset_for(uow: UnitOfWork, task: Task, plan: Plan, prefix: str | None) -> Dataset:
    """Uploaded files become a dataset of their own, bound to the task."""
    if task.dataset_id is not None:
        return uow.session.get_one(Dataset, task.dataset_id)
    dataset = Dataset(
        name=task.name,
        owner_id=task.owner_id,
        scene=Scene.VIDEO if plan.video else Scene.IMAGE,
        status=DatasetStatus.READY,
    )
    if prefix:
        dataset.storage_prefix = prefix
    uow.session.add(dataset)
    uow.flush()
    return dataset


def plan_frames(task: TaskSnapshot, assets: list[Asset], request: DataRequest) -> Plan:
    """The frames ``assets`` give, cut and ordered as ``request`` says: what the data
    operation records, and what a backup checks it can be restored by."""
    if not assets:
        raise UserFacingError("No media files were given.")
    videos = [a for a in assets if a.kind == AssetKind.VIDEO]
    if videos and len(assets) > 1:
        others = ", ".join(a.name for a in assets if a is not videos[0])
        raise UserFacingError(
            f"{others}: a task takes either images or one video ({videos[0].name}), not both"
            " or more videos."
        )
    if task.size and (task.mode == "interpolation") != bool(videos):
        raise UserFacingError("Images and video cannot be mixed in one task.")
    by_name = {a.name: a for a in assets}
    order = sort_names(list(by_name), request.sorting_method, seed=task.id)
    if videos:
        video = videos[0]
        numbers: list[tuple[Asset, int]] = [(video, n) for n in range(video.frame_count)]
    else:
        numbers = [(by_name[name], 0) for name in order]
    last = len(numbers) - 1
    stop = last if request.stop_frame is None else min(request.stop_frame, last)
    chosen = numbers[request.start_frame : stop + 1 : request.step]
    if not chosen:
        raise UserFacingError("start_frame, stop_frame and frame_filter leave no frames.")
    refs = [FrameRef(0, asset.id, number, _frame_name(asset, number)) for asset, number in chosen]
    first = chosen[0][0]
    return Plan(refs, {a.id: a for a in assets}, bool(videos), first.width, first.height)


def _frame_name(asset: Asset, number: int) -> str:
    return asset.name if asset.kind == AssetKind.IMAGE else f"{asset.name}#{number}"


def _update_task(
    task: Task, request: DataRequest, plan: Plan, chunk_size: int, dataset_id: int
) -> None:
    if not task.size:
        task.mode = "interpolation" if plan.video else "annotation"
        task.image_quality = request.image_quality
        task.use_cache = request.use_cache
        video_chunks = plan.video and not request.use_zip_chunks
        task.compressed_chunk_type = "video" if video_chunks else "imageset"
        task.original_chunk_type = "video" if plan.video else "imageset"
        task.data_params = {
            "start_frame": request.start_frame,
            "stop_frame": request.stop_frame,
            "frame_filter": request.frame_filter,
            "sorting_method": request.sorting_method,
        }
        if task.overlap is None:
            task.overlap = 5 if plan.video else 0
    task.chunk_size = chunk_size
    task.dataset_id = dataset_id
    task.size += len(plan.refs)


def _build_chunks(
    context: OperationContext,
    snapshot: TaskSnapshot,
    request: DataRequest,
    plan: Plan,
    chunk_size: int,
    runtime: Any,
) -> list[str]:
    """Without use_cache every new chunk is built now; returns the keys written."""
    storage: Storage = runtime.storage
    files = AssetFiles(storage, runtime.settings)
    offset, size = snapshot.size, snapshot.size + len(plan.refs)
    shape = Task(
        id=snapshot.id,
        image_quality=request.image_quality,
        compressed_chunk_type="video" if plan.video and not request.use_zip_chunks else "imageset",
        original_chunk_type="video" if plan.video else "imageset",
    )
    if offset % chunk_size:
        raise UserFacingError(
            "Appending to a task whose last chunk is partial needs use_cache=true."
        )
    numbers = range(offset // chunk_size, (size - 1) // chunk_size + 1)
    written = []
    for done, number in enumerate(numbers):
        first = number * chunk_size - offset
        refs = plan.refs[first : first + chunk_size]
        for quality in QUALITIES:
            key = chunk_key(snapshot.id, quality, number, is_video_chunk(shape, quality))
            storage.put_bytes(key, build_chunk(shape, quality, refs, plan.assets, files))
            written.append(key)
        context.progress(0.45 + 0.5 * (done + 1) / len(numbers),
                         f"Built chunk {done + 1} of {len(numbers)}")  # fmt: skip
    return written


def register(registry: operations.HandlerRegistry) -> None:
    registry.register(KIND)(attach_data)


def meta(
    uow: UnitOfWork, task: Task, first: int | None = None, last: int | None = None
) -> dict[str, Any]:
    """CVAT's data/meta: chunking, the frame range and each frame's name and size (one
    entry for a video, as CVAT answers)."""
    first = 0 if first is None else first
    last = task.size - 1 if last is None else last
    rows = uow.session.execute(
        select(TaskFrame.name, TaskFrame.width, TaskFrame.height)
        .where(TaskFrame.task_id == task.id, TaskFrame.frame.between(first, last))
        .order_by(TaskFrame.frame)
    ).all()
    if task.mode == "interpolation" and rows:
        name = rows[0].name.rsplit("#", 1)[0]
        frames = [{"width": rows[0].width, "height": rows[0].height, "name": name}]
    else:
        frames = [{"width": r.width, "height": r.height, "name": r.name} for r in rows]
    params = task.data_params or {}
    return {
        "chunk_size": task.chunk_size,
        "size": task.size,
        "image_quality": task.image_quality,
        "start_frame": first,
        "stop_frame": max(last, 0),
        "frame_filter": params.get("frame_filter", ""),
        "frames": frames,
    }
