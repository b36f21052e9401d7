"""Media storage: the :class:`Storage` protocol, a local and an S3 backend, signed URLs."""

from __future__ import annotations

from labelyard.adapters.storage.base import (
    InvalidKey,
    MissingObject,
    Storage,
    StorageError,
    check_key,
    check_prefix,
    content_disposition,
)
from labelyard.adapters.storage.local import LocalStorage
from labelyard.adapters.storage.s3 import S3Storage
from labelyard.adapters.storage.signing import UrlSigner, load_or_create_secret
from labelyard.config import Settings

__all__ = [
    "InvalidKey",
    "LocalStorage",
    "MissingObject",
    "S3Storage",
    "Storage",
    "StorageError",
    "UrlSigner",
    "check_key",
    "check_prefix",
    "content_disposition",
    "load_or_create_secret",
    "make_storage",
]


def make_storage(settings: Settings, secret: bytes) -> Storage:
    """The backend ``settings.storage`` names: the media dir, or the configured S3 bucket.

    ``secret`` signs the local backend's URLs; S3 presigns its own with the access key.
    """
    if settings.storage == "s3":
        return S3Storage(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            region=settings.s3_region,
        )
    return LocalStorage(settings.media_dir, UrlSigner(secret))
