"""A task's git repository: the export address its annotations are pushed to (CVAT's git
integration). One per task; the file sits at ``path`` on the task's own branch."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from labelyard.domain.base import Base, UTCDateTime, utcnow

URL_MAX = 2000
PATH_MAX = 1024
BRANCH_MAX = 128


class GitStatus(StrEnum):
    """CVAT's values for ``status.value`` of ``/git/repository/get``."""

    NOT_SYNCED = "!sync"
    SYNCING = "syncing"
    SYNCED = "sync"
    MERGED = "merged"


class GitRepository(Base):
    __tablename__ = "git_repositories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    # As given, credentials included (they are needed to push); never shown as is.
    url: Mapped[str] = mapped_column(String(URL_MAX))
    path: Mapped[str] = mapped_column(String(PATH_MAX))
    format: Mapped[str] = mapped_column(String(64))
    # Chosen when the repository is linked, so that renaming the task keeps the branch.
    branch: Mapped[str] = mapped_column(String(BRANCH_MAX))
    status: Mapped[str] = mapped_column(String(16), default=GitStatus.NOT_SYNCED)
    # Why the last link check, push or status check failed; None after a success.
    error: Mapped[str | None] = mapped_column(Text)
    # The last pushed commit, and the task's updated_date its annotations were read at:
    # the repository is in sync while the task has not changed since.
    pushed_commit: Mapped[str | None] = mapped_column(String(64))
    synced_stamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the remote was last asked whether the branch was merged.
    checked_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
