"""Where a work item's annotations live: the task frame its asset is.

An asset already framed in one of the project's tasks is worked on there, so both faces
read the same job. An asset that is in no task yet (one uploaded to the space) becomes the
next frame of the project's *work task* for its dataset, which labelyard makes on first
use: that task's jobs hold the annotations, and the CVAT face shows and exports them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, defer, lazyload, selectinload

from labelyard.adapters.media.chunks import default_chunk_size
from labelyard.adapters.storage import Storage
from labelyard.domain import (
    Asset,
    AssetKind,
    Dataset,
    Job,
    JobStatus,
    Project,
    Segment,
    Task,
    TaskFrame,
    TaskState,
)
from labelyard.services.frames import forget_chunk

# Frames of a work task per job: a job is a reviewable amount of work.
WORK_SEGMENT_SIZE = 100
WORK_TASK_MARK = "work_items"


@dataclass(frozen=True)
class Place:
    task_id: int
    frame: int


def place(session: Session, storage: Storage, project: Project, asset: Asset) -> Place:
    """The task frame (frame 0 of a video) an asset is worked on in this project."""
    found = session.execute(
        select(TaskFrame.task_id, TaskFrame.frame)
        .join(Task, Task.id == TaskFrame.task_id)
        .where(
            Task.project_id == project.id,
            TaskFrame.asset_id == asset.id,
            TaskFrame.asset_frame == 0,
        )
        .order_by(TaskFrame.task_id, TaskFrame.frame)
        .limit(1)
    ).first()
    if found is not None:
        return Place(found.task_id, found.frame)
    task = _work_task(session, project, asset.dataset_id)
    return _append(session, storage, task, asset)


def _work_task(session: Session, project: Project, dataset_id: int) -> Task:
    task = session.scalars(
        select(Task)
        .where(
            Task.project_id == project.id,
            Task.dataset_id == dataset_id,
            Task.data_params["origin"].as_string() == WORK_TASK_MARK,
        )
        .order_by(Task.id)
        .limit(1)
        .with_for_update(of=Task)
        # Light: the task's segments (one per hundred items), team and derived status
        # would be loaded for every item made; _append reads the last segment alone.
        .options(defer(Task.status), lazyload("*"))
    ).first()
    if task is not None:
        return task
    dataset = session.get_one(Dataset, dataset_id)
    task = Task(
        name=f"{project.name}: work items of {dataset.name}"[:256],
        project=project,
        owner_id=project.owner_id,
        dataset_id=dataset_id,
        mode="annotation",
        segment_size=WORK_SEGMENT_SIZE,
        overlap=0,
        state=TaskState.IN_PROGRESS,
        data_params={"origin": WORK_TASK_MARK},
    )
    session.add(task)
    session.flush()
    return task


def _append(session: Session, storage: Storage, task: Task, asset: Asset) -> Place:
    frame = task.size
    if not task.chunk_size:
        task.chunk_size = default_chunk_size(
            asset.width, asset.height, video=asset.kind == AssetKind.VIDEO
        )
    session.add(
        TaskFrame(
            task_id=task.id,
            frame=frame,
            asset_id=asset.id,
            asset_frame=0,
            name=asset.name,
            width=asset.width,
            height=asset.height,
        )
    )
    task.size = frame + 1
    last = session.scalars(
        select(Segment)
        .where(Segment.task_id == task.id)
        .order_by(Segment.start_frame.desc())
        .limit(1)
        .options(selectinload(Segment.jobs).options(lazyload("*")))
    ).first()
    if last is not None and last.stop_frame - last.start_frame + 1 < WORK_SEGMENT_SIZE:
        last.stop_frame = frame
        for job in last.jobs:
            if job.status == JobStatus.COMPLETED:
                job.status = JobStatus.ANNOTATION
    else:
        session.add(Segment(task_id=task.id, start_frame=frame, stop_frame=frame, jobs=[Job()]))
    session.flush()
    # A cached chunk that ended at the previous last frame lacks this one.
    forget_chunk(storage, task.id, frame // task.chunk_size)
    return Place(task.id, frame)
