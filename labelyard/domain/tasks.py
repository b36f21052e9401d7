"""Tasks: one dataset's frames cut into segments, with labels and a lifecycle."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labelyard.domain.base import Base, UTCDateTime, utcnow
from labelyard.domain.labels import Label
from labelyard.domain.users import User

if TYPE_CHECKING:
    from labelyard.domain.jobs import Segment
    from labelyard.domain.projects import Project

NAME_MAX = 256
BUG_TRACKER_MAX = 2000
SUBSET_MAX = 64


class TaskState(StrEnum):
    """Seed 000's lifecycle, set by managers; CVAT's ``status`` comes from the jobs."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"


STATE_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.NOT_STARTED: frozenset({TaskState.IN_PROGRESS}),
    TaskState.IN_PROGRESS: frozenset({TaskState.PAUSED, TaskState.COMPLETED}),
    TaskState.PAUSED: frozenset({TaskState.IN_PROGRESS, TaskState.COMPLETED}),
    TaskState.COMPLETED: frozenset({TaskState.IN_PROGRESS}),
}


class TeamRole(StrEnum):
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    source_task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    bug_tracker: Mapped[str] = mapped_column(String(BUG_TRACKER_MAX), default="")
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    overlap: Mapped[int | None] = mapped_column(Integer)
    segment_size: Mapped[int] = mapped_column(Integer, default=0)
    z_order: Mapped[bool] = mapped_column(Boolean, default=False)
    mode: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[str] = mapped_column(String(16), default=TaskState.NOT_STARTED)
    dimension: Mapped[str] = mapped_column(String(2), default="2d")
    subset: Mapped[str] = mapped_column(String(SUBSET_MAX), default="")
    # Filled when the task gets data.
    size: Mapped[int] = mapped_column(Integer, default=0)
    image_quality: Mapped[int] = mapped_column(Integer, default=70)
    chunk_size: Mapped[int | None] = mapped_column(Integer)
    compressed_chunk_type: Mapped[str] = mapped_column(String(16), default="imageset")
    original_chunk_type: Mapped[str] = mapped_column(String(16), default="imageset")
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    use_cache: Mapped[bool] = mapped_column(Boolean, default=True)
    # How the data was asked for (start_frame, stop_frame, frame_filter, sorting_method).
    data_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id], lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    project: Mapped[Project | None] = relationship(back_populates="tasks", lazy="joined")
    own_labels: Mapped[list[Label]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by=Label.id, lazy="selectin"
    )
    segments: Mapped[list[Segment]] = relationship(
        back_populates="task",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Segment.start_frame",
        lazy="selectin",
    )
    team: Mapped[list[TaskTeamMember]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
        order_by="TaskTeamMember.user_id",
    )

    if TYPE_CHECKING:
        # Derived from the jobs; mapped in labelyard.domain.jobs.
        status: Mapped[str]

    @property
    def labels(self) -> list[Label]:
        """A task in a project uses the project's labels."""
        return self.project.labels if self.project is not None else self.own_labels

    def can_move_to(self, state: TaskState) -> bool:
        return state == self.state or state in STATE_TRANSITIONS[TaskState(self.state)]


class TaskFrame(Base):
    """Frame ``frame`` of a task is frame ``asset_frame`` of an asset (0 for images)."""

    __tablename__ = "task_frames"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    frame: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="RESTRICT"), index=True)
    asset_frame: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(1024))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)


class TaskTeamMember(Base):
    """Who works on a task's jobs: new jobs are shared out among the annotators."""

    __tablename__ = "task_team_members"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
