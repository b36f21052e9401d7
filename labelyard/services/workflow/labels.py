"""A work item's labels, kept in the one annotation store.

A file item's labels are the shapes (and tracks) on its frame of the job that holds the
frame; a label item's are its one object. Writing them is an annotation write like any
other: the job's rules check them, its version moves on, and the CVAT face reads them."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import CompoundSelect, Select, Table, bindparam, literal, select, union_all, update
from sqlalchemy.orm import defer, joinedload, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from labelyard.adapters.db.bulk import AnnotationRows
from labelyard.domain import (
    Asset,
    Job,
    Label,
    Project,
    Segment,
    Task,
    TaskFrame,
    WorkItem,
    WorkKind,
    utcnow,
)
from labelyard.domain.annotations import ANNOTATION_TABLES
from labelyard.services import annotations as annotation_store
from labelyard.services.access import Actor
from labelyard.services.annotation_body import convert
from labelyard.services.errors import Conflict, InvalidInput, PermissionDenied
from labelyard.services.fields import JsonObject
from labelyard.services.uow import UnitOfWork
from labelyard.services.workflow import signals
from labelyard.services.workflow.signalling import renew_lease

MAX_LABELS = 10_000
# A stored object: its id, its decoded data and its label's name.
Stored = tuple[int, dict[str, Any], str | None]
_KINDS = ("shapes", "tracks")
ATTRIBUTE_KINDS = frozenset({WorkKind.FRAME_ATTRIBUTE, WorkKind.DATASET_ATTRIBUTE})
Number = float


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FrameBox(_Wire):
    frame: int = Field(ge=0, le=10_000_000)
    bbox: list[Number] = Field(min_length=4, max_length=4)
    outside: bool = False


class LabelItem(_Wire):
    """Seed 004's WorkItemImageLabelsItems (``bbox`` as x, y, width, height) or
    WorkItemVideoLabelsItems (``frames``, each a frame of the item's sequence and a box),
    with the label's name when the project has more than one."""

    bbox: list[Number] | None = Field(default=None, min_length=4, max_length=4)
    frames: list[FrameBox] | None = Field(default=None, min_length=1, max_length=100_000)
    label: str | None = Field(default=None, max_length=256)
    metadata: JsonObject = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_form(self) -> LabelItem:
        if (self.bbox is None) == (self.frames is None):
            raise ValueError("Give bbox (an image item) or frames (a video item).")
        for box in [self.bbox] if self.bbox is not None else [f.bbox for f in self.frames or []]:
            if box[2] < 0 or box[3] < 0:
                raise ValueError("A box's width and height are not negative.")
        return self


def parse(data: Any, path: str = "labels") -> list[LabelItem]:
    if not isinstance(data, list) or len(data) > MAX_LABELS:
        raise InvalidInput.on(path, f"A list of up to {MAX_LABELS} labels.")
    parsed = []
    for index, entry in enumerate(data):
        try:
            parsed.append(LabelItem.model_validate(entry))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in (path, index, *first["loc"]))
            raise InvalidInput.on(where, first["msg"].removeprefix("Value error, ")) from None
    return parsed


@dataclass(frozen=True)
class Written:
    version: int
    labels: list[dict[str, Any]]


def check_writer(actor: Actor, item: WorkItem, *, manages: bool) -> None:
    """Labels are written by the item's holder, under a live claim, or by a manager."""
    if manages:
        return
    if item.assignee_id != actor.id:
        raise PermissionDenied("Only the worker holding the item writes its labels.")
    if signals.lease_expired(item, utcnow()):
        raise signals.conflict(item, "Your claim on the item expired; start it again.")
    if item.status != "IN_PROGRESS":
        raise signals.conflict(item, "Start the item before writing its labels.")


_NEW_VERSION = (
    update(Job)
    .where(Job.id == bindparam("job_id"))
    .values(annotation_version=bindparam("version", type_=Job.annotation_version.type))
)
_TASK_CHANGED = (
    update(Task)
    .where(Task.id == bindparam("task_id"))
    .values(updated_date=bindparam("now", type_=Task.updated_date.type))
)


def write(
    uow: UnitOfWork,
    actor: Actor,
    project: Project,
    item: WorkItem,
    given: list[LabelItem],
    *,
    manages: bool,
    lease_seconds: float,
) -> Written:
    """Replace the item's labels; commits."""
    check_writer(actor, item, manages=manages)
    if item.kind in ATTRIBUTE_KINDS:
        raise InvalidInput.on("labels", "An attribute task has no boxes to label.")
    if item.kind == WorkKind.LABEL and len(given) > 1:
        raise InvalidInput.on("labels", "A label task is one object: send one label (or none).")
    job, task = _job(uow, item)
    # The labels the job's rules check against (loaded once, for both).
    names = {label.name: label.id for label in task.labels}
    shapes, tracks = [], []
    for index, entry in enumerate(given):
        label_id = _label_id(names, entry.label, f"labels.{index}.label")
        if entry.bbox is not None:
            shapes.append(_shape(entry.bbox, _frame(item), label_id))
        else:
            tracks.append(_track(entry.frames or [], _frame(item), label_id))
    body = convert({"shapes": shapes, "tracks": tracks, "tags": []})
    store = AnnotationRows(uow.session)
    for kind, ids in _current_ids(uow, item, job).items():
        if ids:
            store.delete(ANNOTATION_TABLES[kind], job.id, ids)
    written = annotation_store.apply_changes(uow, job, body.objects(), "create")
    if item.kind == WorkKind.LABEL and len(given) == 1:
        kind = "shapes" if shapes else "tracks"
        item.object_kind, item.object_id = kind[:-1], written[kind][0][0]
    new_ids = [object_id for object_id, _ in written["shapes"] + written["tracks"]]
    item.label_meta = {str(i): entry.metadata for i, entry in zip(new_ids, given, strict=True)}
    # The job's version and the task's date by statement: one object (the item) for the
    # flush to write instead of three.
    now = item.updated_date = utcnow()
    version = job.annotation_version + 1
    connection = uow.session.connection()
    connection.execute(_NEW_VERSION, {"job_id": job.id, "version": version})
    connection.execute(_TASK_CHANGED, {"task_id": task.id, "now": now})
    set_committed_value(job, "annotation_version", version)
    set_committed_value(task, "updated_date", now)
    renew_lease(item, actor, lease_seconds)
    uow.commit()
    # Answered from what was written: the same rows a read would find.
    label_of = {label_id: name for name, label_id in names.items()}
    stored = {
        kind: [(i, data, label_of.get(data["label_id"])) for i, text in written[kind]
               for data in (json.loads(text),)]
        for kind in _KINDS
    }  # fmt: skip
    return Written(job.annotation_version, _answer(item, stored))


def read(uow: UnitOfWork, project: Project, item: WorkItem) -> list[dict[str, Any]]:
    """The item's labels as seed 004 answers them: a box per shape (``bbox``: x, y,
    width, height), ``frames`` for a track; each with its id, label and metadata."""
    if item.task_id is None or item.kind in ATTRIBUTE_KINDS:
        return []
    return _answer(item, _rows(uow, item, None))


def label_names(uow: UnitOfWork, project: Project) -> dict[int, str]:
    rows = uow.session.execute(select(Label.id, Label.name).where(Label.project_id == project.id))
    return {label_id: name for label_id, name in rows}


def _answer(item: WorkItem, rows_by_kind: dict[str, list[Stored]]) -> list[dict[str, Any]]:
    labels = []
    for kind, rows in rows_by_kind.items():
        for object_id, data, label in rows:
            entry: dict[str, Any] = {
                "id": object_id,
                "label": label,
                "metadata": item.label_meta.get(str(object_id), {}),
            }
            if kind == "shapes":
                entry["type"] = data["type"]
                entry["bbox"] = bbox(data["points"])
                if data["type"] != "rectangle":
                    entry["points"] = data["points"]
            else:
                base = _frame(item)
                entry["frames"] = [
                    {
                        "frame": shape["frame"] - base,
                        "bbox": bbox(shape["points"]),
                        "outside": shape["outside"],
                    }
                    for shape in data["shapes"]
                ]
            labels.append(entry)
    return labels


def coco(uow: UnitOfWork, project: Project, item: WorkItem) -> dict[str, Any]:
    """The item's frame and labels as a COCO document (its one image is id 1)."""
    image: dict[str, Any] = {"id": 1, "file_name": item.asset_url, "width": 0, "height": 0}
    if item.task_id is not None:
        frame = uow.session.get(TaskFrame, (item.task_id, _frame(item)))
        if frame is not None:
            image.update(file_name=frame.name, width=frame.width, height=frame.height)
    categories = [
        {"id": label.id, "name": label.name, "supercategory": ""} for label in project.labels
    ]
    by_name = {c["name"]: c["id"] for c in categories}
    entries: list[dict[str, Any]] = []
    for entry in read(uow, project, item):
        boxes = [entry["bbox"]] if "bbox" in entry else [f["bbox"] for f in entry["frames"]]
        for box in boxes:
            segmentation = [entry["points"]] if entry.get("type") == "polygon" else []
            entries.append(
                {
                    "id": len(entries) + 1,
                    "image_id": 1,
                    "category_id": by_name.get(entry["label"], 0),
                    "bbox": box,
                    "area": box[2] * box[3],
                    "segmentation": segmentation,
                    "iscrowd": 0,
                    "attributes": {"objectId": entry["id"], **entry["metadata"]},
                }
            )
    return {
        "info": {"description": f"work item {item.uuid}"},
        "images": [image],
        "annotations": entries,
        "categories": categories,
    }


def bbox(points: list[float]) -> list[float]:
    xs, ys = points[0::2], points[1::2]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def _frame(item: WorkItem) -> int:
    return item.frame or 0


# The job holding a task frame (the first, where segments overlap).
_HOLDING_JOB = (
    select(Job.id)
    .join(Segment, Segment.id == Job.segment_id)
    .where(
        Segment.task_id == bindparam("task_id"),
        Segment.start_frame <= bindparam("frame"),
        Segment.stop_frame >= bindparam("frame"),
    )
    .order_by(Job.id)
    .limit(1)
)


_JOB = (
    select(Job)
    .where(Job.id == _HOLDING_JOB.scalar_subquery())
    .options(
        lazyload(Job.assignee),
        lazyload(Job.reviewer),
        joinedload(Job.segment).joinedload(Segment.task).options(defer(Task.status), lazyload("*")),
    )
    .with_for_update(of=Job)
    .execution_options(populate_existing=True)
)


def _job(uow: UnitOfWork, item: WorkItem) -> tuple[Job, Task]:
    """The job to write to, in one statement: found by the item's frame, locked (a row
    lock on PostgreSQL: writers of one job take turns; SQLite's write transaction already
    serializes them) and read afresh, with its segment and its task loaded light (a work
    task's segments, one per hundred frames, are not needed to check a frame's labels).
    The caller holds on to the task: the session keeps only what is referenced."""
    if item.task_id is None:
        raise Conflict(
            "The work item's asset is not stored in labelyard (no assetId), so it has "
            "nowhere to keep labels; create it with an assetId."
        )
    job = uow.session.scalars(_JOB, {"task_id": item.task_id, "frame": _frame(item)}).first()
    if job is None:
        raise Conflict("The task frame of this work item has no job any more.")
    annotation_store.check_writable(job)
    return job, job.segment.task


def _label_id(names: dict[str, int], name: str | None, path: str) -> int:
    if name is None:
        if len(names) == 1:
            return next(iter(names.values()))
        if not names:
            raise InvalidInput.on(path, "The project has no labels; add them first.")
        raise InvalidInput.on(path, f"Name the label: one of {', '.join(sorted(names))}.")
    if name not in names:
        raise InvalidInput.on(path, f'The project has no label "{name}".')
    return names[name]


def _shape(box: list[float], frame: int, label_id: int) -> dict[str, Any]:
    x, y, width, height = box
    return {
        "type": "rectangle",
        "frame": frame,
        "label_id": label_id,
        "points": [x, y, x + width, y + height],
    }


def _track(frames: list[FrameBox], base: int, label_id: int) -> dict[str, Any]:
    ordered = sorted(frames, key=lambda f: f.frame)
    return {
        "frame": base + ordered[0].frame,
        "label_id": label_id,
        "shapes": [
            {**_shape(f.bbox, base + f.frame, label_id), "outside": f.outside} for f in ordered
        ],
    }


def _rows(uow: UnitOfWork, item: WorkItem, job_id: int | None) -> dict[str, list[Stored]]:
    """The stored objects that are the item's labels, decoded, with their label names, in
    one statement: of job ``job_id``, or (None) of the job holding the item's frame."""
    found: dict[str, list[Stored]] = {"shapes": [], "tracks": []}
    if item.kind == WorkKind.LABEL:
        if item.object_id is None or f"{item.object_kind}s" not in found:
            return found
        scope = f"{item.object_kind}s"
    else:
        scope = "frames" if item.frame is not None else "job"
    first, last = _frames(uow, item) if scope == "frames" else (0, 0)
    values = {"job_id": job_id, "task_id": item.task_id, "frame": _frame(item),
              "object_id": item.object_id, "first": first, "last": last}  # fmt: skip
    rows = uow.session.connection().execute(_stored(scope, job_id is not None), values).all()
    for kind, object_id, data, name in sorted(rows, key=lambda row: row[1]):
        found[kind].append((object_id, json.loads(data) if isinstance(data, str) else data, name))
    return found


@functools.cache
def _stored(scope: str, by_job_id: bool) -> Select[Any] | CompoundSelect[Any]:
    """The statement behind _rows, built once per kind of item: ``scope`` is "shapes" or
    "tracks" (a label item's one object), "frames" (the objects on the item's frames; a
    track belongs to the frame, or the video, it starts on) or "job" (all of them)."""
    job = bindparam("job_id") if by_job_id else _HOLDING_JOB.scalar_subquery()
    parts = []
    for kind in ("shapes", "tracks"):
        if scope in ("shapes", "tracks") and kind != scope:
            continue
        table: Table = ANNOTATION_TABLES[kind]
        stmt = (
            select(literal(kind).label("kind"), table.c.id, table.c.data, Label.name)
            .outerjoin(Label, Label.id == table.c.label_id)
            .where(table.c.job_id == job)
        )
        if scope == kind:
            stmt = stmt.where(table.c.id == bindparam("object_id"))
        elif scope == "frames":
            stmt = stmt.where(table.c.frame.between(bindparam("first"), bindparam("last")))
        parts.append(stmt)
    return parts[0] if len(parts) == 1 else union_all(*parts)


def _frames(uow: UnitOfWork, item: WorkItem) -> tuple[int, int]:
    """The task frames an item covers: its frame, or all of its video's."""
    first = _frame(item)
    if item.asset_type != "video" or item.asset_id is None:
        return first, first
    asset = uow.session.get(Asset, item.asset_id)
    return first, first + max((asset.frame_count if asset else 1) - 1, 0)


def _current_ids(uow: UnitOfWork, item: WorkItem, job: Job) -> dict[str, list[int]]:
    return {kind: [row[0] for row in rows] for kind, rows in _rows(uow, item, job.id).items()}
