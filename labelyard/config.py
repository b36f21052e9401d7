"""Settings, read once from ``LABELYARD_*`` environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator can configure. Each field is ``LABELYARD_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="LABELYARD_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./labelyard-data"),
        description="Where the embedded database, media and secrets live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; empty means SQLite in the data dir. "
        "postgresql:// URLs use psycopg 3.",
    )
    host: str = Field(default="127.0.0.1", description="Address `labelyard serve` binds.")
    port: int = Field(default=8080, description="Port `labelyard serve` binds.")
    admin_username: str = Field(
        default="admin", description="Admin created on the first start of an empty database."
    )
    admin_email: str = Field(default="admin@localhost", description="That admin's email.")
    admin_password: str | None = Field(
        default=None,
        description="That admin's password; when unset one is generated and printed once.",
    )
    allow_registration: bool = Field(
        default=True, description="Whether POST /api/v1/auth/register is open."
    )
    default_groups: Annotated[list[str], NoDecode] = Field(
        default=["user"], description="Groups a newly registered user joins (comma-separated)."
    )
    session_days: int = Field(default=14, description="Lifetime of a browser session.")
    secure_cookies: bool = Field(
        default=False, description="Mark cookies Secure (set when served over HTTPS)."
    )
    max_request_bytes: int = Field(
        default=10 * 1024 * 1024,
        description="Largest JSON or form body accepted outside uploads.",
    )

    @field_validator("default_groups", mode="before")
    @classmethod
    def _split_groups(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [group.strip() for group in value.split(",") if group.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        """The URL the engine is built from, with the psycopg 3 driver for PostgreSQL."""
        url = self.database_url
        if not url:
            return f"sqlite:///{(self.data_dir / 'labelyard.sqlite3').resolve()}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
