"""Annotations in and out of the field's formats, as background operations.

Export (CVAT's flow): the first ``GET .../annotations?format=F`` (or ``.../dataset``)
starts an operation and answers 202; later calls answer 202 until the file is ready,
then 201; ``action=download`` sends it. An export is reused while the task has not
changed since it was made and it is younger than the exports' time to live.

Import: ``PUT .../annotations?format=F`` with the file starts an operation (202); the
same call without a file polls it (202, then 201). A file that does not parse, or that
names labels or images the task lacks, fails the operation with the reason and leaves
the annotations as they were; a good one replaces them in one transaction."""

from __future__ import annotations

import logging
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
from sqlalchemy import select

from labelyard.adapters.media.archives import extract_archive
from labelyard.adapters.media.errors import MediaError
from labelyard.adapters.media.images import encode_jpeg
from labelyard.adapters.storage import Storage
from labelyard.domain import Job, Operation, OperationStatus, Task, TaskFrame, User, utcnow
from labelyard.formats import mapping
from labelyard.formats.registry import Format, find
from labelyard.services import access, operations, task_annotations
from labelyard.services import annotations as job_annotations
from labelyard.services.access import Actor
from labelyard.services.errors import InvalidInput, LabelyardError, NotFound
from labelyard.services.frames import AssetFiles, FrameRef, decode, frame_refs, load_assets
from labelyard.services.jobs import get_job
from labelyard.services.labels import LabelIn, apply_labels
from labelyard.services.operations import OperationContext, UserFacingError
from labelyard.services.projects import get_project
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork

log = logging.getLogger(__name__)

EXPORT = "annotations.export"
IMPORT = "annotations.import"
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


def _target(uow: UnitOfWork, actor: Actor, scope: Scope, object_id: int) -> tuple[Task, Job | None]:
    if scope == "task":
        return get_task(uow, actor, object_id), None
    if scope == "project":
        raise InvalidInput.on("non_field_errors", "Projects export; they do not import.")
    job = get_job(uow, actor, object_id)
    return job.segment.task, job


def _stamp(uow: UnitOfWork, actor: Actor, scope: Scope, object_id: int) -> str:
    """What changes whenever the exported annotations may have."""
    if scope != "project":
        return _target(uow, actor, scope, object_id)[0].updated_date.isoformat()
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
    target = f"{scope}:{object_id}"
    latest = None
    for operation in uow.session.scalars(
        select(Operation)
        .where(Operation.target == target, Operation.kind == EXPORT)
        .order_by(Operation.created.desc())
        .limit(RECENT)
    ):
        params = operation.params
        if params.get("format") == chosen.display_name and params.get("images") == with_images:
            latest = operation
            break
    if latest is not None and latest.params.get("stamp") == stamp:
        status = OperationStatus(latest.status)
        fresh = utcnow() - latest.created < ttl
        if status in (OperationStatus.QUEUED, OperationStatus.STARTED):
            return ExportState("running", latest)
        if status == OperationStatus.FINISHED and fresh:
            return ExportState("ready", latest)
        if status == OperationStatus.FAILED and not latest.params.get("reported"):
            latest.params = latest.params | {"reported": True}
            uow.commit()
            raise ExportFailed(f"The export failed: {latest.message}")
    operation = operations.create(
        uow,
        kind=EXPORT,
        params={"scope": scope, "id": object_id, "format": chosen.display_name,
                "images": with_images, "stamp": stamp},
        owner_id=actor.id,
        target=target,
    )  # fmt: skip
    uow.commit()
    runner.submit(operation.id)
    return ExportState("started", operation)


def check_import(
    uow: UnitOfWork, actor: Actor, scope: Scope, object_id: int, format_name: str
) -> None:
    """Refuse an import before its file is kept: the format, and the right to write."""
    find(format_name, exporting=False)
    task, job = _target(uow, actor, scope, object_id)
    if job is not None:
        job_annotations.lock_job(uow, actor, job.id)
    else:
        task_annotations.check_can_write(uow, actor, task)


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


def import_annotations(
    uow: UnitOfWork,
    runner: operations.OperationRunner,
    actor: Actor,
    scope: Scope,
    object_id: int,
    format_name: str,
    staged: dict[str, Any] | None,
    *,
    create_labels: bool = False,
) -> Operation:
    """With a staged file: start its import (``create_labels``: add the labels the file
    has and the task lacks, instead of refusing it). Without: the newest import of this
    target, to poll (404 when there is none)."""
    _target(uow, actor, scope, object_id)  # visible to the actor, or 404
    target = f"{scope}:{object_id}"
    if staged is None:
        latest = operations.latest_for(uow, target, IMPORT)
        if latest is None:
            raise NotFound("No annotation file was sent to this target: send annotation_file.")
        return latest
    chosen = find(format_name, exporting=False)
    operation = operations.create(
        uow,
        kind=IMPORT,
        params={"scope": scope, "id": object_id, "format": chosen.display_name,
                "file": staged, "create_labels": create_labels},
        owner_id=actor.id,
        target=target,
    )  # fmt: skip
    uow.commit()
    runner.submit(operation.id)
    return operation


def download(uow: UnitOfWork, operation: Operation) -> tuple[str, str]:
    """The storage key and file name of a finished export."""
    result = operation.result or {}
    return result["key"], result["filename"]


# --- the operations ---------------------------------------------------------------


@dataclass
class Part:
    """One task's share of an export: its frames (a job's only, for a job) and objects.
    ``refs`` says where each frame's image is, when the frames are not the task's own."""

    task_id: int
    subset: str
    frames: list[mapping.FrameInfo]
    objects: dict[str, list[dict[str, Any]]]
    refs: list[FrameRef] | None = None


@dataclass
class Snapshot:
    labels: list[mapping.LabelInfo]
    parts: list[Part]
    actor: Actor


def take_snapshot(context: OperationContext, scope: Scope, object_id: int) -> Snapshot:
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
                parts.append(_part(uow, actor, visible, None, visible.subset or "default"))
        else:
            task, job = _target(uow, actor, scope, object_id)
            labels, parts = task.labels, [_part(uow, actor, task, job, "default")]
        label_infos = [
            mapping.LabelInfo(
                label.id, label.name,
                tuple(mapping.SpecInfo(s.id, s.name, s.input_type) for s in label.attributes),
            )
            for label in labels
        ]  # fmt: skip
        return Snapshot(label_infos, parts, actor)


def _part(uow: UnitOfWork, actor: Actor, task: Task, job: Job | None, subset: str) -> Part:
    first, last = (job.segment.start_frame, job.segment.stop_frame) if job else (0, task.size - 1)
    rows = uow.session.execute(
        select(TaskFrame.frame, TaskFrame.name, TaskFrame.width, TaskFrame.height)
        .where(TaskFrame.task_id == task.id, TaskFrame.frame.between(first, last))
        .order_by(TaskFrame.frame)
    )
    frames = [mapping.FrameInfo(*row) for row in rows]
    annotations = (
        job_annotations.read(uow, actor, job.id)
        if job
        else task_annotations.read(uow, actor, task.id)
    )
    objects = {
        kind: [orjson.loads(text) for _, text in items]
        for kind, items in annotations.objects.items()
    }
    return Part(task.id, subset, frames, objects)


def _datumaro_in_this_thread() -> None:
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
            context, take_snapshot(context, params["scope"], params["id"]), chosen,
            with_images=bool(params["images"]), archive=archive,
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
    _datumaro_in_this_thread()
    context.progress(0.1, "Converting the annotations", force=True)
    with tempfile.TemporaryDirectory(prefix="labelyard-export-") as scratch_name:
        scratch = Path(scratch_name)
        with_images = with_images or chosen.images_always
        datasets: list[dm.Dataset] = []
        seen: set[tuple[str, str]] = set()
        for part in snapshot.parts:
            folder = scratch / "frames" / str(part.task_id)
            images = _frame_images(context, part, folder) if with_images else {}
            # Tasks of a project whose frames share names (in one subset) keep them apart.
            ids = {(part.subset, frame.item_id) for frame in part.frames}
            prefix = f"task_{part.task_id}/" if ids & seen else ""
            seen |= ids
            datasets.append(
                mapping.to_dataset(
                    snapshot.labels, part.frames, part.objects,
                    _image_paths(images),
                    numbered=chosen.numbered_items, tracks_only=chosen.tracks_only,
                    subset=part.subset, id_prefix=prefix,
                )
            )  # fmt: skip
        dataset = datasets[0] if len(datasets) == 1 else dm.Dataset.from_extractors(*datasets)
        out = scratch / "out"
        try:
            for transform, options in chosen.transforms:
                dataset = dataset.transform(transform, **options)
            dataset.export(
                str(out), chosen.exporter, save_media=with_images, **chosen.export_options
            )
        except Exception as exc:
            log.exception("export to %s failed", chosen.display_name)
            raise UserFacingError(
                f"{chosen.display_name} could not hold these annotations: {_reason(exc)}"
            ) from None
        context.progress(0.8, "Packing the file", force=True)
        _zip(out, archive)


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
    for done, (ref, image) in enumerate(zip(refs, decode(refs, assets, files), strict=True)):
        path = folder / f"{ref.frame:08d}.jpg"
        path.write_bytes(encode_jpeg(image, 95))
        paths[ref.frame] = path
        context.progress(0.1 + 0.5 * done / len(refs), "Reading the images")
    return paths


def _zip(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(folder).as_posix())


def run_import(context: OperationContext) -> dict[str, Any]:
    _datumaro_in_this_thread()
    runtime = context.deps
    params = context.params
    chosen = find(params["format"], exporting=False)
    snapshot = take_snapshot(context, params["scope"], params["id"])
    staged = params["file"]
    with tempfile.TemporaryDirectory(prefix="labelyard-import-") as scratch_name:
        scratch = Path(scratch_name)
        received = scratch / staged["name"]
        runtime.storage.download(staged["key"], received)
        source = scratch / "source"
        source.mkdir()
        if zipfile.is_zipfile(received) or received.suffix.lower() in (".tar", ".gz", ".tgz"):
            try:
                extract_archive(received, source)
            except MediaError as exc:
                raise UserFacingError(str(exc)) from None
        else:
            shutil.copy(received, source / received.name)
        context.progress(0.2, "Reading the file", force=True)
        options = _import_needs(chosen, source, snapshot.parts[0].frames)
        try:
            dataset = dm.Dataset.import_from(str(source), chosen.importer, **options)
            imported = mapping.from_dataset(
                dataset, snapshot.labels, snapshot.parts[0].frames, numbered=chosen.numbered_items,
                boxes_of_shapes=chosen.boxes_of_shapes,
            )  # fmt: skip
        except Exception as exc:
            raise UserFacingError(
                f"The file is not {chosen.display_name} that can be read: {_reason(exc)}"
            ) from None
        missing = sorted(imported.unknown_labels)
        if missing and not params.get("create_labels"):
            raise UserFacingError(
                "The file has labels this task lacks: " + ", ".join(missing)
                + ". Add them to the task (or project), or import with create_labels=true."
            )  # fmt: skip
        if imported.unknown_items:
            shown = sorted(imported.unknown_items)
            raise UserFacingError(
                f"The file has {len(shown)} images this task lacks: "
                + ", ".join(shown[:10])
                + (" ..." if len(shown) > 10 else "")
            )
        context.progress(0.7, "Saving the annotations", force=True)
        # One transaction: the labels the file brings (when asked for) and the annotations.
        with UnitOfWork(context.session_factory) as uow:
            try:
                if missing:
                    labels = _add_labels(
                        uow, snapshot.actor, params["scope"], params["id"], missing
                    )
                    imported = mapping.from_dataset(
                        dataset, labels, snapshot.parts[0].frames,
                        numbered=chosen.numbered_items, boxes_of_shapes=chosen.boxes_of_shapes,
                    )  # fmt: skip
                body = job_annotations.convert(imported.objects)
                if params["scope"] == "job":
                    written = job_annotations.write(
                        uow, snapshot.actor, params["id"], body, action=None
                    )
                else:
                    written = task_annotations.write(
                        uow, snapshot.actor, params["id"], body, action=None
                    )
            except InvalidInput as exc:
                raise UserFacingError(
                    f"The file's annotations do not fit the task: {exc.detail}"
                ) from None
    runtime.storage.delete(staged["key"])
    counts = {kind: len(items) for kind, items in written.objects.items()}
    return {"version": written.version, **counts}


def _add_labels(
    uow: UnitOfWork, actor: Actor, scope: Scope, object_id: int, names: list[str]
) -> list[mapping.LabelInfo]:
    """Add labels named ``names`` to the task (or its project); its labels after."""
    task, _ = _target(uow, actor, scope, object_id)
    if task.project is not None:
        if not access.can_change_project(actor, task.project):
            raise UserFacingError("Only who may change the project may add labels to it.")
        apply_labels(uow, task.project.labels, [LabelIn(name=name) for name in names])
    else:
        if not access.can_change_task(actor, task):
            raise UserFacingError("Only who may change the task may add labels to it.")
        apply_labels(uow, task.own_labels, [LabelIn(name=name) for name in names])
    uow.flush()
    return [
        mapping.LabelInfo(
            label.id, label.name,
            tuple(mapping.SpecInfo(s.id, s.name, s.input_type) for s in label.attributes),
        )
        for label in task.labels
    ]  # fmt: skip


def _import_needs(chosen: Format, source: Path, frames: list[mapping.FrameInfo]) -> dict[str, Any]:
    """What Datumaro's importer of ``chosen`` needs besides the file: the frames as empty
    files where it looks for images (it checks they exist), or their sizes."""
    if chosen.import_needs == "image_info":
        sizes = {}
        for frame in frames:
            sizes[PurePosixPath(frame.name).stem] = (frame.height, frame.width)
            sizes[frame.item_id] = (frame.height, frame.width)
        return {"image_info": sizes}
    if chosen.import_needs == "image_files":
        # Where the file's own folder is: the root, or the one folder the archive holds.
        entries = list(source.iterdir())
        roots = [source] + [e for e in entries if len(entries) == 1 and e.is_dir()]
        for root in roots:
            for frame in frames:
                placeholder = root / "images" / frame.file_name
                placeholder.parent.mkdir(parents=True, exist_ok=True)
                placeholder.touch()
    return {}


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 500 else text[:500] + "..."


def register(registry: operations.HandlerRegistry) -> None:
    registry.register(EXPORT)(run_export)
    registry.register(IMPORT)(run_import)
