"""Labels and their attribute specs, owned by a project or by a task."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labelyard.domain.base import Base

LABEL_NAME_MAX = 64
COLOR_MAX = 8

# A palette of well-separated colors; new labels take the first one not yet used.
LABEL_PALETTE = (
    "#33ddff", "#fa3253", "#34d1b7", "#ff007c", "#ff6037", "#ddff33", "#24b353",
    "#b83df5", "#66ff66", "#32b7fa", "#ffcc33", "#83e070", "#fafa37", "#5986b3",
    "#8c78f0", "#ff6a4d", "#f078f0", "#2a7dd1", "#b25050", "#cc3366", "#cc9933",
    "#aaf0d1", "#ff00cc", "#3df53d", "#fa32b7", "#3d3df5", "#733380", "#8c8c8c",
)  # fmt: skip


class InputType(StrEnum):
    SELECT = "select"
    RADIO = "radio"
    CHECKBOX = "checkbox"
    NUMBER = "number"
    TEXT = "text"


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (
        CheckConstraint(
            "(project_id IS NULL) <> (task_id IS NULL)", name="owned_by_project_or_task"
        ),
        UniqueConstraint("project_id", "name"),
        UniqueConstraint("task_id", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(LABEL_NAME_MAX))
    color: Mapped[str] = mapped_column(String(COLOR_MAX))

    attributes: Mapped[list[AttributeSpec]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="AttributeSpec.id",
        lazy="selectin",
    )


class AttributeSpec(Base):
    __tablename__ = "attribute_specs"
    __table_args__ = (UniqueConstraint("label_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    mutable: Mapped[bool] = mapped_column(Boolean, default=False)
    input_type: Mapped[str] = mapped_column(String(16))
    default_value: Mapped[str] = mapped_column(String(128), default="")
    values: Mapped[list[str]] = mapped_column(JSON, default=list)
