"""The work face's entities: a project's workflow (versions of an ordered list of
stages), its work batches, the work items that move through the stages, and each
item's append-only history of signals."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labelyard.domain.base import Base, UTCDateTime, utcnow
from labelyard.domain.spaces import new_uuid
from labelyard.domain.users import User

URL_MAX = 2000
TASK_TYPE_MAX = 32


class WorkStatus(StrEnum):
    NEW = "NEW"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class WorkKind(StrEnum):
    """Seed 003's units of work."""

    FILE = "file"  # one frame of a single-frame dataset, or a whole sequence
    LABEL = "label"  # one object (in a sequence, one object across its frames)
    FRAME_ATTRIBUTE = "frame_attribute"
    DATASET_ATTRIBUTE = "dataset_attribute"


class Signal(StrEnum):
    START = "start"
    RELEASE = "release"
    COMPLETE = "complete"
    CANCEL = "cancel"
    REOPEN = "reopen"
    # Recorded by labelyard itself, never sent: a lease ran out.
    EXPIRE = "expire"


class Outcome(StrEnum):
    OK = "OK"
    NOT_OK = "NOT_OK"


class Assignment(StrEnum):
    ASSIGNED = "assigned"  # a manager names who does it
    QUEUE = "queue"  # workers pull it with `next`


REVIEW_TASK_TYPES = frozenset({"review", "qa", "validation", "acceptance"})


@dataclass(frozen=True)
class Stage:
    """One step of a workflow. A review stage answers OK (on to the next stage) or
    NOT_OK (back to the labelling stage before it); ``sample_rate`` is the share of
    items it reviews, the others skip it."""

    task_type: str
    assignment: Assignment = Assignment.QUEUE
    review: bool = False
    sample_rate: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "taskType": self.task_type,
            "assignment": self.assignment.value,
            "review": self.review,
            "sampleRate": self.sample_rate,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Stage:
        return cls(
            task_type=data["taskType"],
            assignment=Assignment(data["assignment"]),
            review=bool(data["review"]),
            sample_rate=data.get("sampleRate"),
        )

    def samples(self, item_uuid: str) -> bool:
        """Whether this review stage reviews the item: a fixed draw per item and stage,
        so that the answer never changes between calls or processes."""
        if self.sample_rate is None or self.sample_rate >= 1:
            return True
        digest = hashlib.sha256(f"{item_uuid}:{self.task_type}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.sample_rate


DEFAULT_STAGES = (
    Stage("labeling"),
    Stage("review", review=True),
)


class Workflow(Base):
    """One version of a project's workflow. Changing the workflow adds a version; work
    items keep the version they were created with."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    stage_data: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def stages(self) -> list[Stage]:
        return [Stage.from_json(data) for data in self.stage_data]


class WorkBatch(Base):
    """Seed 004's batch: a named group of a project's work items."""

    __tablename__ = "work_batches"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(256))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by: Mapped[User | None] = relationship(lazy="joined")


DEFAULT_BATCH = "Default"


class WorkItem(Base):
    """A unit of work on an asset, in one stage of its workflow at a time."""

    __tablename__ = "work_items"
    __table_args__ = (
        UniqueConstraint("project_id", "source_key"),
        # The pull queue: a stage's new items in the order ``next`` hands them out
        # (due soonest, undated last, then hardest, then oldest), so that it reads the
        # first entry instead of sorting them all (migration 0010).
        Index(
            "ix_work_items_queue",
            "project_id",
            "status",
            "task_type",
            text("(due_at IS NULL)"),
            "due_at",
            text("difficulty DESC"),
            "created_date",
            "id",
        ),
        Index("ix_work_items_leases", "status", "leased_until"),
        # A job's items (its frames of a task): review outcomes move the job on.
        Index("ix_work_items_task_frame", "task_id", "frame"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("work_batches.id", ondelete="CASCADE"), index=True
    )
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(24), default=WorkKind.FILE)
    status: Mapped[str] = mapped_column(String(16), default=WorkStatus.NEW)
    stage_index: Mapped[int] = mapped_column(Integer, default=0)
    # The current stage's task type, assignment mode and whether it reviews, kept
    # beside its index for the queue's query.
    task_type: Mapped[str] = mapped_column(String(TASK_TYPE_MAX))
    assignment: Mapped[str] = mapped_column(String(8), default=Assignment.QUEUE)
    in_review: Mapped[bool] = mapped_column(Boolean, default=False)
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who completed the labelling: rework goes back to them, and they never review it.
    labeller_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # What is worked on: an asset of the space, and where that asset is a frame of a
    # task, the task frame whose job holds the item's annotations.
    asset_id: Mapped[int | None] = mapped_column(
        ForeignKey("assets.id", ondelete="SET NULL"), index=True
    )
    asset_url: Mapped[str] = mapped_column(String(URL_MAX), default="")
    asset_type: Mapped[str] = mapped_column(String(16), default="image")
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    frame: Mapped[int | None] = mapped_column(Integer)
    # A label task's object: ("shape" | "track" | "tag", its id in the job).
    object_kind: Mapped[str | None] = mapped_column(String(8))
    object_id: Mapped[int | None] = mapped_column(Integer)
    # What made it, for the idempotent creation of seed 003's file and label tasks.
    source_key: Mapped[str | None] = mapped_column(String(128))
    results_url: Mapped[str] = mapped_column(String(URL_MAX), default="")
    taxonomy_version_id: Mapped[str | None] = mapped_column(String(36))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # Metadata sent with each label, by annotation shape id.
    label_meta: Mapped[dict[str, Any]] = mapped_column("label_metadata", JSON, default=dict)
    feedback: Mapped[list[str]] = mapped_column(JSON, default=list)
    due_in_seconds: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    difficulty: Mapped[int] = mapped_column(Integer, default=0)
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    workflow: Mapped[Workflow] = relationship(lazy="joined", innerjoin=True)

    @property
    def stage(self) -> Stage:
        return self.workflow.stages[self.stage_index]

    def enter(self, index: int) -> None:
        """Move to stage ``index`` of the item's workflow."""
        stage = self.workflow.stages[index]
        self.stage_index = index
        self.task_type = stage.task_type
        self.assignment = stage.assignment.value
        self.in_review = stage.review

    def is_delayed(self, now: datetime) -> bool:
        """Past due and not done (seed 003's delayed tasks)."""
        return (
            self.due_at is not None
            and self.due_at < now
            and self.status not in (WorkStatus.COMPLETED, WorkStatus.FAILED)
        )


class WorkSignal(Base):
    """One entry of a work item's history: who sent which signal, in which stage, with
    what outcome and comments, and the status it left the item in. Never changed."""

    __tablename__ = "work_signals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    work_item_id: Mapped[int] = mapped_column(
        ForeignKey("work_items.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    signal: Mapped[str] = mapped_column(String(16))
    task_type: Mapped[str] = mapped_column(String(TASK_TYPE_MAX))
    stage_index: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(8))
    comments: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
