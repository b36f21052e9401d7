"""Export addresses (seed 000's 文件导出地址): places outside the platform that a task's
results are written to. Three kinds:

- ``local``: a directory under one of ``LABELYARD_EXPORT_ROOTS`` (none configured: off);
- ``s3``: a bucket and key prefix on AWS or any S3-compatible server, with credentials
  given in the request (kept only until the export ends) or the server's default chain;
- ``http``: a URL the file is PUT to, such as a presigned upload URL.

An address is given as an object (``{"kind": "s3", "bucket": ..., "prefix": ...}``) or as
a URL string (``s3://bucket/prefix``, ``file:///srv/exports/team``, ``https://...``)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from labelyard.adapters import network
from labelyard.adapters.storage.s3 import S3Storage
from labelyard.config import Settings
from labelyard.services.errors import InvalidInput
from labelyard.services.ingest import check_public_url
from labelyard.services.operations import UserFacingError

Kind = Literal["local", "s3", "http"]
KINDS: tuple[Kind, ...] = ("local", "s3", "http")
# What is never shown back, and dropped from the operation once it ends.
SECRETS = ("secret_access_key", "session_token")
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
TEXT_MAX = 2048


@dataclass(frozen=True)
class Destination:
    kind: Kind
    path: str | None = None
    bucket: str | None = None
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    url: str | None = None

    def to_params(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, "")}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Destination:
        return cls(**params)

    def public(self) -> dict[str, Any]:
        """The address as it may be shown: no secrets, and a URL without its query
        (a presigned URL's signature is a secret too)."""
        shown = {k: v for k, v in self.to_params().items() if k not in SECRETS}
        if self.url is not None:
            shown["url"] = self.url.split("?", 1)[0]
        return shown

    def location(self, filename: str) -> str:
        if self.kind == "local":
            return str(Path(self.path or "") / filename)
        if self.kind == "s3":
            return f"s3://{self.bucket}/{self.prefix}{filename}"
        return (self.url or "").split("?", 1)[0]


def parse(value: Any, settings: Settings) -> Destination:
    """An address from a request body; InvalidInput on ``address`` when it is unusable."""
    if isinstance(value, str):
        value = _from_url(value)
    if not isinstance(value, dict):
        raise InvalidInput.on("address", "An address is an object with a kind, or a URL.")
    kind = value.get("kind")
    if kind not in KINDS:
        raise InvalidInput.on("address", f"kind must be one of {', '.join(KINDS)}.")
    known = {f.name for f in fields(Destination)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise InvalidInput.on("address", f"Unknown fields: {', '.join(unknown)}.")
    for key, item in value.items():
        if key != "kind" and item is not None and not isinstance(item, str):
            raise InvalidInput.on("address", f"{key} must be a string.")
        if isinstance(item, str) and len(item) > TEXT_MAX:
            raise InvalidInput.on("address", f"{key} is longer than {TEXT_MAX} characters.")
    destination = Destination(**value)
    if kind == "local":
        return _local(destination, settings)
    if kind == "s3":
        return _s3(destination)
    return _http(destination, settings)


def _from_url(text: str) -> dict[str, Any]:
    parts = urlsplit(text)
    if parts.scheme == "s3":
        return {"kind": "s3", "bucket": parts.netloc, "prefix": parts.path.lstrip("/")}
    if parts.scheme == "file":
        return {"kind": "local", "path": parts.path}
    if parts.scheme in ("http", "https"):
        return {"kind": "http", "url": text}
    if text.startswith("/"):
        return {"kind": "local", "path": text}
    raise InvalidInput.on("address", "An address URL is s3://, file://, http:// or https://.")


def _local(destination: Destination, settings: Settings) -> Destination:
    if not settings.export_roots:
        raise InvalidInput.on(
            "address", "Local export addresses are off: the server has no LABELYARD_EXPORT_ROOTS."
        )
    if not destination.path or not os.path.isabs(destination.path):
        raise InvalidInput.on("address", "path must be an absolute directory path.")
    # Resolved, so neither ``..`` nor a symbolic link leads out of the roots.
    resolved = Path(destination.path).resolve()
    if not any(resolved.is_relative_to(root.resolve()) for root in settings.export_roots):
        raise InvalidInput.on("address", "path is not under one of the server's export roots.")
    return Destination(kind="local", path=str(resolved))


def _s3(destination: Destination) -> Destination:
    bucket = destination.bucket or ""
    if not 3 <= len(bucket) <= 63 or not all(c.isalnum() or c in "-._" for c in bucket):
        raise InvalidInput.on("address", "bucket must be an S3 bucket name.")
    prefix = destination.prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if ".." in prefix.split("/"):
        raise InvalidInput.on("address", "prefix must not contain '..'.")
    if (destination.access_key_id is None) != (destination.secret_access_key is None):
        raise InvalidInput.on(
            "address", "Give both access_key_id and secret_access_key, or neither."
        )
    if destination.endpoint_url and urlsplit(destination.endpoint_url).scheme not in (
        "http",
        "https",
    ):
        raise InvalidInput.on("address", "endpoint_url must be an http(s) URL.")
    return Destination(
        kind="s3", bucket=bucket, prefix=prefix, endpoint_url=destination.endpoint_url,
        region=destination.region, access_key_id=destination.access_key_id,
        secret_access_key=destination.secret_access_key,
        session_token=destination.session_token,
    )  # fmt: skip


def _http(destination: Destination, settings: Settings) -> Destination:
    url = destination.url or ""
    try:
        check_public_url(url, allow_private=settings.allow_private_urls)
    except UserFacingError as exc:
        raise InvalidInput.on("address", str(exc).replace("fetched", "written to")) from None
    return Destination(kind="http", url=url)


def deliver(destination: Destination, file: Path, filename: str, settings: Settings) -> str:
    """Write ``file`` to the address as ``filename``; where it went. UserFacingError
    (the address and the reason) when the address cannot take it."""
    if destination.kind == "local":
        return _deliver_local(destination, file, filename)
    if destination.kind == "s3":
        return _deliver_s3(destination, file, filename)
    return _deliver_http(destination, file, settings)


def _deliver_local(destination: Destination, file: Path, filename: str) -> str:
    folder = Path(destination.path or "")
    target = folder / filename
    partial = folder / f".{filename}.partial"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with file.open("rb") as source, partial.open("wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        # Readers of the directory see the whole file or none.
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserFacingError(f"Could not write to {folder}: {exc.strerror or exc}") from None
    return str(target)


def _deliver_s3(destination: Destination, file: Path, filename: str) -> str:
    where = f"s3://{destination.bucket}/{destination.prefix}"
    storage = S3Storage(
        destination.bucket or "", endpoint_url=destination.endpoint_url,
        access_key=destination.access_key_id, secret_key=destination.secret_access_key,
        region=destination.region or "us-east-1",
    )  # fmt: skip
    try:
        # Straight to the bucket: an export address is never created here, unlike the
        # server's own media bucket.
        storage.client.upload_file(
            str(file), destination.bucket, destination.prefix + filename,
            ExtraArgs={"ContentType": "application/zip"}, Config=storage.transfer,
        )  # fmt: skip
    except (ClientError, S3UploadFailedError, BotoCoreError, OSError) as exc:
        raise UserFacingError(f"Could not write to {where}: {_s3_reason(exc)}") from None
    return destination.location(filename)


def _s3_reason(exc: BaseException) -> str:
    # upload_file wraps the service's answer in an error whose text names local paths.
    cause = exc.__cause__ if isinstance(exc, S3UploadFailedError) else exc
    if isinstance(cause, ClientError):
        error = cause.response.get("Error", {})
        return str(error.get("Message") or error.get("Code") or "the server refused it")
    if isinstance(cause, BotoCoreError):
        return str(cause)
    return "the upload failed"


def _deliver_http(destination: Destination, file: Path, settings: Settings) -> str:
    shown = destination.location("")
    try:
        request = network.pinned(destination.url or "", allow_private=settings.allow_private_urls)
    except ValueError as exc:  # AddressRefused too
        raise UserFacingError(f"Could not write to {shown}: {exc}") from None
    headers = {"Content-Type": "application/zip", "Content-Length": str(file.stat().st_size)}
    try:
        with (
            httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False) as client,
            file.open("rb") as body,
        ):
            response = client.put(
                request.url, content=_chunks(body), headers=headers | request.headers,
                extensions=request.extensions,
            )  # fmt: skip
    except httpx.HTTPError as exc:
        raise UserFacingError(f"Could not write to {shown}: {exc or type(exc).__name__}") from None
    if not response.is_success:
        raise UserFacingError(f"Could not write to {shown}: the server answered "
                              f"{response.status_code}")  # fmt: skip
    return shown


def _chunks(body: Any) -> Any:
    while chunk := body.read(1 << 20):
        yield chunk
