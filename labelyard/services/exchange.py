"""Annotations out into the field's formats, as background operations.

CVAT's flow: the first ``GET .../annotations?format=F`` (or ``.../dataset``) starts an
operation and answers 202; later calls answer 202 until the file is ready, then 201;
``action=download`` sends it. An export is reused while the task has not changed since
it was made and it is younger than the exports' time to live. Imports, which read what
this module snapshots, are in ``imports``."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import datumaro as dm
import orjson
from datumaro.util.image import IMAGE_BACKEND, ImageBackend
from PIL import Image as PILImage
from sqlalchemy import select

from labelyard.adapters.media.images import encode_jpeg
from labelyard.adapters.storage import Storage
from labelyard.domain import (
    AssetKind,
    Job,
    Operation,
    OperationStatus,
    Task,
    TaskFrame,
    User,
    utcnow,
)
from labelyard.formats import cvat_xml, mapping, streaming
from labelyard.formats.registry import Format, find
from labelyard.services import annotations as job_annotations
from labelyard.services import operations, task_annotations
from labelyard.services.access import Actor
from labelyard.services.errors import InvalidInput, LabelyardError, NotFound
from labelyard.services.frames import AssetFiles, FrameRef, decode, frame_refs, load_assets
from labelyard.services.jobs import get_job
from labelyard.services.operations import OperationContext, UserFacingError
from labelyard.services.projects import get_project
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork

log = logging.getLogger(__name__)

EXPORT = "annotations.export"
Scope = Literal["task", "job", "project"]
# How many recent exports of one target are looked through for a reusable one.
RECENT = 20


class ExportFailed(LabelyardError):
    """The last export of this kind failed; the next call starts another."""


@dataclass
class ExportState:
    status: Literal["started", "running", "ready"]
    operation: Operation


# --- starting and polling ---------------------------------------------------------


def resolve_target(
    uow: UnitOfWork, actor: Actor, scope: Scope, object_id: int
) -> tuple[Task, Job | None]:
    if scope == "task":
        return get_task(uow, actor, object_id), None
    if scope == "project":
        raise InvalidInput.on("non_field_errors", "Projects export; they do not import.")
    job = get_job(uow, actor, object_id)
    return job.segment.task, job


def _stamp(uow: UnitOfWork, actor: Actor, scope: Scope, object_id: int) -> str:
    """What changes whenever the exported annotations may have."""
    if scope != "project":
        return resolve_target(uow, actor, scope, object_id)[0].updated_date.isoformat()
    project = get_project(uow, actor, object_id)
    dates = [project.updated_date, *(task.updated_date for task in project.tasks)]
    return f"{max(dates).isoformat()}/{len(project.tasks)}"


def export(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    scope: Scope,
    object_id: int,
    format_name: str,
    *,
    with_images: bool,
    ttl: timedelta,
    storage: Storage,
) -> ExportState:
    """The state of the newest export of this target in this format, starting one when
    none is fresh."""
    chosen = find(format_name, exporting=True)
    stamp = _stamp(uow, actor, scope, object_id)
    sweep_expired(uow, storage, ttl)
    params = {"scope": scope, "id": object_id, "format": chosen.display_name,
              "images": with_images, "stamp": stamp}  # fmt: skip
    return fresh_or_started(
        uow, runner, actor, kind=EXPORT, target=f"{scope}:{object_id}", params=params,
        same=("format", "images"), ttl=ttl, what="export",
    )  # fmt: skip


def fresh_or_started(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    *,
    kind: str,
    target: str,
    params: dict[str, Any],
    same: tuple[str, ...],
    ttl: timedelta,
    what: str,
) -> ExportState:
    """The newest operation of ``kind`` on ``target`` whose params hold the same values
    under ``same``: running, or finished and younger than ``ttl``, while its ``stamp``
    is ``params``'s; else a new one, started. One that failed is said once (ExportFailed,
    about ``what``), and the next request starts another."""
    # Decided in a writer's transaction, so that two requests at once start one.
    uow.start_writing()
    latest = None
    for operation in uow.session.scalars(
        select(Operation)
        .where(Operation.target == target, Operation.kind == kind)
        .order_by(Operation.created.desc())
        .limit(RECENT)
    ):
        if all(operation.params.get(key) == params[key] for key in same):
            latest = operation
            break
    if latest is not None and latest.params.get("stamp") == params["stamp"]:
        status = OperationStatus(latest.status)
        if status in (OperationStatus.QUEUED, OperationStatus.STARTED):
            return ExportState("running", latest)
        if status == OperationStatus.FINISHED and utcnow() - latest.created < ttl:
            return ExportState("ready", latest)
        if status == OperationStatus.FAILED and not latest.params.get("reported"):
            latest.params = latest.params | {"reported": True}
            uow.commit()
            raise ExportFailed(f"The {what} failed: {latest.message}")
    operation = operations.create(uow, kind=kind, params=params, owner_id=actor.id, target=target)
    uow.commit()
    runner.submit(operation.id)
    return ExportState("started", operation)


def sweep_expired(
    uow: UnitOfWork, storage: Storage, ttl: timedelta, kind: str = EXPORT, limit: int = 100
) -> int:
    """Remove exports (operations of ``kind``) older than ``ttl``, file and record (a few
    at a time, whenever an export is asked for)."""
    expired = uow.session.scalars(
        select(Operation)
        .where(
            Operation.kind == kind,
            Operation.status.in_([OperationStatus.FINISHED, OperationStatus.FAILED]),
            Operation.created < utcnow() - ttl,
        )
        .order_by(Operation.created)
        .limit(limit)
    ).all()
    for operation in expired:
        key = (operation.result or {}).get("key")
        if key:
            storage.delete(key)
        uow.session.delete(operation)
    if expired:
        uow.commit()
    return len(expired)


def download(operation: Operation) -> tuple[str, str]:
    """The storage key and file name of a finished export."""
    result = operation.result or {}
    return result["key"], result["filename"]


# --- the operations ---------------------------------------------------------------


@dataclass
class Part:
    """One task's share of an export: its frames (a job's only, for a job) and objects.
    ``refs`` says where each frame's image is, when the frames are not the task's own.
    ``texts``: the objects as the JSON texts they are stored as, when read so (an
    export's, which the fast path streams); ``objects`` is then left empty."""

    task_id: int
    subset: str
    frames: list[mapping.FrameInfo]
    objects: dict[str, list[dict[str, Any]]]
    refs: list[FrameRef] | None = None
    texts: dict[str, list[str]] | None = None

    def stored(self) -> streaming.Objects:
        return self.texts if self.texts is not None else self.objects

    def decoded(self) -> dict[str, list[dict[str, Any]]]:
        if self.texts is None:
            return self.objects
        return {kind: [orjson.loads(text) for text in items] for kind, items in self.texts.items()}


@dataclass
class Snapshot:
    labels: list[mapping.LabelInfo]
    parts: list[Part]
    actor: Actor


# How a snapshot holds the objects: decoded, as stored texts, or not at all (an import's).
ObjectsAs = Literal["dicts", "texts", "none"]


def take_snapshot(
    context: OperationContext, scope: Scope, object_id: int, *, objects: ObjectsAs = "dicts"
) -> Snapshot:
    with UnitOfWork(context.session_factory, writes=False) as uow:
        owner = uow.session.get(User, context.owner_id) if context.owner_id else None
        if owner is None:
            raise UserFacingError("The user who asked for this is gone.")
        actor = Actor.of(owner)
        if scope == "project":
            project = get_project(uow, actor, object_id)
            labels, parts = project.labels, []
            for task in project.tasks:
                try:
                    visible = get_task(uow, actor, task.id)
                except NotFound:
                    continue
                parts.append(_part(uow, actor, visible, None, visible.subset or "default", objects))
        else:
            task, job = resolve_target(uow, actor, scope, object_id)
            labels, parts = task.labels, [_part(uow, actor, task, job, "default", objects)]
        label_infos = [
            mapping.LabelInfo(
                label.id, label.name,
                tuple(mapping.SpecInfo(s.id, s.name, s.input_type, s.mutable)
                      for s in label.attributes),
            )
            for label in labels
        ]  # fmt: skip
        return Snapshot(label_infos, parts, actor)


def _part(
    uow: UnitOfWork, actor: Actor, task: Task, job: Job | None, subset: str, objects: ObjectsAs
) -> Part:
    first, last = (job.segment.start_frame, job.segment.stop_frame) if job else (0, task.size - 1)
    rows = uow.session.execute(
        select(TaskFrame.frame, TaskFrame.name, TaskFrame.width, TaskFrame.height)
        .where(TaskFrame.task_id == task.id, TaskFrame.frame.between(first, last))
        .order_by(TaskFrame.frame)
    )
    frames = [mapping.FrameInfo(*row) for row in rows]
    if objects == "none":
        return Part(task.id, subset, frames, {})
    annotations = (
        job_annotations.read(uow, actor, job.id)
        if job
        else task_annotations.read(uow, actor, task.id)
    )
    if objects == "texts":
        texts = {kind: [text for _, text in items] for kind, items in annotations.objects.items()}
        return Part(task.id, subset, frames, {}, texts=texts)
    decoded = {
        kind: [orjson.loads(text) for _, text in items]
        for kind, items in annotations.objects.items()
    }
    return Part(task.id, subset, frames, decoded)


def use_datumaro_here() -> None:
    """Datumaro picks its image library in a context variable, set for the thread that
    imported it only: operations run on others."""
    if IMAGE_BACKEND.get(None) is None:
        IMAGE_BACKEND.set(ImageBackend.cv2)


def run_export(context: OperationContext) -> dict[str, Any]:
    params = context.params
    chosen = find(params["format"], exporting=True)
    with tempfile.TemporaryDirectory(prefix="labelyard-export-") as scratch_name:
        archive = Path(scratch_name) / "export.zip"
        build_archive(
            context, take_snapshot(context, params["scope"], params["id"], objects="texts"),
            chosen, with_images=bool(params["images"]), archive=archive,
        )  # fmt: skip
        filename = archive_name(params["scope"], params["id"], chosen, bool(params["images"]))
        key = f"exports/{context.operation_id}/{filename}"
        context.deps.storage.put_file(key, archive, "application/zip")
    return {"key": key, "filename": filename}


def archive_name(scope: str, object_id: int, chosen: Format, with_images: bool) -> str:
    kind = "dataset" if with_images else "annotations"
    return f"{scope}_{object_id}-{kind}-{chosen.display_name.replace(' ', '_').lower()}.zip"


def build_archive(
    context: OperationContext,
    snapshot: Snapshot,
    chosen: Format,
    *,
    with_images: bool,
    archive: Path,
) -> None:
    """Write ``snapshot``'s annotations (and images) in ``chosen`` as a zip at ``archive``,
    reporting progress up to 0.9; what other operations (deliveries, git) build on."""
    use_datumaro_here()
    context.progress(0.1, "Converting the annotations", force=True)
    with tempfile.TemporaryDirectory(prefix="labelyard-export-") as scratch_name:
        scratch = Path(scratch_name)
        with_images = with_images or chosen.images_always
        images = [
            _frame_images(context, part, scratch / "frames" / str(part.task_id))
            if with_images
            else {}
            for part in snapshot.parts
        ]
        if _streamed(context, snapshot, chosen, images if with_images else None, archive):
            return
        out = scratch / "out"
        if chosen.cvat_xml == "images" or (chosen.cvat_xml and len(snapshot.parts) == 1):
            _export_cvat_xml(snapshot, chosen, images, with_images, out)
        else:
            _export_with_datumaro(snapshot, chosen, images, with_images, out)
        context.progress(0.8, "Packing the file", force=True)
        _zip(out, archive)


# --- the fast path (formats/streaming.py): COCO and YOLO straight from the stored JSON --


def _streamed(
    context: OperationContext,
    snapshot: Snapshot,
    chosen: Format,
    images: list[dict[int, Path]] | None,
    archive: Path,
) -> bool:
    """Write the archive on the fast path, when it writes what Datumaro would; whether it
    did (when not, Datumaro's path writes the archive over what was begun)."""
    try:
        plan = streaming.plan_export(
            chosen, snapshot.labels,
            [(part.subset, part.frames, part.stored()) for part in snapshot.parts],
        )  # fmt: skip

        def progress(done: float) -> None:
            context.progress(0.6 + 0.3 * done, "Writing the file")

        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            plan.write(bundle, images[0] if images is not None else None, progress)
    except streaming.NotStreamable as reason:
        log.info("%s export through Datumaro: %s", chosen.display_name, reason)
        return False
    return True


# --- end of the fast path -----------------------------------------------------------------


def _export_cvat_xml(
    snapshot: Snapshot,
    chosen: Format,
    images: list[dict[int, Path]],
    with_images: bool,
    out: Path,
) -> None:
    """CVAT for images or video, written here (formats/cvat_xml.py)."""
    video = chosen.cvat_xml == "video"
    out.mkdir(parents=True)
    parts = [
        cvat_xml.Part(part.frames, part.decoded(), part.subset, prefix)
        for part, prefix in zip(snapshot.parts, _prefixes(snapshot.parts), strict=True)
    ]
    cvat_xml.write(out / cvat_xml.FILE, snapshot.labels, parts, video=video)
    if not with_images:
        return
    if video:
        _save_video_frames(snapshot.parts, images, out / "images")
        return
    for part, part_images in zip(parts, images, strict=True):
        for frame in part.frames:
            path = part_images.get(frame.number)
            if path is not None:
                target = out / "images" / (part.prefix + frame.file_name)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)


def _prefixes(parts: list[Part]) -> list[str]:
    """What goes before the names of each part's items: tasks of a project whose frames
    share names (in one subset) are kept apart as task_<id>/..."""
    seen: set[tuple[str, str]] = set()
    prefixes = []
    for part in parts:
        ids = {(part.subset, frame.item_id) for frame in part.frames}
        prefixes.append(f"task_{part.task_id}/" if ids & seen else "")
        seen |= ids
    return prefixes


def _export_with_datumaro(
    snapshot: Snapshot,
    chosen: Format,
    images: list[dict[int, Path]],
    with_images: bool,
    out: Path,
) -> None:
    datasets: list[dm.Dataset] = []
    prefixes = _prefixes(snapshot.parts)
    for part, part_images, prefix in zip(snapshot.parts, images, prefixes, strict=True):
        datasets.append(
            mapping.to_dataset(
                snapshot.labels, part.frames, part.decoded(),
                _image_paths(part_images),
                numbered=chosen.numbered_items, tracks_only=chosen.tracks_only,
                cvat_tracks=chosen.cvat_tracks, subset=part.subset, id_prefix=prefix,
            )
        )  # fmt: skip
    dataset = datasets[0] if len(datasets) == 1 else dm.Dataset.from_extractors(*datasets)
    try:
        for transform, options in chosen.transforms:
            dataset = dataset.transform(transform, **options)
        dataset.export(str(out), chosen.exporter, save_media=with_images, **chosen.export_options)
    except Exception as exc:
        log.exception("export to %s failed", chosen.display_name)
        raise UserFacingError(
            f"{chosen.display_name} could not hold these annotations: {short_reason(exc)}"
        ) from None
    if chosen.cvat_tracks and with_images:
        _save_video_frames(snapshot.parts, images, out / "images")


def _save_video_frames(parts: list[Part], images: list[dict[int, Path]], folder: Path) -> None:
    """CVAT for video's images, which Datumaro's writer of tracks never saves: every
    frame as images/frame_000123.png (in a folder per subset when there are several),
    where CVAT puts them and Datumaro's reader looks."""
    subsets = len({part.subset for part in parts}) > 1
    for part, part_images in zip(parts, images, strict=True):
        target = folder / part.subset if subsets else folder
        target.mkdir(parents=True, exist_ok=True)
        for number, path in part_images.items():
            with PILImage.open(path) as frame:
                frame.save(target / f"frame_{number:06d}.png", compress_level=1)


def _image_paths(images: dict[int, Path]) -> Callable[[mapping.FrameInfo], Path | None]:
    return lambda frame: images.get(frame.number)


def _frame_images(context: OperationContext, part: Part, folder: Path) -> dict[int, Path]:
    """The frames as files: image assets as they are, video frames as JPEGs."""
    runtime = context.deps
    files = AssetFiles(runtime.storage, runtime.settings)
    folder.mkdir(parents=True)
    paths: dict[int, Path] = {}
    if not part.frames:
        return paths
    with UnitOfWork(context.session_factory, writes=False) as uow:
        refs = part.refs or frame_refs(
            uow, part.task_id, part.frames[0].number, part.frames[-1].number
        )
        assets = load_assets(uow, refs)
    # Images go as they were uploaded (the exporters keep their format and name); only
    # video frames are decoded, and kept as JPEGs.
    video = [ref for ref in refs if assets[ref.asset_id].kind == AssetKind.VIDEO]
    for ref in refs:
        asset = assets[ref.asset_id]
        if asset.kind == AssetKind.IMAGE:
            suffix = PurePosixPath(asset.name).suffix.lower() or ".jpg"
            paths[ref.frame] = _linked(files.path(asset), folder / f"{ref.frame:08d}{suffix}")
    for done, (ref, image) in enumerate(zip(video, decode(video, assets, files), strict=True)):
        path = folder / f"{ref.frame:08d}.jpg"
        path.write_bytes(encode_jpeg(image, 95))
        paths[ref.frame] = path
        context.progress(0.1 + 0.5 * done / len(video), "Reading the video frames")
    return paths


def _linked(source: Path, target: Path) -> Path:
    """``source`` at ``target``: a hard link where one can be made, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


def _zip(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(folder).as_posix())


def short_reason(exc: Exception) -> str:
    """An exception's text, cut to a length a message can show."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 500 else text[:500] + "..."


def register(registry: operations.HandlerRegistry) -> None:
    registry.register(EXPORT)(run_export)
