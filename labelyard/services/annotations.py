"""A job's annotations: read, replace, create, update and delete them, validated against
the task's labels and the job's frames, versioned so that no write is silently lost.

Built for bulk: a body is decoded and type-checked in one pass (``annotation_body``),
each object is stored as the JSON text it is answered with, and answers are joined from
those texts without decoding them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Table, select

from labelyard.adapters.db.bulk import AnnotationRows, Row
from labelyard.domain import AttributeSpec, InputType, Job, TaskState, utcnow
from labelyard.domain.annotations import ANNOTATION_TABLES, SavedWrite, ShapeType
from labelyard.domain.jobs import JobStatus
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.annotation_body import (
    KINDS,
    TEXT_MAX,
    AnnotationsIn,
    AttributeValue,
    Shape,
    Tag,
    Track,
    TrackedShape,
    encode,
    require_kinds,
)
from labelyard.services.errors import Conflict, FieldErrors, InvalidInput, PermissionDenied
from labelyard.services.jobs import get_job
from labelyard.services.uow import UnitOfWork

Action = Literal["create", "update", "delete"]
TABLES: dict[str, Table] = ANNOTATION_TABLES
POINT_COUNTS = {ShapeType.RECTANGLE: 4, ShapeType.ELLIPSE: 4, ShapeType.CUBOID: 16}
MIN_POINTS = {ShapeType.POLYGON: 6, ShapeType.POLYLINE: 4, ShapeType.POINTS: 2}

# --- what is answered ---------------------------------------------------------------


@dataclass
class Annotations:
    """A job's or task's annotations, each object as (id, its JSON text)."""

    version: int
    objects: dict[str, list[tuple[int, str]]]

    def to_json(self) -> bytes:
        lists = {
            kind: ",".join([text for _, text in items]) for kind, items in self.objects.items()
        }
        return (
            f'{{"version":{self.version},"tags":[{lists["tags"]}],'
            f'"shapes":[{lists["shapes"]}],"tracks":[{lists["tracks"]}]}}'
        ).encode()


def _text(item: Tag, object_id: int) -> str:
    """The object's JSON text, as stored and answered."""
    item.id = object_id
    return encode(item).decode()


# --- reading ----------------------------------------------------------------------


def read(uow: UnitOfWork, actor: Actor, job_id: int) -> Annotations:
    job = get_job(uow, actor, job_id)
    return Annotations(job.annotation_version, load_objects(uow, job.id))


def load_objects(uow: UnitOfWork, job_id: int) -> dict[str, list[tuple[int, str]]]:
    rows = AnnotationRows(uow.session)
    return {kind: rows.read(table, job_id) for kind, table in TABLES.items()}


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
) -> Annotations:
    """``action=None`` replaces everything (PUT); otherwise create, update or delete the
    objects given. Answers the objects as stored and the new version.

    A create or PUT retried with the same ``idempotency_key`` answers the first result
    and writes nothing again (a retried save in CVAT duplicates shapes)."""
    if action is None:
        require_kinds(body)
    job = lock_job(uow, actor, job_id)
    given = body.objects()
    replay = _replayed(uow, job, idempotency_key, action, given)
    if replay is not None:
        return replay
    _check_version(job, body.version, if_match)
    written = apply_changes(uow, job, given, action)
    job.annotation_version += 1
    job.segment.task.updated_date = utcnow()
    if idempotency_key and action in (None, "create"):
        ids = {kind: [object_id for object_id, _ in written[kind]] for kind in KINDS}
        uow.session.add(
            SavedWrite(job_id=job.id, key=idempotency_key, version=job.annotation_version, ids=ids)
        )
    uow.commit()
    return Annotations(job.annotation_version, written)


def _replayed(
    uow: UnitOfWork,
    job: Job,
    key: str | None,
    action: Action | None,
    given: dict[str, list[Any]],
) -> Annotations | None:
    if not key or action not in (None, "create"):
        return None
    saved = uow.session.get(SavedWrite, (job.id, key))
    if saved is None:
        return None
    if [len(saved.ids.get(kind, [])) for kind in KINDS] != [len(given[kind]) for kind in KINDS]:
        raise Conflict("This Idempotency-Key was used for a different request.")
    objects = {
        kind: [
            (object_id, _text(item, object_id))
            for item, object_id in zip(given[kind], saved.ids[kind], strict=True)
        ]
        for kind in KINDS
    }
    return Annotations(saved.version, objects)


def apply_changes(
    uow: UnitOfWork, job: Job, given: dict[str, list[Any]], action: Action | None
) -> dict[str, list[tuple[int, str]]]:
    """Validate and write, without committing; the objects as stored."""
    rules = _Rules(job)
    if action != "delete":
        rules.validate(given)
    store = AnnotationRows(uow.session)
    if action in ("update", "delete"):
        _check_ids(store, job, given)
    written: dict[str, list[tuple[int, str]]] = {}
    for kind, table in TABLES.items():
        items = given[kind]
        if action is None:
            store.delete(table, job.id)
        if action in ("update", "delete"):
            ids: Sequence[int] = [item.id for item in items]
            if ids:
                store.delete(table, job.id, ids)
        else:
            ids = store.new_ids(table, len(items))
        rows: list[Row] = []
        answer: list[tuple[int, str]] = []
        for item, object_id in zip(items, ids, strict=True):
            text = _text(item, object_id)
            rows.append((object_id, job.id, item.label_id, item.frame, text))
            answer.append((object_id, text))
        if action != "delete":
            store.insert(table, rows)
        written[kind] = answer
    return written


def clear(uow: UnitOfWork, actor: Actor, job_id: int, if_match: str | None = None) -> int:
    job = lock_job(uow, actor, job_id)
    _check_version(job, None, if_match)
    store = AnnotationRows(uow.session)
    for table in TABLES.values():
        store.delete(table, job.id)
    job.annotation_version += 1
    uow.commit()
    return job.annotation_version


def lock_job(uow: UnitOfWork, actor: Actor, job_id: int) -> Job:
    job = get_job(uow, actor, job_id)
    if not access.can_change_job(actor, job):
        raise PermissionDenied()
    return lock_for_writing(uow, job)


def lock_for_writing(uow: UnitOfWork, job: Job) -> Job:
    """Take the job's write turn and check that its annotations may change now (whoever
    may write them was checked by the caller)."""
    # Writers on one job take turns: a row lock on PostgreSQL (SQLite's write
    # transaction already serializes them).
    uow.session.execute(select(Job.id).where(Job.id == job.id).with_for_update())
    uow.session.refresh(job, ["annotation_version"])
    check_writable(job)
    return job


def check_writable(job: Job) -> None:
    """Refuse a write to a job whose annotations may not change now: its task not
    started or paused, or the job completed. The caller holds the job's write turn."""
    task = job.segment.task
    if task.state in (TaskState.NOT_STARTED, TaskState.PAUSED):
        raise Conflict(
            f"The task is {task.state.replace('_', ' ')}: its annotations cannot change."
        )
    if job.status == JobStatus.COMPLETED:
        raise Conflict("The job is completed: reopen it to change its annotations.")


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


def _check_ids(store: AnnotationRows, job: Job, given: dict[str, list[Any]]) -> None:
    """Every object to update or delete names an id of this job, once."""
    errors = FieldErrors()
    for kind, items in given.items():
        if not items:
            continue
        known = store.ids(TABLES[kind], job.id)
        seen: set[int] = set()
        for index, item in enumerate(items):
            object_id = item.id
            if not isinstance(object_id, int):
                errors.add(f"{kind}.{index}.id", "An id is needed to update or delete.")
            elif object_id in seen:
                errors.add(
                    f"{kind}.{index}.id", f"{kind[:-1].capitalize()} {object_id} is given twice."
                )
            elif object_id not in known:
                errors.add(f"{kind}.{index}.id", f"No {kind[:-1]} {object_id} in this job.")
            else:
                seen.add(object_id)
    errors.raise_if_any()


# --- validation -------------------------------------------------------------------


class _Rules:
    """What a job's annotations are checked against: its task's labels and their
    attributes, and the job's frames. Messages (and their paths) are only made for the
    objects that fail."""

    def __init__(self, job: Job) -> None:
        labels = job.segment.task.labels
        self.specs: dict[int, dict[int, AttributeSpec]] = {
            label.id: {spec.id: spec for spec in label.attributes} for label in labels
        }
        self.accepts: dict[int, Callable[[str], bool]] = {
            spec.id: _acceptor(spec) for label in labels for spec in label.attributes
        }
        # Per label, per attribute: the values already found to fit (values repeat).
        self.accepted: dict[int, dict[int, set[str]]] = {
            label.id: {spec.id: set() for spec in label.attributes} for label in labels
        }
        self.first, self.last = job.segment.start_frame, job.segment.stop_frame
        self.errors = FieldErrors()

    def validate(self, given: dict[str, list[Any]]) -> None:
        # The common case first, in as few steps as possible; whatever it does not pass
        # is looked at again by _explain, which names each problem.
        first, last = self.first, self.last
        accepted_of, counts, fine = self.accepted, POINT_COUNTS, self._fine
        for kind, items in given.items():
            shapes, tracks = kind == "shapes", kind == "tracks"
            for index, item in enumerate(items):
                accepted = accepted_of.get(item.label_id)
                if (
                    accepted is None
                    or not first <= item.frame <= last
                    or (item.attributes and not fine(accepted, item.attributes))
                    or (shapes and counts.get(item.type) != len(item.points))
                    or tracks
                ):
                    self._explain(kind, index, item, self.specs.get(item.label_id))
        self.errors.raise_if_any()

    def _fine(self, accepted: dict[int, set[str]], values: list[AttributeValue]) -> bool:
        for value in values:
            known = accepted.get(value.spec_id)
            if known is None:
                return False
            if value.value not in known:
                if not self.accepts[value.spec_id](value.value):
                    return False
                known.add(value.value)
        count = len(values)
        if count == 2:
            return values[0].spec_id != values[1].spec_id
        return count < 2 or len({value.spec_id for value in values}) == count

    def _explain(
        self, kind: str, index: int, item: Any, specs: dict[int, AttributeSpec] | None
    ) -> None:
        if specs is None:
            self.errors.add(
                f"{kind}.{index}.label_id", f"Label {item.label_id} is not a label of this task."
            )
            return
        if not self.first <= item.frame <= self.last:
            self._frame(f"{kind}.{index}", item.frame)
        if item.attributes:
            self._attributes((kind, index), item.label_id, specs, item.attributes, False)
        if kind == "shapes":
            self._points((kind, index), item)
        elif kind == "tracks":
            self._track(index, item, specs)

    def _track(self, index: int, track: Track, specs: dict[int, AttributeSpec]) -> None:
        first, last = self.first, self.last
        previous = -1
        for s_index, shape in enumerate(track.shapes):
            where = ("tracks", index, "shapes", s_index)
            if shape.frame <= previous:
                self.errors.add(
                    f"tracks.{index}.shapes",
                    "A track's shapes must have increasing, distinct frames.",
                )
            previous = shape.frame
            if not first <= shape.frame <= last:
                self._frame(_path(where), shape.frame)
            self._points(where, shape)
            if shape.attributes:
                self._attributes(where, track.label_id, specs, shape.attributes, True)

    def _frame(self, where: str, frame: int) -> None:
        self.errors.add(
            f"{where}.frame", f"Frame {frame} is outside this job ({self.first}-{self.last})."
        )

    def _points(self, where: tuple[str | int, ...], item: Shape | TrackedShape) -> None:
        count, kind = len(item.points), item.type
        exact = POINT_COUNTS.get(kind)
        if exact is not None:
            if count != exact:
                self.errors.add(
                    f"{_path(where)}.points", f"A {kind} has {exact} coordinates, not {count}."
                )
            return
        least = MIN_POINTS.get(kind)
        if least is not None:
            if count < least or count % 2:
                self.errors.add(
                    f"{_path(where)}.points",
                    f"A {kind} needs an even number of at least {least} coordinates.",
                )
            return
        if count < 5 or any(p < 0 or p != int(p) for p in item.points):
            self.errors.add(
                f"{_path(where)}.points",
                "A mask is run-length counts then its box: whole, non-negative numbers.",
            )

    def _attributes(
        self,
        where: tuple[str | int, ...],
        label_id: int,
        specs: dict[int, AttributeSpec],
        values: list[AttributeValue],
        tracked: bool,
    ) -> None:
        accepts = self.accepts
        for value in values:
            spec = specs.get(value.spec_id)
            if spec is None or (tracked and not spec.mutable) or not accepts[spec.id](value.value):
                break
        else:
            if len(values) < 2 or len({value.spec_id for value in values}) == len(values):
                return
        # Something is wrong: name each problem.
        seen: set[int] = set()
        for index, value in enumerate(values):
            at = f"{_path(where)}.attributes.{index}"
            spec = specs.get(value.spec_id)
            if spec is None:
                self.errors.add(
                    f"{at}.spec_id",
                    f"Attribute {value.spec_id} is not an attribute of label {label_id}.",
                )
                continue
            if value.spec_id in seen:
                self.errors.add(f"{at}.spec_id", f"Attribute {value.spec_id} is given twice.")
            seen.add(value.spec_id)
            if tracked and not spec.mutable:
                self.errors.add(
                    f"{at}.spec_id", f"Attribute {spec.name!r} is not mutable: set it on the track."
                )
            problem = value_problem(spec, value.value)
            if problem:
                self.errors.add(f"{at}.value", problem)


def _path(parts: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in parts)


def _acceptor(spec: AttributeSpec) -> Callable[[str], bool]:
    """A quick yes/no for a value of ``spec``; value_problem says why not."""
    if spec.input_type in (InputType.SELECT, InputType.RADIO):
        return frozenset(spec.values).__contains__
    if spec.input_type == InputType.CHECKBOX:
        return frozenset(("true", "false")).__contains__
    if spec.input_type == InputType.NUMBER:
        low, high, step = (float(v) for v in spec.values)

        def accepts(value: str) -> bool:
            try:
                number = float(value)
            except ValueError:
                return False
            steps = (number - low) / step
            return low <= number <= high and abs(steps - round(steps)) <= 1e-6

        return accepts
    return lambda value: len(value) <= TEXT_MAX


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
