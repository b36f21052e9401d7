"""Spaces: the workspaces that own projects, datasets and their people.

A default space always exists (id 1, made by the migration) and every user belongs to
it; other spaces list their members. Seed 003 calls a space a *client*, seed 004 gives
it a UUID and a company."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from labelyard.domain.base import Base, UTCDateTime, utcnow

DEFAULT_SPACE_ID = 1
NAME_MAX = 256


def new_uuid() -> str:
    return str(uuid.uuid4())


class Space(Base):
    __tablename__ = "spaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    # Seed 004's companyID: the organisation the space works for.
    company_uuid: Mapped[str] = mapped_column(String(36), default=new_uuid)
    created_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_default(self) -> bool:
        return self.id == DEFAULT_SPACE_ID


class SpaceMember(Base):
    """A user's membership of a space other than the default one (which has everyone)."""

    __tablename__ = "space_members"

    space_id: Mapped[int] = mapped_column(
        ForeignKey("spaces.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
