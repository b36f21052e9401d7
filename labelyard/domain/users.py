"""Users, their groups, API tokens and browser sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from labelyard.domain.base import Base, UTCDateTime, utcnow
from labelyard.domain.spaces import new_uuid


class Group(StrEnum):
    """Roles, from most to least privileged.

    Seed 001's platform permissions map onto them: ANNOTATIONS_ADMIN -> admin,
    ANNOTATIONS_USER -> user, ANNOTATIONS_ANNOTATOR -> worker,
    ANNOTATIONS_OBSERVER -> observer. ``business`` is a manager of work.
    """

    ADMIN = "admin"
    BUSINESS = "business"
    USER = "user"
    WORKER = "worker"
    OBSERVER = "observer"


PLATFORM_PERMISSION_GROUPS = {
    "ANNOTATIONS_ADMIN": Group.ADMIN,
    "ANNOTATIONS_USER": Group.USER,
    "ANNOTATIONS_ANNOTATOR": Group.WORKER,
    "ANNOTATIONS_OBSERVER": Group.OBSERVER,
}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # How the work face names a user (seed 004's createdBy).
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(254), default="", index=True)
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    last_login: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    date_joined: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    group_rows: Mapped[list[UserGroup]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="UserGroup.name"
    )

    @property
    def groups(self) -> list[str]:
        return [row.name for row in self.group_rows]

    def set_groups(self, names: list[str]) -> None:
        wanted = list(dict.fromkeys(names))
        self.group_rows = [
            next((row for row in self.group_rows if row.name == name), None) or UserGroup(name=name)
            for name in wanted
        ]


class UserGroup(Base):
    __tablename__ = "user_groups"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(32), primary_key=True)


class ApiToken(Base):
    """A key for ``Authorization: Token <key>``; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(lazy="joined")


class BrowserSession(Base):
    """A cookie session; its CSRF token must come back on unsafe requests."""

    __tablename__ = "browser_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class SignInFailure(Base):
    """One failed sign-in (a login or HTTP Basic credentials), under what it counts
    against: ``user:<login>`` and ``address:<client address>``."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), index=True)
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
