"""Settings, read once from ``LABELYARD_*`` environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

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
    sign_in_failure_limit: int = Field(
        default=10,
        ge=0,
        description="Failed sign-ins (logins, HTTP Basic) per user name and per client "
        "address within the window, after which sign-ins answer 429; 0 turns it off.",
    )
    sign_in_failure_window_seconds: float = Field(
        default=300, gt=0, description="The window failed sign-ins are counted over."
    )
    lease_seconds: float = Field(
        default=900,
        gt=0,
        description="How long a claimed work item stays its worker's without a write or "
        "another `start`; then it returns to its stage's queue.",
    )
    max_request_bytes: int = Field(
        default=10 * 1024 * 1024,
        description="Largest JSON or form body accepted outside uploads.",
    )

    max_upload_bytes: int = Field(
        default=50 * 1024**3, description="Largest media upload (task data, dataset batches)."
    )
    max_annotation_bytes: int = Field(
        default=256 * 1024**2,
        description="Largest annotation save (a JSON body, held in memory while checked).",
    )
    export_ttl_hours: float = Field(
        default=24, gt=0, description="How long a made export is kept and served again."
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs local media URLs; when unset one is generated and kept in the data dir.",
    )
    storage: Literal["local", "s3"] = Field(
        default="local", description="Where media lives: the data dir, or S3-compatible storage."
    )
    s3_endpoint: str | None = Field(
        default=None, description="S3 endpoint URL (empty: AWS's own for the region)."
    )
    s3_bucket: str = Field(default="labelyard", description="S3 bucket for media.")
    s3_access_key: str | None = Field(default=None, description="S3 access key id.")
    s3_secret_key: str | None = Field(default=None, description="S3 secret access key.")
    s3_region: str = Field(default="us-east-1", description="S3 region.")
    redis_url: str | None = Field(
        default=None,
        description="redis:// URL; when set, background operations run on RQ workers "
        "(`labelyard worker`) instead of in the server process.",
    )
    operation_workers: int = Field(
        default=2, description="Threads running operations in the server (no Redis)."
    )
    operation_heartbeat_seconds: float = Field(
        default=5.0, description="How often a running operation reports it is alive."
    )
    operation_stale_seconds: float = Field(
        default=60.0,
        description="A started operation silent this long lost its worker and is failed.",
    )
    operation_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra modules registering operation kinds (comma-separated).",
    )
    share_dir: Path | None = Field(
        default=None, description="A directory whose files tasks may take as server_files."
    )
    allow_private_urls: bool = Field(
        default=False,
        description="Let remote_files and HTTP export addresses reach private and loopback "
        "addresses (tests only).",
    )
    export_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories (comma-separated) under which POST /api/v1/exports may "
        "write results and local git repositories may be linked; none means local export "
        "addresses are off.",
    )

    @field_validator("default_groups", "operation_modules", "export_roots", mode="before")
    @classmethod
    def _split_groups(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [group.strip() for group in value.split(",") if group.strip()]
        return value

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

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
