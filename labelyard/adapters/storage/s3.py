"""Media in an S3-compatible bucket (AWS S3, MinIO, Ceph, moto in tests), through boto3."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from labelyard.adapters.storage.base import (
    InvalidKey,
    MissingObject,
    StorageError,
    check_key,
    check_prefix,
    content_disposition,
)

MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
BUCKET_TAKEN_CODES = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
MIB = 1024 * 1024


class S3Storage:
    """Objects in one bucket, created on first use when it does not exist yet."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.bucket = bucket
        self.region = region
        config = Config(
            region_name=region,
            signature_version="s3v4",
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            # Other S3 servers (MinIO, Ceph) are addressed by path, not by bucket subdomain.
            s3={"addressing_style": "path"} if endpoint_url else None,
            # botocore >= 1.36 adds CRC checksums to every upload by default, which several
            # S3-compatible servers reject; send them only where the S3 API demands one.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self.client: Any = session.client("s3", endpoint_url=endpoint_url or None, config=config)
        self.transfer = TransferConfig(
            multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4
        )
        self._bucket_ready = False
        self._lock = threading.Lock()

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store ``data`` under ``key`` in one PutObject."""
        extra = {"ContentType": content_type} if content_type else {}
        with self._errors(key):
            self.client.put_object(Bucket=self._ready(key), Key=key, Body=data, **extra)

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Upload the file at ``path``; large files go up in parts, read as they are sent."""
        extra = {"ContentType": content_type} if content_type else {}
        with self._errors(key):
            self.client.upload_file(
                str(path), self._ready(key), key, ExtraArgs=extra, Config=self.transfer
            )

    def open(self, key: str) -> BinaryIO:
        """The GetObject response body: a stream read from the network as it is consumed."""
        with self._errors(key):
            body: BinaryIO = self.client.get_object(Bucket=self._ready(key), Key=key)["Body"]
        return body

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        with self.open(key) as stream, self._errors(key):
            return stream.read()

    def download(self, key: str, path: Path) -> None:
        """Download into ``path`` (boto3 writes a temporary file and renames it)."""
        path = Path(path)
        with self._errors(key):
            path.parent.mkdir(parents=True, exist_ok=True)
            self.client.download_file(self._ready(key), key, str(path), Config=self.transfer)

    def exists(self, key: str) -> bool:
        """Whether HeadObject finds the key."""
        try:
            self.size(key)
        except MissingObject:
            return False
        return True

    def size(self, key: str) -> int:
        """The object's ContentLength."""
        with self._errors(key):
            head = self.client.head_object(Bucket=self._ready(key), Key=key)
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        """DeleteObject, which S3 answers the same whether or not the key existed."""
        with self._errors(key):
            self.client.delete_object(Bucket=self._ready(key), Key=key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete the listed keys a page (at most 1000 keys) at a time."""
        if not check_prefix(prefix):
            raise InvalidKey("delete_prefix needs a non-empty prefix.")
        removed = 0
        with self._errors():
            bucket = self._ready()
            for page in self._pages(prefix):
                # A listing page holds at most 1000 keys, DeleteObjects' limit; slice anyway
                # in case a server pages more generously.
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                for start in range(0, len(keys), DELETE_BATCH):
                    batch = keys[start : start + DELETE_BATCH]
                    answer = self.client.delete_objects(
                        Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
                    )
                    if answer.get("Errors"):
                        first = answer["Errors"][0]
                        raise StorageError(
                            f"Could not delete {len(answer['Errors'])} objects under "
                            f"{prefix!r}, e.g. {first.get('Key')!r}: {first.get('Message')}"
                        )
                    removed += len(batch)
        return removed

    def list(self, prefix: str = "") -> Iterator[str]:
        """ListObjectsV2 pages, which S3 returns sorted by the keys' UTF-8 bytes."""
        check_prefix(prefix)
        with self._errors():
            for page in self._pages(prefix):
                for item in page.get("Contents", []):
                    with suppress(InvalidKey):  # put there by something other than labelyard
                        yield check_key(item["Key"])

    def signed_url(self, key: str, *, expires_in: int = 3600, filename: str | None = None) -> str:
        """A presigned GetObject URL, with the download name when ``filename`` is given."""
        params = {"Bucket": self._ready(key), "Key": key}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        with self._errors(key):
            url: str = self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_in
            )
        return url

    def local_path(self, key: str) -> Path | None:
        """Always None: objects are not on this machine's disk."""
        check_key(key)
        return None

    def _pages(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages: Iterator[dict[str, Any]] = paginator.paginate(Bucket=self._ready(), Prefix=prefix)
        return pages

    def _ready(self, key: str | None = None) -> str:
        """Check ``key``, make sure the bucket exists, and return the bucket's name."""
        if key is not None:
            check_key(key)
        if not self._bucket_ready:
            with self._lock:
                if not self._bucket_ready:
                    self._create_bucket_if_missing()
                    self._bucket_ready = True
        return self.bucket

    def _create_bucket_if_missing(self) -> None:
        with self._errors():
            try:
                self.client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as error:
                if _code(error) in {"403", "AccessDenied"}:
                    return  # it exists; these credentials may use objects, not list buckets
                if _code(error) not in MISSING_CODES | {"NoSuchBucket"}:
                    raise
            options: dict[str, Any] = {}
            if self.region != "us-east-1":  # us-east-1 refuses its own name as a constraint
                options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self.client.create_bucket(Bucket=self.bucket, **options)
            except ClientError as error:
                if _code(error) not in BUCKET_TAKEN_CODES:
                    raise

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """Turn boto3's exceptions into the storage errors of the protocol."""
        try:
            yield
        except ClientError as error:
            if key is not None and _code(error) in MISSING_CODES:
                raise MissingObject(key) from error
            raise StorageError(f"S3 bucket {self.bucket!r}: {error}") from error
        except (BotoCoreError, Boto3Error) as error:
            raise StorageError(f"S3 bucket {self.bucket!r}: {error}") from error
        except OSError as error:
            raise StorageError(f"S3 bucket {self.bucket!r}: {error}") from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
