"""Operations: any long-running work, with its status and progress."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from labelyard.domain.base import Base, UTCDateTime, utcnow


class OperationStatus(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


DONE = frozenset({OperationStatus.FINISHED, OperationStatus.FAILED, OperationStatus.CANCELLED})


def new_operation_id() -> str:
    return str(uuid.uuid4())


class Operation(Base):
    """One piece of background work. Every "progress id" the seeds hand out is one."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_operation_id)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OperationStatus.QUEUED, index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Progress the handler reports beyond a fraction (files done of total, errors...).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the operation works on, e.g. "task:12", so that its latest one can be found.
    target: Mapped[str] = mapped_column(String(64), default="", index=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Refreshed by whoever runs it; a started operation whose heartbeat stops has lost
    # its worker.
    heartbeat: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_done(self) -> bool:
        return self.status in DONE
