"""Segments (frame ranges of a task) and the annotation jobs on them."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, case, exists, select
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from labelyard.domain.base import Base
from labelyard.domain.projects import Project
from labelyard.domain.tasks import Task
from labelyard.domain.users import User


class JobStatus(StrEnum):
    ANNOTATION = "annotation"
    VALIDATION = "validation"
    COMPLETED = "completed"


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    start_frame: Mapped[int] = mapped_column(Integer)
    stop_frame: Mapped[int] = mapped_column(Integer)

    task: Mapped[Task] = relationship(back_populates="segments")
    jobs: Mapped[list[Job]] = relationship(
        back_populates="segment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Job.id",
        lazy="selectin",
    )


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reviewer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.ANNOTATION)
    # Incremented by every annotation write; clients send it back to detect stale writes.
    annotation_version: Mapped[int] = mapped_column(Integer, default=0)

    segment: Mapped[Segment] = relationship(back_populates="jobs", lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id], lazy="joined")

    @property
    def task(self) -> Task:
        return self.segment.task


def _status_of(jobs_filter: ColumnElement[bool]) -> ColumnElement[str]:
    """CVAT's derived status: annotation while any job is annotated, then validation,
    completed once every job is; a task without jobs is in annotation."""

    def any_job(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists(
            select(Job.id)
            .join(Segment, Job.segment_id == Segment.id)
            .where(jobs_filter, *conditions)
        )

    return case(
        (any_job(Job.status == JobStatus.ANNOTATION), JobStatus.ANNOTATION.value),
        (any_job(Job.status == JobStatus.VALIDATION), JobStatus.VALIDATION.value),
        (any_job(), JobStatus.COMPLETED.value),
        else_=JobStatus.ANNOTATION.value,
    )


Task.status = column_property(_status_of(Segment.task_id == Task.id))
Project.status = column_property(
    _status_of(Segment.task_id.in_(select(Task.id).where(Task.project_id == Project.id)))
)
