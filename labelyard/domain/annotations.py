"""A job's annotations: tags, shapes and tracks. Attributes, points and a track's shapes
are kept with their object (JSON), so a job's annotations are read and written a few
statements at a time, not one row per value."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from labelyard.domain.base import Base, UTCDateTime, utcnow


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
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), index=True)
    frame: Mapped[int] = mapped_column(Integer)
    group: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(16), default=Source.MANUAL)
    # [{"spec_id": int, "value": str}, ...]
    attributes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


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

    type: Mapped[str] = mapped_column(String(16))
    occluded: Mapped[bool] = mapped_column(Boolean, default=False)
    outside: Mapped[bool] = mapped_column(Boolean, default=False)
    z_order: Mapped[int] = mapped_column(Integer, default=0)
    rotation: Mapped[float] = mapped_column(Float, default=0.0)
    points: Mapped[list[float]] = mapped_column(JSON, default=list)


class LabeledTrack(_Annotation, Base):
    __tablename__ = "labeled_tracks"

    # The tracked shapes, in frame order: [{"frame", "type", "points", "occluded",
    # "outside", "keyframe", "z_order", "rotation", "attributes"}, ...]
    shapes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
