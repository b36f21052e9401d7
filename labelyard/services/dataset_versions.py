"""Publishing a task's annotations into its dataset (seed 001's 提送至AI平台).

``GET /tasks/{id}/publish`` adds a dataset version (0.1 -> 0.2 -> ...) and an operation
that keeps the task's annotations in a file, by asset and asset frame rather than task
frame, so they outlive the task and can be laid over the dataset's own items later
(``POST /datasets/exports`` with annotations). When the file is written the dataset's
version moves on and the dataset is marked annotated."""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from labelyard.domain import (
    AnnotationStatus,
    Asset,
    AssetKind,
    Batch,
    Dataset,
    DatasetVersion,
    TaskFrame,
    VersionStatus,
)
from labelyard.formats import mapping
from labelyard.services import access, exchange, operations
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labelyard.services.frames import FrameRef
from labelyard.services.operations import OperationContext, UserFacingError
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork

PUBLISH = "datasets.publish"
FILE_FORMAT = 1


def next_version(version: str) -> str:
    """The version after ``version``: its last number plus one (0.1 -> 0.2, 1.9 -> 1.10)."""
    head, _, last = version.rpartition(".")
    if last.isdigit():
        return f"{head}.{int(last) + 1}" if head else str(int(last) + 1)
    return f"{version}.1"


def publish(
    uow: UnitOfWork, runner: operations.OperationRunner, actor: Actor, task_id: int
) -> DatasetVersion:
    """Start publishing the task's annotations as its dataset's next version."""
    uow.start_writing()  # a GET: its unit of work began as a reader's
    task = get_task(uow, actor, task_id)
    if not access.can_change_task(actor, task):
        raise PermissionDenied()
    if task.dataset_id is None or task.size == 0:
        raise InvalidInput.on("non_field_errors", "The task has no data, so no dataset.")
    # Locked, so two publishes of one dataset take numbers one after the other.
    dataset = uow.session.scalar(
        select(Dataset).where(Dataset.id == task.dataset_id).with_for_update(of=Dataset)
    )
    if dataset is None:
        raise NotFound()
    building = uow.session.scalar(
        select(DatasetVersion.version).where(
            DatasetVersion.dataset_id == dataset.id,
            DatasetVersion.status == VersionStatus.BUILDING,
        )
    )
    if building is not None:
        raise Conflict(f"Version {building} of this dataset is still being published.")
    last = uow.session.scalar(
        select(DatasetVersion)
        .where(
            DatasetVersion.dataset_id == dataset.id,
            DatasetVersion.status != VersionStatus.FAILED,
        )
        .order_by(DatasetVersion.number.desc())
        .limit(1)
    )
    number = (
        uow.session.scalar(
            select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == dataset.id)
        )
        or 0
    ) + 1
    version = DatasetVersion(
        dataset_id=dataset.id, number=number,
        version=next_version(last.version if last is not None else dataset.version),
        task_id=task.id, owner_id=actor.id,
    )  # fmt: skip
    uow.session.add(version)
    uow.flush()
    operation = operations.create(
        uow, kind=PUBLISH, params={"version_id": version.id, "task_id": task.id},
        owner_id=actor.id, target=f"dataset:{dataset.id}",
    )  # fmt: skip
    version.operation_id = operation.id
    uow.commit()
    runner.submit(operation.id)
    return version


def list_versions(uow: UnitOfWork, dataset_id: int) -> list[DatasetVersion]:
    return list(
        uow.session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.number)
        )
    )


def run_publish(context: OperationContext) -> dict[str, Any]:
    params = context.params
    try:
        return _publish(context, params["version_id"], params["task_id"])
    except Exception as exc:
        with context.uow() as uow:
            version = uow.session.get(DatasetVersion, params["version_id"])
            if version is not None:
                version.status = VersionStatus.FAILED
                version.message = str(exc) if isinstance(exc, UserFacingError) else "failed"
                uow.commit()
        raise


def _publish(context: OperationContext, version_id: int, task_id: int) -> dict[str, Any]:
    snapshot = exchange.take_snapshot(context, "task", task_id)
    part = snapshot.parts[0]
    context.progress(0.3, "Reading the annotations", force=True)
    with UnitOfWork(context.session_factory, writes=False) as uow:
        sources = {
            frame: (asset_id, asset_frame)
            for frame, asset_id, asset_frame in uow.session.execute(
                select(TaskFrame.frame, TaskFrame.asset_id, TaskFrame.asset_frame).where(
                    TaskFrame.task_id == task_id
                )
            )
        }
        last_frame = max(sources, default=0)
    content = {
        "format": FILE_FORMAT,
        "task_id": task_id,
        "labels": [
            {"id": label.id, "name": label.name,
             "attributes": [{"id": s.id, "name": s.name, "input_type": s.input_type,
                             "mutable": s.mutable} for s in label.specs]}
            for label in snapshot.labels
        ],
        "frames": [
            {"frame": frame.number, "asset_id": sources[frame.number][0],
             "asset_frame": sources[frame.number][1], "name": frame.name}
            for frame in part.frames
        ],
        "objects": part.objects,
    }  # fmt: skip
    annotated = {sources[f][0] for f in annotated_frames(part.objects, last_frame) if f in sources}
    count = sum(len(items) for items in part.objects.values())
    context.progress(0.7, "Writing the version", force=True)
    with context.uow() as uow:
        version = uow.session.get(DatasetVersion, version_id)
        if version is None:
            raise UserFacingError("The dataset version was deleted meanwhile.")
        dataset = uow.session.get_one(Dataset, version.dataset_id)
        key = f"{dataset.storage_prefix}/versions/{version.number}/annotations.json.gz"
        with tempfile.TemporaryDirectory(prefix="labelyard-publish-") as scratch:
            path = Path(scratch) / "annotations.json.gz"
            path.write_bytes(gzip.compress(orjson.dumps(content), compresslevel=6))
            context.deps.storage.put_file(key, path, "application/gzip")
        version.storage_key = key
        version.status = VersionStatus.READY
        version.annotated_count = len(annotated)
        version.object_count = count
        dataset.version = version.version
        dataset.annotation_status = AnnotationStatus.LABELED
        dataset.annotated_count = len(annotated)
        uow.commit()
        return {"dataset_id": dataset.id, "version": version.version, "objects": count}


def annotated_frames(objects: dict[str, list[dict[str, Any]]], last_frame: int) -> set[int]:
    """The frames something is visible on: tags' and shapes' frames, and tracks from each
    visible keyframe to the next keyframe (or the end)."""
    frames = {item["frame"] for kind in ("tags", "shapes") for item in objects.get(kind, [])}
    for track in objects.get("tracks", []):
        keyframes = sorted(track["shapes"], key=lambda s: s["frame"])
        for index, shape in enumerate(keyframes):
            if shape.get("outside"):
                continue
            end = keyframes[index + 1]["frame"] if index + 1 < len(keyframes) else last_frame + 1
            frames.update(range(shape["frame"], end))
    return frames


# --- a dataset's items, with a version's annotations laid over them --------------------


@dataclass
class DatasetFrames:
    """Every item of a dataset as one numbered sequence (a video's frames one by one),
    with where each comes from."""

    frames: list[mapping.FrameInfo]
    refs: list[FrameRef]

    def numbers(self) -> dict[tuple[int, int], int]:
        return {(ref.asset_id, ref.asset_frame): ref.frame for ref in self.refs}


def dataset_frames(uow: UnitOfWork, dataset_id: int) -> DatasetFrames:
    rows = uow.session.execute(
        select(Asset.id, Asset.name, Asset.kind, Asset.width, Asset.height, Asset.frame_count,
               Batch.name)
        .join(Batch, Batch.id == Asset.batch_id)
        .where(Asset.dataset_id == dataset_id)
        .order_by(Batch.id, Asset.name, Asset.id)
    ).all()  # fmt: skip
    # Names are unique in a batch; across batches the batch's name keeps them apart.
    seen: dict[str, int] = {}
    for row in rows:
        seen[row[1]] = seen.get(row[1], 0) + 1
    frames: list[mapping.FrameInfo] = []
    refs: list[FrameRef] = []
    for asset_id, name, kind, width, height, frame_count, batch in rows:
        shown = f"{batch}/{name}" if seen[name] > 1 else name
        for asset_frame in range(frame_count if kind == AssetKind.VIDEO else 1):
            frame_name = shown if kind == AssetKind.IMAGE else f"{shown}#{asset_frame}"
            number = len(frames)
            frames.append(mapping.FrameInfo(number, frame_name, width, height))
            refs.append(FrameRef(number, asset_id, asset_frame, frame_name))
    return DatasetFrames(frames, refs)


def load_version(
    uow: UnitOfWork, storage: Any, dataset: Dataset, version: str | None
) -> tuple[DatasetVersion, dict[str, Any]]:
    """A ready version of the dataset (the newest, or the one named) and its content."""
    stmt = select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset.id, DatasetVersion.status == VersionStatus.READY
    )
    if version is not None:
        stmt = stmt.where(DatasetVersion.version == version)
    found = uow.session.scalar(stmt.order_by(DatasetVersion.number.desc()).limit(1))
    if found is None:
        raise UserFacingError(
            f"The dataset has no published version {version}."
            if version
            else "The dataset has no published annotations: publish a task's first."
        )
    return found, orjson.loads(gzip.decompress(storage.read(found.storage_key)))


def lay_over(
    content: dict[str, Any], items: DatasetFrames
) -> tuple[list[mapping.LabelInfo], dict[str, list[dict[str, Any]]]]:
    """A version's labels, and its objects renumbered onto the dataset's items (objects on
    assets deleted since are left out)."""
    labels = [
        mapping.LabelInfo(
            label["id"], label["name"],
            tuple(mapping.SpecInfo(s["id"], s["name"], s["input_type"], s.get("mutable", True))
                  for s in label["attributes"]),
        )
        for label in content["labels"]
    ]  # fmt: skip
    numbers = items.numbers()
    task_to_item = {
        f["frame"]: numbers[(f["asset_id"], f["asset_frame"])]
        for f in content["frames"]
        if (f["asset_id"], f["asset_frame"]) in numbers
    }
    objects: dict[str, list[dict[str, Any]]] = {"tags": [], "shapes": [], "tracks": []}
    for kind in ("tags", "shapes"):
        objects[kind] = list(_moved(content["objects"].get(kind, []), task_to_item))
    last_task_frame = max((f["frame"] for f in content["frames"]), default=0)
    for track in content["objects"].get("tracks", []):
        shapes = list(_moved(track["shapes"], task_to_item))
        if not shapes:
            continue
        ending = max(shapes, key=lambda s: s["frame"])
        # A track lasts to the task's end; in the dataset it ends there too.
        after = task_to_item.get(last_task_frame, len(items.frames)) + 1
        if not ending.get("outside") and after < len(items.frames):
            shapes.append(dict(ending, frame=after, outside=True))
        objects["tracks"].append(dict(track, frame=min(s["frame"] for s in shapes), shapes=shapes))
    return labels, objects


def _moved(items: Iterable[dict[str, Any]], frames: dict[int, int]) -> Iterable[dict[str, Any]]:
    for item in items:
        frame = frames.get(item["frame"])
        if frame is not None:
            yield dict(item, frame=frame)


def register(registry: operations.HandlerRegistry) -> None:
    registry.register(PUBLISH)(run_publish)
