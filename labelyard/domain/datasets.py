"""Datasets: all media lives in them. A dataset holds batches; a batch holds assets
(an image, or a video with its frames). A task binds exactly one dataset."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labelyard.domain.base import Base, UTCDateTime, utcnow
from labelyard.domain.spaces import DEFAULT_SPACE_ID, new_uuid
from labelyard.domain.users import User

NAME_MAX = 256


def new_storage_prefix() -> str:
    return f"datasets/{uuid.uuid4().hex}"


class Scene(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    IMAGE_SEQUENCE = "image_sequence"


class DatasetStatus(StrEnum):
    EMPTY = "empty"
    UPLOADING = "uploading"
    READY = "ready"
    FAILED = "failed"


class AnnotationStatus(StrEnum):
    """Whether a dataset carries annotations: it does once a task has published some."""

    UNLABELED = "unlabeled"
    LABELED = "labeled"


class VersionStatus(StrEnum):
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class AssetKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    space_id: Mapped[int] = mapped_column(
        ForeignKey("spaces.id", ondelete="RESTRICT"), index=True, default=DEFAULT_SPACE_ID
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    description: Mapped[str] = mapped_column(Text, default="")
    scene: Mapped[str] = mapped_column(String(16), default=Scene.IMAGE)
    annotation_type: Mapped[str] = mapped_column(String(64), default="")
    format: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[str] = mapped_column(String(32), default="0.1")
    status: Mapped[str] = mapped_column(String(16), default=DatasetStatus.EMPTY)
    annotation_status: Mapped[str] = mapped_column(String(16), default=AnnotationStatus.UNLABELED)
    # Items (images, video frames) with annotations in the newest published version.
    annotated_count: Mapped[int] = mapped_column(Integer, default=0)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    storage: Mapped[str] = mapped_column(String(16), default="local")
    # Where its files live; chosen before the row exists, so files can be stored first.
    storage_prefix: Mapped[str] = mapped_column(String(64), default=new_storage_prefix)
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship(lazy="joined")
    batches: Mapped[list[Batch]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Batch.id",
    )  # fmt: skip


class DatasetVersion(Base):
    """A task's annotations published into its dataset (seed 001's 提送至AI平台): the
    dataset's version moves on (0.1 -> 0.2 -> ...), and the annotations are kept as a
    file, by asset and frame, for downloads of the dataset with its annotations."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="SET NULL"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.BUILDING)
    message: Mapped[str] = mapped_column(Text, default="")
    operation_id: Mapped[str | None] = mapped_column(String(36))
    storage_key: Mapped[str] = mapped_column(String(1100), default="")
    annotated_count: Mapped[int] = mapped_column(Integer, default=0)
    object_count: Mapped[int] = mapped_column(Integer, default=0)
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="batches")


class Asset(Base):
    """One stored media file: an image (one frame) or a video (many)."""

    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("batch_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(8))
    storage_key: Mapped[str] = mapped_column(String(1100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frame_count: Mapped[int] = mapped_column(Integer, default=1)
    fps: Mapped[float | None] = mapped_column(Float)
    # Frame numbers of a video's keyframes, for seeking.
    keyframes: Mapped[list[int] | None] = mapped_column(JSON)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
