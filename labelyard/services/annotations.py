"""A job's annotations: read, replace, create, update and delete them, validated against
the task's labels and the job's frames, versioned so that no write is silently lost."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, field_validator
from sqlalchemy import Table, bindparam, delete, insert, select, update

from labelyard.domain import AttributeSpec, InputType, Job, Label, TaskState, utcnow
from labelyard.domain.annotations import (
    LabeledShape,
    LabeledTag,
    LabeledTrack,
    SavedWrite,
    ShapeType,
    Source,
)
from labelyard.domain.jobs import JobStatus
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.errors import Conflict, FieldErrors, InvalidInput, PermissionDenied
from labelyard.services.fields import MAX_INT, Count, Id
from labelyard.services.jobs import get_job
from labelyard.services.uow import UnitOfWork

Action = Literal["create", "update", "delete"]
KINDS = ("tags", "shapes", "tracks")
POINT_COUNTS = {ShapeType.RECTANGLE: 4, ShapeType.ELLIPSE: 4, ShapeType.CUBOID: 16}
MIN_POINTS = {ShapeType.POLYGON: 6, ShapeType.POLYLINE: 4, ShapeType.POINTS: 2}
TEXT_MAX = 4096


class AttributeValue(BaseModel):
    model_config = ConfigDict(extra="ignore")

    spec_id: Id
    value: str = Field(max_length=TEXT_MAX)


class TagIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Id | None = None
    frame: Count
    label_id: Id
    group: Count = 0
    source: Source = Source.MANUAL
    attributes: list[AttributeValue] = Field(default_factory=list)


class _Geometry(BaseModel):
    type: ShapeType
    points: list[FiniteFloat] = Field(default_factory=list, max_length=1_000_000)
    occluded: bool = False
    outside: bool = False
    z_order: int = Field(default=0, ge=-MAX_INT, le=MAX_INT)
    rotation: FiniteFloat = Field(default=0.0, ge=0, le=360)


class ShapeIn(TagIn, _Geometry):
    pass


class TrackedShapeIn(_Geometry):
    model_config = ConfigDict(extra="ignore")

    frame: Count
    keyframe: bool = True
    attributes: list[AttributeValue] = Field(default_factory=list)


class TrackIn(TagIn):
    shapes: list[TrackedShapeIn] = Field(min_length=1)

    @field_validator("shapes")
    @classmethod
    def _frames_in_order(cls, shapes: list[TrackedShapeIn]) -> list[TrackedShapeIn]:
        frames = [shape.frame for shape in shapes]
        if any(b <= a for a, b in pairwise(frames)):
            raise ValueError("A track's shapes must have increasing, distinct frames.")
        return shapes


class AnnotationsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int | None = Field(default=None, ge=0, le=2**62)
    tags: list[TagIn] = Field(default_factory=list)
    shapes: list[ShapeIn] = Field(default_factory=list)
    tracks: list[TrackIn] = Field(default_factory=list)


TABLES: dict[str, Table] = {
    "tags": LabeledTag.__table__,  # type: ignore[dict-item]
    "shapes": LabeledShape.__table__,  # type: ignore[dict-item]
    "tracks": LabeledTrack.__table__,  # type: ignore[dict-item]
}


# --- reading ----------------------------------------------------------------------


def read(uow: UnitOfWork, actor: Actor, job_id: int) -> dict[str, Any]:
    job = get_job(uow, actor, job_id)
    return {"version": job.annotation_version, **load_objects(uow, job.id)}


def load_objects(uow: UnitOfWork, job_id: int) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {}
    for kind, table in TABLES.items():
        columns = [c for c in table.columns if c.name != "job_id"]
        rows = uow.session.execute(
            select(*columns).where(table.c.job_id == job_id).order_by(table.c.id)
        ).mappings()
        result[kind] = [dict(row) for row in rows]
    return result


# --- writing ----------------------------------------------------------------------


def write(
    uow: UnitOfWork,
    actor: Actor,
    job_id: int,
    body: AnnotationsIn,
    *,
    action: Action | None,
    if_match: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """``action=None`` replaces everything (PUT); otherwise create, update or delete the
    objects given. Answers the objects as stored and the new version.

    A create or PUT retried with the same ``idempotency_key`` answers the first result
    and writes nothing again (a retried save in CVAT duplicates shapes)."""
    job = lock_job(uow, actor, job_id)
    given = {kind: getattr(body, kind) for kind in KINDS}
    replay = _replayed(uow, job, idempotency_key, action, given)
    if replay is not None:
        return replay
    _check_version(job, body.version, if_match)
    answer = apply_changes(uow, job, given, action)
    job.annotation_version += 1
    job.segment.task.updated_date = utcnow()
    if idempotency_key and action in (None, "create"):
        ids = {kind: [item["id"] for item in answer[kind]] for kind in KINDS}
        uow.session.add(
            SavedWrite(job_id=job.id, key=idempotency_key, version=job.annotation_version, ids=ids)
        )
    uow.commit()
    return {"version": job.annotation_version, **answer}


def _replayed(
    uow: UnitOfWork,
    job: Job,
    key: str | None,
    action: Action | None,
    given: dict[str, list[Any]],
) -> dict[str, Any] | None:
    if not key or action not in (None, "create"):
        return None
    saved = uow.session.get(SavedWrite, (job.id, key))
    if saved is None:
        return None
    if [len(saved.ids.get(kind, [])) for kind in KINDS] != [len(given[kind]) for kind in KINDS]:
        raise Conflict("This Idempotency-Key was used for a different request.")
    answer = {
        kind: [
            _answer(_row(kind, item, job.id), new_id)
            for item, new_id in zip(given[kind], saved.ids[kind], strict=True)
        ]
        for kind in KINDS
    }
    return {"version": saved.version, **answer}


def apply_changes(
    uow: UnitOfWork, job: Job, given: dict[str, list[Any]], action: Action | None
) -> dict[str, list[dict[str, Any]]]:
    """Validate and write, without committing; the objects as stored."""
    context = _Context(uow, job)
    if action != "delete":
        context.validate(given)
    if action in ("update", "delete"):
        context.check_ids(given)
    if action is None:
        for table in TABLES.values():
            uow.session.execute(delete(table).where(table.c.job_id == job.id))
    answer: dict[str, list[dict[str, Any]]] = {}
    for kind, table in TABLES.items():
        rows = [_row(kind, item, job.id) for item in given[kind]]
        if action in ("update", "delete"):
            ids = [item.id for item in given[kind]]
            if rows and action == "delete":
                uow.session.execute(delete(table).where(table.c.id.in_(ids)))
            elif rows:
                # One executemany: each row's values replace the object with its id.
                uow.session.execute(
                    update(table).where(table.c.id == bindparam("object_id")),
                    [dict(row, object_id=item_id) for row, item_id in zip(rows, ids, strict=True)],
                )
            answer[kind] = [_answer(row, item_id) for row, item_id in zip(rows, ids, strict=True)]
        else:
            answer[kind] = _insert(uow, table, rows)
    return answer


def _answer(row: dict[str, Any], object_id: int) -> dict[str, Any]:
    answer = dict(row, id=object_id)
    answer.pop("job_id", None)
    return answer


def clear(uow: UnitOfWork, actor: Actor, job_id: int, if_match: str | None = None) -> int:
    job = lock_job(uow, actor, job_id)
    _check_version(job, None, if_match)
    for table in TABLES.values():
        uow.session.execute(delete(table).where(table.c.job_id == job.id))
    job.annotation_version += 1
    uow.commit()
    return job.annotation_version


def lock_job(uow: UnitOfWork, actor: Actor, job_id: int) -> Job:
    job = get_job(uow, actor, job_id)
    if not access.can_change_job(actor, job):
        raise PermissionDenied()
    # Writers on one job take turns: a row lock on PostgreSQL (SQLite's write
    # transaction already serializes them).
    uow.session.execute(select(Job.id).where(Job.id == job.id).with_for_update())
    uow.session.refresh(job, ["annotation_version"])
    task = job.segment.task
    if task.state in (TaskState.NOT_STARTED, TaskState.PAUSED):
        raise Conflict(
            f"The task is {task.state.replace('_', ' ')}: its annotations cannot change."
        )
    if job.status == JobStatus.COMPLETED:
        raise Conflict("The job is completed: reopen it to change its annotations.")
    return job


def _check_version(job: Job, version: int | None, if_match: str | None) -> None:
    expected = version if if_match is None else _if_match_version(if_match)
    if expected is not None and expected != job.annotation_version:
        raise StaleVersion(job.annotation_version, expected)


def check_total_version(jobs: Sequence[Job], version: int | None, if_match: str | None) -> None:
    """A task's version is the sum of its jobs' versions."""
    total = sum(job.annotation_version for job in jobs)
    expected = version
    if if_match is not None:
        expected = _if_match_version(if_match)
    if expected is not None and expected != total:
        raise StaleVersion(total, expected)


def _if_match_version(if_match: str) -> int:
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise InvalidInput.on("If-Match", "Send the annotations' version, e.g. If-Match: 7.")
    return int(text)


class StaleVersion(Conflict):
    def __init__(self, current: int, sent: int) -> None:
        super().__init__(
            f"The annotations changed since version {sent}; they are at version {current}. "
            "Reload them and apply your change again."
        )
        self.extra = {"version": current}


def _row(kind: str, item: TagIn, job_id: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "job_id": job_id,
        "frame": item.frame,
        "label_id": item.label_id,
        "group": item.group,
        "source": item.source.value,
        "attributes": [a.model_dump() for a in item.attributes],
    }
    if isinstance(item, ShapeIn):
        row |= _geometry(item)
    elif isinstance(item, TrackIn):
        row["shapes"] = [
            _geometry(shape)
            | {
                "frame": shape.frame,
                "keyframe": shape.keyframe,
                "attributes": [a.model_dump() for a in shape.attributes],
            }
            for shape in item.shapes
        ]
    return row


def _geometry(item: _Geometry) -> dict[str, Any]:
    return {
        "type": item.type.value,
        "points": list(item.points),
        "occluded": item.occluded,
        "outside": item.outside,
        "z_order": item.z_order,
        "rotation": item.rotation,
    }


def _insert(uow: UnitOfWork, table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    ids = uow.session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    ).scalars()
    return [_answer(row, new_id) for row, new_id in zip(rows, ids, strict=True)]


class _Context:
    """What a job's annotations are checked against: its task's labels and specs, and
    the job's frames."""

    def __init__(self, uow: UnitOfWork, job: Job) -> None:
        self.uow = uow
        self.job = job
        labels: Sequence[Label] = job.segment.task.labels
        self.labels = {label.id: label for label in labels}
        self.specs: dict[int, tuple[int, AttributeSpec]] = {
            spec.id: (label.id, spec) for label in labels for spec in label.attributes
        }
        self.first, self.last = job.segment.start_frame, job.segment.stop_frame

    def validate(self, given: dict[str, list[Any]]) -> None:
        errors = FieldErrors()
        for kind, items in given.items():
            for index, item in enumerate(items):
                where = f"{kind}.{index}"
                if item.label_id not in self.labels:
                    errors.add(
                        f"{where}.label_id", f"Label {item.label_id} is not a label of this task."
                    )
                    continue
                self._frame(where, item.frame, errors)
                self._attributes(where, item.label_id, item.attributes, errors, tracked=False)
                if isinstance(item, ShapeIn):
                    self._points(where, item, errors)
                if isinstance(item, TrackIn):
                    for s_index, shape in enumerate(item.shapes):
                        at = f"{where}.shapes.{s_index}"
                        self._frame(at, shape.frame, errors)
                        self._points(at, shape, errors)
                        self._attributes(at, item.label_id, shape.attributes, errors, tracked=True)
        errors.raise_if_any()

    def check_ids(self, given: dict[str, list[Any]]) -> None:
        errors = FieldErrors()
        for kind, items in given.items():
            table = TABLES[kind]
            ids = [item.id for item in items]
            seen: set[int] = set()
            for index, item_id in enumerate(ids):
                if item_id is None:
                    errors.add(f"{kind}.{index}.id", "An id is needed to update or delete.")
                elif item_id in seen:
                    errors.add(
                        f"{kind}.{index}.id", f"{kind[:-1].capitalize()} {item_id} is given twice."
                    )
                else:
                    seen.add(item_id)
            known = set(
                self.uow.session.scalars(
                    select(table.c.id).where(
                        table.c.job_id == self.job.id, table.c.id.in_([i for i in ids if i])
                    )
                )
            )
            for index, item_id in enumerate(ids):
                if item_id is not None and item_id not in known:
                    errors.add(f"{kind}.{index}.id", f"No {kind[:-1]} {item_id} in this job.")
        errors.raise_if_any()

    def _frame(self, where: str, frame: int, errors: FieldErrors) -> None:
        if not self.first <= frame <= self.last:
            errors.add(
                f"{where}.frame", f"Frame {frame} is outside this job ({self.first}-{self.last})."
            )

    def _points(self, where: str, item: _Geometry, errors: FieldErrors) -> None:
        count, kind = len(item.points), item.type
        if kind in POINT_COUNTS and count != POINT_COUNTS[kind]:
            errors.add(
                f"{where}.points", f"A {kind} has {POINT_COUNTS[kind]} coordinates, not {count}."
            )
        elif kind in MIN_POINTS and (count < MIN_POINTS[kind] or count % 2):
            errors.add(
                f"{where}.points",
                f"A {kind} needs an even number of at least {MIN_POINTS[kind]} coordinates.",
            )
        elif kind == ShapeType.MASK and (
            count < 5 or any(p < 0 or p != int(p) for p in item.points)
        ):
            errors.add(
                f"{where}.points",
                "A mask is run-length counts then its box: whole, non-negative numbers.",
            )

    def _attributes(
        self,
        where: str,
        label_id: int,
        values: list[AttributeValue],
        errors: FieldErrors,
        *,
        tracked: bool,
    ) -> None:
        seen: set[int] = set()
        for index, value in enumerate(values):
            at = f"{where}.attributes.{index}"
            owner, spec = self.specs.get(value.spec_id, (None, None))
            if spec is None or owner != label_id:
                errors.add(
                    f"{at}.spec_id",
                    f"Attribute {value.spec_id} is not an attribute of label {label_id}.",
                )
                continue
            if value.spec_id in seen:
                errors.add(f"{at}.spec_id", f"Attribute {value.spec_id} is given twice.")
            seen.add(value.spec_id)
            if tracked and not spec.mutable:
                errors.add(
                    f"{at}.spec_id", f"Attribute {spec.name!r} is not mutable: set it on the track."
                )
            problem = value_problem(spec, value.value)
            if problem:
                errors.add(f"{at}.value", problem)


def value_problem(spec: AttributeSpec, value: str) -> str | None:
    """Why ``value`` does not fit ``spec``, or None."""
    kind = spec.input_type
    if kind in (InputType.SELECT, InputType.RADIO):
        return None if value in spec.values else f"{value!r} is not one of {spec.values}."
    if kind == InputType.CHECKBOX:
        return None if value in ("true", "false") else 'A checkbox is "true" or "false".'
    if kind == InputType.NUMBER:
        low, high, step = (float(v) for v in spec.values)
        try:
            number = float(value)
        except ValueError:
            return f"{value!r} is not a number."
        if not math.isfinite(number) or not low <= number <= high:
            return f"{value!r} is not between {spec.values[0]} and {spec.values[1]}."
        steps = (number - low) / step
        if abs(steps - round(steps)) > 1e-6:
            return f"{value!r} is not on the step {spec.values[2]} from {spec.values[0]}."
        return None
    return None if len(value) <= TEXT_MAX else f"A text is at most {TEXT_MAX} characters."
