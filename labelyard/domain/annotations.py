"""A job's annotations: tags, shapes and tracks. Each object is one row whose ``data`` is
the object as the API answers it (id, attributes, points, a track's shapes and all): a
job's annotations are written and read a few statements at a time, and read answers are
joined from the stored texts without decoding them. ``label_id`` and
``frame`` are kept beside it as columns for the queries that need them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    ForeignKey,
    Integer,
    String,
    Table,
    delete,
    event,
    select,
)
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from labelyard.domain.base import Base, UTCDateTime, utcnow
from labelyard.domain.jobs import Job, Segment
from labelyard.domain.labels import Label
from labelyard.domain.tasks import Task


class ShapeType(StrEnum):
    RECTANGLE = "rectangle"
    POLYGON = "polygon"
    POLYLINE = "polyline"
    POINTS = "points"
    ELLIPSE = "ellipse"
    CUBOID = "cuboid"
    MASK = "mask"


class Source(StrEnum):
    MANUAL = "manual"
    AUTO = "auto"
    SEMI_AUTO = "semi-auto"
    FILE = "file"


class _Annotation:
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    # No foreign key: a label's annotations are deleted with it (below), through the jobs
    # that can use it. A key would need an index of its own, which every bulk insert pays.
    label_id: Mapped[int] = mapped_column(Integer)
    frame: Mapped[int] = mapped_column(Integer)
    # The object as answered, its id first: JSON text, stored and served as it is.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class IdCounter(Base):
    """The highest id each annotation table has handed out, on SQLite, so that a deleted
    object's id is never given to a new one (PostgreSQL's sequences see to it there).
    AUTOINCREMENT would too, at the price of a write to sqlite_sequence for every row."""

    __tablename__ = "annotation_id_counters"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)


class SavedWrite(Base):
    """What a create or PUT sent with an Idempotency-Key produced, so that a retry of it
    answers the same instead of writing twice."""

    __tablename__ = "annotation_idempotency_keys"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    # The ids given to the objects, per kind, in request order.
    ids: Mapped[dict[str, list[int]]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LabeledTag(_Annotation, Base):
    __tablename__ = "labeled_tags"


class LabeledShape(_Annotation, Base):
    __tablename__ = "labeled_shapes"


class LabeledTrack(_Annotation, Base):
    __tablename__ = "labeled_tracks"


ANNOTATION_TABLES: dict[str, Table] = {
    "tags": LabeledTag.__table__,  # type: ignore[dict-item]
    "shapes": LabeledShape.__table__,  # type: ignore[dict-item]
    "tracks": LabeledTrack.__table__,  # type: ignore[dict-item]
}


@event.listens_for(Label, "after_delete")
def _delete_label_annotations(_mapper: Mapper[Label], connection: Connection, label: Label) -> None:
    """A deleted label takes its annotations with it, in every job that could use it."""
    if label.task_id is not None:
        owner = Task.id == label.task_id
    else:
        owner = Task.project_id == label.project_id
    jobs = select(Job.id).join(Segment, Job.segment_id == Segment.id).join(Task).where(owner)
    for table in ANNOTATION_TABLES.values():
        connection.execute(
            delete(table).where(table.c.job_id.in_(jobs), table.c.label_id == label.id)
        )
