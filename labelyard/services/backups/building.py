"""Building a task's backup: the ``task.backup.export`` operation.

The manifest and the annotations are written first, a job at a time; then the media,
each file streamed from storage into the zip as it was uploaded (stored, not deflated:
images and videos are compressed already)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select

from labelyard.adapters.media.sorting import SORTING_METHODS, sort_names
from labelyard.domain import Asset, AssetKind, Job, Task, TaskFrame, User
from labelyard.services import annotation_body, ingest
from labelyard.services import annotations as job_annotations
from labelyard.services.access import Actor
from labelyard.services.backups import layout
from labelyard.services.frames import AssetFiles, frame_refs, load_assets
from labelyard.services.operations import OperationContext, UserFacingError
from labelyard.services.task_data import DataRequest, TaskSnapshot, plan_frames
from labelyard.services.tasks import get_task
from labelyard.services.uow import UnitOfWork


@dataclass
class MediaPlan:
    """What a restore gives the task data operation to get the task's frames back:
    ``assets`` in this order, cut with these start, stop and filter."""

    assets: list[Asset]
    start_frame: int = 0
    stop_frame: int | None = None
    frame_filter: str = ""


def run_export(context: OperationContext) -> dict[str, Any]:
    runtime = context.deps
    task_id = context.params["task_id"]
    with UnitOfWork(context.session_factory, writes=False) as uow:
        owner = uow.session.get(User, context.owner_id) if context.owner_id else None
        if owner is None:
            raise UserFacingError("The user who asked for this is gone.")
        task = get_task(uow, Actor.of(owner), task_id)
        plan = plan_media(uow, task)
        media = _media_files(plan)
        manifest = _manifest(uow, task, plan, media)
        jobs = [job.id for segment in task.segments for job in segment.jobs]
        labels = layout.labels_by_id(task.labels)
        filename = "task_{}_backup_{:%Y_%m_%d_%H_%M_%S}.zip".format(
            task.name.replace("/", "_").replace("\\", "_"), task.updated_date
        ).lower()
    files = AssetFiles(runtime.storage, runtime.settings)
    with ingest.work_dir(runtime.settings) as work:
        archive = work / "backup.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr(layout.MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
            context.progress(0.05, "Writing the annotations", force=True)
            _write_annotations(context, bundle, jobs, labels)
            for done, (asset, entry) in enumerate(zip(plan.assets, media, strict=True)):
                bundle.write(files.path(asset), entry.file, compress_type=zipfile.ZIP_STORED)
                context.progress(0.3 + 0.6 * (done + 1) / len(media),
                                 f"Packed {done + 1} of {len(media)} files")  # fmt: skip
        context.progress(0.95, "Storing the backup", force=True)
        key = f"backups/{context.operation_id}/backup.zip"
        runtime.storage.put_file(key, archive, "application/zip")
    return {"key": key, "filename": filename}


def _manifest(
    uow: UnitOfWork, task: Task, plan: MediaPlan, media: list[layout.MediaFile]
) -> dict[str, Any]:
    params = task.data_params or {}
    data = None
    if task.size:
        data = layout.DataPart(
            image_quality=max(task.image_quality, 1),
            chunk_size=task.chunk_size,
            start_frame=plan.start_frame,
            stop_frame=plan.stop_frame,
            frame_filter=plan.frame_filter,
            sorting_method=params.get("sorting_method", "predefined"),
            chunk_type="video" if task.compressed_chunk_type == "video" else "imageset",
            use_cache=task.use_cache,
            media=media,
        )
    frames = uow.session.execute(
        select(TaskFrame.name, TaskFrame.width, TaskFrame.height)
        .where(TaskFrame.task_id == task.id)
        .order_by(TaskFrame.frame)
    )
    manifest = layout.Manifest(
        format=layout.FORMAT,
        version=layout.VERSION,
        name=task.name,
        bug_tracker=task.bug_tracker,
        subset=task.subset,
        status=task.status,
        state=task.state,
        mode=task.mode,
        segment_size=task.segment_size,
        overlap=task.overlap,
        z_order=task.z_order,
        image_quality=task.image_quality,
        labels=[],
        data=data,
        frames=[layout.FramePart(name=n, width=w, height=h) for n, w, h in frames],
        jobs=[_job(job) for segment in task.segments for job in segment.jobs],
    )
    answer = manifest.model_dump(mode="json")
    answer["labels"] = [
        {"name": label.name, "color": label.color,
         "attributes": [{"name": spec.name, "mutable": spec.mutable,
                         "input_type": spec.input_type, "default_value": spec.default_value,
                         "values": list(spec.values)} for spec in label.attributes]}
        for label in task.labels
    ]  # fmt: skip
    return answer


def _job(job: Job) -> layout.JobPart:
    return layout.JobPart(
        start_frame=job.segment.start_frame,
        stop_frame=job.segment.stop_frame,
        status=job.status,
        assignee=job.assignee.username if job.assignee else None,
        reviewer=job.reviewer.username if job.reviewer else None,
    )


def _media_files(plan: MediaPlan) -> list[layout.MediaFile]:
    names = [asset.name for asset in plan.assets]
    if len(set(names)) != len(names):
        raise UserFacingError(
            "This task's media has several files of one name; a backup cannot tell them apart."
        )
    taken: set[str] = set()
    return [layout.MediaFile(name=name, file=layout.archived_path(name, taken)) for name in names]


def _write_annotations(
    context: OperationContext, bundle: zipfile.ZipFile, jobs: list[int], labels: layout.LabelsById
) -> None:
    """annotations.json, one job at a time: no more than one job's objects in memory."""
    with (
        UnitOfWork(context.session_factory, writes=False) as uow,
        bundle.open(layout.ANNOTATIONS, "w", force_zip64=True) as out,
    ):
        out.write(b"[")
        for index, job_id in enumerate(jobs):
            objects = job_annotations.load_objects(uow, job_id)
            out.write(b"," if index else b"")
            out.write(b"{")
            for k_index, kind in enumerate(annotation_body.KINDS):
                out.write(b"," if k_index else b"")
                out.write(b'"%s":[' % kind.encode())
                for o_index, (_, text) in enumerate(objects[kind]):
                    out.write(b"," if o_index else b"")
                    out.write(orjson.dumps(layout.named(orjson.loads(text), labels)))
                out.write(b"]")
            out.write(b"}")
            context.progress(0.05 + 0.25 * (index + 1) / len(jobs), "Writing the annotations")
        out.write(b"]")


# --- which media bring the frames back ----------------------------------------------


def plan_media(uow: UnitOfWork, task: Task) -> MediaPlan:
    """The media to back up and how a restore cuts them into the task's frames.

    First choice, as CVAT backs up: the files as they were given to the task (all of
    them, also those its start, stop or filter left out), with those settings. When
    they do not give back the frames (data was added more than once, or the dataset
    changed since), the images the frames show, in frame order, taken whole. Either is
    checked with the task data operation's own planning, which a restore runs."""
    if not task.size:
        return MediaPlan([])
    refs = frame_refs(uow, task.id, 0, task.size - 1)
    used = load_assets(uow, refs)
    wanted = [(ref.asset_id, ref.asset_frame) for ref in refs]
    params = task.data_params or {}
    given = MediaPlan(
        _given_media(uow, task, used, params),
        int(params.get("start_frame") or 0),
        params.get("stop_frame"),
        params.get("frame_filter") or "",
    )
    if _frames_of(task, given) == wanted:
        return given
    if all(asset.kind == AssetKind.IMAGE for asset in used.values()):
        shown = MediaPlan([used[asset_id] for asset_id in dict.fromkeys(r.asset_id for r in refs)])
        if _frames_of(task, shown) == wanted:
            return shown
    raise UserFacingError(
        "This task's frames cannot be rebuilt from its media (they come from several "
        "videos, or show an image more than once): it cannot be backed up."
    )


def _given_media(
    uow: UnitOfWork, task: Task, used: dict[int, Asset], params: dict[str, Any]
) -> list[Asset]:
    """The files as the task's data operation was given them: the batch its frames come
    from (or its whole dataset), in the order its sorting method put them."""
    kinds = {asset.kind for asset in used.values()}
    if kinds == {AssetKind.VIDEO}:
        return list(used.values()) if len(used) == 1 else []
    batches = {asset.batch_id for asset in used.values()}
    scope = (
        Asset.batch_id == next(iter(batches)) if len(batches) == 1
        else Asset.dataset_id == task.dataset_id
    )  # fmt: skip
    assets = list(uow.session.scalars(select(Asset).where(scope).order_by(Asset.id)))
    method = params.get("sorting_method", "lexicographical")
    if method not in SORTING_METHODS:
        return []
    by_name = {asset.name: asset for asset in assets}
    # "predefined" is the order the files came in, which is the order of their ids.
    return [by_name[name] for name in sort_names(list(by_name), method, seed=task.id)]


def _frames_of(task: Task, plan: MediaPlan) -> list[tuple[int, int]] | None:
    """The (asset, frame) of each frame the task data operation makes of ``plan``."""
    if not plan.assets:
        return None
    try:
        request = DataRequest(
            start_frame=plan.start_frame,
            stop_frame=plan.stop_frame,
            frame_filter=plan.frame_filter,
            sorting_method="predefined",
        )
        snapshot = TaskSnapshot(task.id, task.name, task.owner_id, 0, "", None, None, None)
        planned = plan_frames(snapshot, plan.assets, request)
    except (UserFacingError, ValueError):
        return None
    return [(ref.asset_id, ref.asset_frame) for ref in planned.refs]
