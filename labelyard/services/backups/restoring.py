"""Restoring a backup into a new task: the ``task.backup.import`` operation.

Everything the archive says is checked before anything is made. Then the task is made
as ``POST tasks``, ``POST tasks/{id}/data`` and the annotation and job writes would make
it, through the same services; when any step fails, what the earlier ones made (the
task, its dataset, their media) is removed again, so a failed restore leaves nothing."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
from sqlalchemy import select

from labelyard.adapters.media.archives import extract_archive
from labelyard.adapters.media.errors import MediaError
from labelyard.adapters.storage import InvalidKey, Storage, check_key
from labelyard.domain import Asset, Operation, OperationStatus, Task, TaskFrame, User
from labelyard.services import annotation_body, datasets, frames, ingest, jobs, task_data, tasks
from labelyard.services import annotations as job_annotations
from labelyard.services.access import Actor
from labelyard.services.backups import layout
from labelyard.services.errors import InvalidInput
from labelyard.services.operations import OperationContext, UserFacingError
from labelyard.services.uow import UnitOfWork

log = logging.getLogger(__name__)


@dataclass
class Backup:
    """A checked backup, unpacked in ``root``."""

    root: Path
    manifest: layout.Manifest
    task: tasks.TaskCreate
    data: task_data.DataRequest | None
    annotations: list[annotation_body.AnnotationsIn]


class _Collected:
    """A runner that keeps the task data operation's id instead of queueing it: the
    restore runs it in its own thread, so that a busy queue cannot keep it waiting."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def submit(self, operation_id: str) -> None:
        self.ids.append(operation_id)

    def shutdown(self) -> None:
        """Nothing runs here."""


def run_restore(context: OperationContext) -> dict[str, Any]:
    runtime = context.deps
    staged = context.params["file"]
    try:
        with ingest.work_dir(runtime.settings) as work:
            backup = read_backup(context, staged, work)
            actor = _owner(context)
            task_id: int | None = None
            try:
                task_id = _create_task(context, actor, backup)
                if backup.data is not None:
                    _add_data(context, actor, task_id, backup)
                _restore_jobs(context, actor, task_id, backup)
            except BaseException:
                if task_id is not None:
                    _remove(context, actor, task_id)
                raise
    finally:
        runtime.storage.delete(staged["key"])
    return {"task_id": task_id}


def _owner(context: OperationContext) -> Actor:
    with UnitOfWork(context.session_factory, writes=False) as uow:
        owner = uow.session.get(User, context.owner_id) if context.owner_id else None
        if owner is None or not owner.is_active:
            raise UserFacingError("The user who asked for this is gone.")
        return Actor.of(owner)


# --- reading and checking -----------------------------------------------------------


def read_backup(context: OperationContext, staged: dict[str, Any], work: Path) -> Backup:
    """The backup unpacked into ``work`` and checked, or UserFacingError saying why it
    cannot be restored."""
    storage: Storage = context.deps.storage
    archive = storage.local_path(staged["key"])
    if archive is None or not archive.exists():
        if not storage.exists(staged["key"]):
            raise UserFacingError("The uploaded backup is gone; upload it again.")
        archive = work / "backup.zip"
        storage.download(staged["key"], archive)
    context.progress(0.05, "Unpacking the backup", force=True)
    root = work / "backup"
    try:
        # A backup may hold as much as an upload may (media are stored, not deflated).
        extract_archive(archive, root, max_total_bytes=context.deps.settings.max_upload_bytes)
    except MediaError as exc:
        _, _, reason = str(exc).partition(": ")
        raise UserFacingError(f"The backup cannot be unpacked: {reason or exc}") from None
    manifest = layout.read_manifest(_json(root, layout.MANIFEST))
    try:
        task = tasks.TaskCreate(
            name=manifest.name,
            labels=manifest.labels,
            bug_tracker=manifest.bug_tracker,
            segment_size=manifest.segment_size,
            overlap=manifest.overlap,
            z_order=manifest.z_order,
            subset=manifest.subset,
            image_quality=manifest.image_quality,
        )
        data = _data_request(manifest)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise UserFacingError(f"{layout.MANIFEST}: {_first_error(exc)}") from None
    if data is not None:
        _check_media(root, manifest)
    annotations = layout.read_annotations(_json(root, layout.ANNOTATIONS), manifest)
    return Backup(root, manifest, task, data, annotations)


def _json(root: Path, name: str) -> Any:
    path = root / name
    if not path.is_file():
        raise UserFacingError(f"The archive has no {name}: it is not a labelyard task backup.")
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise UserFacingError(f"{name} is not valid JSON: {exc}") from None


def _first_error(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    first = errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _data_request(manifest: layout.Manifest) -> task_data.DataRequest | None:
    data = manifest.data
    if data is None:
        return None
    if data.stop_frame is not None and data.stop_frame < data.start_frame:
        raise UserFacingError(f"{layout.MANIFEST}: data.stop_frame is below data.start_frame.")
    # The media are listed in the order they are to be taken: "predefined".
    return task_data.DataRequest(
        image_quality=data.image_quality,
        use_zip_chunks=data.chunk_type == "imageset",
        use_cache=data.use_cache,
        chunk_size=data.chunk_size,
        start_frame=data.start_frame,
        stop_frame=data.stop_frame,
        frame_filter=data.frame_filter,
        sorting_method="predefined",
    )


def _check_media(root: Path, manifest: layout.Manifest) -> None:
    """Every file the manifest names is in the archive's data folder, named safely."""
    assert manifest.data is not None
    data = root / layout.DATA
    for index, entry in enumerate(manifest.data.media):
        where = f"{layout.MANIFEST}: data.media.{index}"
        try:
            check_key(entry.name)
            check_key(entry.file)
        except InvalidKey:
            raise UserFacingError(f"{where}: {entry.file!r} is not a safe path.") from None
        path = PurePosixPath(entry.file)
        if path.parts[0] != layout.DATA or len(path.parts) < 2:
            raise UserFacingError(f"{where}: {entry.file!r} is not in the {layout.DATA} folder.")
        local = root / entry.file
        if not local.is_file() or not local.resolve().is_relative_to(data.resolve()):
            raise UserFacingError(f"{where}: the archive has no file {entry.file!r}.")


# --- making the task ----------------------------------------------------------------


def _create_task(context: OperationContext, actor: Actor, backup: Backup) -> int:
    context.progress(0.15, "Creating the task", force=True)
    with context.uow() as uow:
        return tasks.create_task(uow, actor, backup.task).id


def _add_data(context: OperationContext, actor: Actor, task_id: int, backup: Backup) -> None:
    """The media go to the task as uploaded files would (``POST tasks/{id}/data``): the
    task data operation stores and probes them, makes the frames, segments and jobs."""
    assert backup.data is not None and backup.manifest.data is not None
    context.progress(0.2, "Adding the media", force=True)
    storage: Storage = context.deps.storage
    sources = _stage(storage, backup.root, backup.manifest.data.media)
    runner = _Collected()
    try:
        with context.uow() as uow:
            task_data.request_data(uow, runner, actor, task_id, backup.data, sources)
    except BaseException:
        for source in sources:
            storage.delete(source["key"])
        raise
    # The task data operation removes the staged files, whatever happens to it.
    (operation_id,) = runner.ids
    context.deps.run(operation_id)
    with UnitOfWork(context.session_factory, writes=False) as uow:
        operation = uow.session.get_one(Operation, operation_id)
        if operation.status != OperationStatus.FINISHED:
            raise UserFacingError(f"The backup's media cannot be added: {operation.message}")
        made = uow.session.execute(
            select(TaskFrame.name, TaskFrame.width, TaskFrame.height)
            .where(TaskFrame.task_id == task_id)
            .order_by(TaskFrame.frame)
        ).all()
    wanted = [(f.name, f.width, f.height) for f in backup.manifest.frames]
    if [tuple(row) for row in made] != wanted:
        raise UserFacingError(
            f"The backup's media make {len(made)} frames that differ from the "
            f"{len(wanted)} frames its manifest lists."
        )


def _stage(storage: Storage, root: Path, media: list[layout.MediaFile]) -> list[dict[str, Any]]:
    """The media files put where uploads are staged (as api/uploads.py stages a
    request's), under the names the frames are to have."""
    prefix = f"staging/{uuid.uuid4().hex}"
    staged: list[dict[str, Any]] = []
    try:
        for index, entry in enumerate(media):
            key = f"{prefix}/{index:06d}/{PurePosixPath(entry.name).name}"
            storage.put_file(key, root / entry.file)
            staged.append({"kind": "staged", "key": key, "name": entry.name})
    except BaseException:
        storage.delete_prefix(prefix + "/")
        raise
    return staged


def _restore_jobs(context: OperationContext, actor: Actor, task_id: int, backup: Backup) -> None:
    """The backup's job ranges (a task that was given data more than once was cut at
    each addition), then each job's annotations, then its status and people, and the
    task's state last (a paused task's jobs cannot change status)."""
    manifest = backup.manifest
    wanted = [(job.start_frame, job.stop_frame) for job in manifest.jobs]
    with context.uow() as uow:
        task = uow.session.get_one(Task, task_id)
        if [(s.start_frame, s.stop_frame) for s in task.segments] != wanted:
            task.segments.clear()
            uow.flush()
            jobs.add_segments(uow, task, wanted)
            uow.commit()
        job_ids = [job.id for segment in task.segments for job in segment.jobs]
        labels, specs = layout.stand_in_ids(manifest.labels, task.labels)
        names = {name for job in manifest.jobs for name in (job.assignee, job.reviewer) if name}
        found = uow.session.execute(select(User.username, User.id).where(User.username.in_(names)))
        users = {username: user_id for username, user_id in found}
    for index, (job_id, body) in enumerate(zip(job_ids, backup.annotations, strict=True)):
        if any(body.objects().values()):
            layout.renumber(body, labels, specs)
            try:
                with context.uow() as uow:
                    job_annotations.write(uow, actor, job_id, body, action=None)
            except InvalidInput as exc:
                raise UserFacingError(
                    f"{layout.ANNOTATIONS}: job {index + 1}: {exc.detail}"
                ) from None
        context.progress(0.6 + 0.3 * (index + 1) / len(job_ids), "Writing the annotations")
    for job_id, entry in zip(job_ids, manifest.jobs, strict=True):
        # People are matched by username; one this server does not know leaves it open.
        change = jobs.JobWrite(
            status=entry.status,
            assignee_id=users.get(entry.assignee or ""),
            reviewer_id=users.get(entry.reviewer or ""),
        )
        with context.uow() as uow:
            jobs.update_job(uow, actor, job_id, change)
    with context.uow() as uow:
        task = uow.session.get_one(Task, task_id)
        # The task data operation started the task's work; the backup's state follows,
        # where the lifecycle allows it (a task with data is not "not started" again).
        state = manifest.state
        if task.segments and state != task.state and task.can_move_to(state):
            tasks.change_state(actor, task, state)
            uow.commit()


def _remove(context: OperationContext, actor: Actor, task_id: int) -> None:
    """Undo a restore that failed part way: the task, its dataset and their media."""
    storage: Storage = context.deps.storage
    try:
        with context.uow() as uow:
            task = uow.session.get(Task, task_id)
            if task is None:
                return
            dataset_id = task.dataset_id
            tasks.delete_task(uow, actor, task_id)
        frames.forget_media(storage, task_id)
        if dataset_id is not None:
            with context.uow() as uow:
                # The task data operation stores a new dataset's files under a prefix
                # other than the dataset's own, which delete_dataset removes: each file
                # is removed by its key.
                keys = list(
                    uow.session.scalars(
                        select(Asset.storage_key).where(Asset.dataset_id == dataset_id)
                    )
                )
                datasets.delete_dataset(uow, storage, actor, dataset_id)
            for key in keys:
                storage.delete(key)
    except Exception:
        log.exception("could not remove task %s, left by a failed restore", task_id)
