"""Projects: labels and a default team shared by their tasks."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labelyard.domain.base import Base, UTCDateTime, utcnow
from labelyard.domain.labels import Label
from labelyard.domain.spaces import DEFAULT_SPACE_ID, new_uuid
from labelyard.domain.users import User

if TYPE_CHECKING:
    from labelyard.domain.tasks import Task

NAME_MAX = 256
BUG_TRACKER_MAX = 2000


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The work face names projects by UUID, the CVAT face by ``id``.
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    space_id: Mapped[int] = mapped_column(
        ForeignKey("spaces.id", ondelete="RESTRICT"), index=True, default=DEFAULT_SPACE_ID
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    description: Mapped[str] = mapped_column(Text, default="")
    # Seed 004's dataType: what its work items are (``image`` or ``image_sequence``).
    data_type: Mapped[str] = mapped_column(String(16), default="image")
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    bug_tracker: Mapped[str] = mapped_column(String(BUG_TRACKER_MAX), default="")
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id], lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    labels: Mapped[list[Label]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by=Label.id, lazy="selectin"
    )
    tasks: Mapped[list[Task]] = relationship(
        back_populates="project", passive_deletes=True, order_by="Task.id"
    )

    if TYPE_CHECKING:
        # Derived from the jobs of its tasks; mapped in labelyard.domain.jobs.
        status: Mapped[str]
