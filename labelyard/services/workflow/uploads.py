"""Seed 004's signed upload and download URLs: files a client puts into a space without
a token, and links to fetch them again.

Every space keeps what is uploaded to it in one *uploads dataset*, made on first use with
one batch, ``uploads``. That dataset is found by a marker no dataset made on the dataset
face can carry: its ``format`` is ``"space-uploads"`` and it has no owner (every dataset a
user makes is theirs). Should there ever be two (an admin changing the format makes the
next upload start another), the oldest receives new uploads and all are searched.

An upload URL names a path, ``uploads/<hex>``, and is signed with the action ``upload``
over ``spaces/<space uuid>/<path>``: it stores one file under that path, once, until it
expires. The path is then the asset's name and its ``extra["uploadPath"]``, which is how a
work item's ``assetUrl`` finds it (``items._asset``) and how download URLs are asked for.
"""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from PIL import Image
from sqlalchemy import Select, and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from labelyard.adapters.media.errors import MediaError
from labelyard.adapters.media.images import probe_image
from labelyard.adapters.media.kinds import classify
from labelyard.adapters.storage import Storage, StorageError, UrlSigner
from labelyard.domain import Asset, AssetKind, Batch, Dataset, DatasetStatus, Scene, Space
from labelyard.services import access
from labelyard.services.access import Actor
from labelyard.services.errors import (
    Conflict,
    FieldErrors,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from labelyard.services.uow import UnitOfWork

UPLOADS_FORMAT = "space-uploads"
UPLOADS_BATCH = "uploads"
UPLOAD_ACTION = "upload"
UPLOAD_ROUTE = "/api/platform/v1/uploads"  # where api.platform_v1.transfers receives them
UPLOAD_EXPIRES = 3600  # seconds an upload URL stays valid
DOWNLOAD_EXPIRES = 3600
MAX_UPLOAD_URLS = 10
MAX_DOWNLOAD_PATHS = 1000
PATH_MAX = 1024
CONTENT_TYPE_MAX = 255
BAD_LINK = "The link is invalid or has expired."
FALLBACK_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class UploadLink:
    """What an upload URL carries: the space, the path, and the signature over both."""

    space_uuid: str
    path: str
    expires: str
    signature: str

    @property
    def signed_key(self) -> str:
        return signed_key(self.space_uuid, self.path)


@dataclass(frozen=True)
class ReceivedFile:
    """An uploaded file, measured: what its asset records."""

    file: Path
    size_bytes: int
    width: int
    height: int
    media_type: str  # the type its bytes are, which storage serves it as
    content_type: str  # the type the client said


def signed_key(space_uuid: str, path: str) -> str:
    return f"spaces/{space_uuid}/{path}"


def upload_urls(
    signer: UrlSigner,
    actor: Actor,
    space: Space,
    count: int,
    base_url: str,
    expires_in: int = UPLOAD_EXPIRES,
) -> list[tuple[str, str]]:
    """``count`` fresh ``(path, url)`` pairs; a PUT of a file to the URL stores it under the
    path. No client file name is known yet, so paths are random."""
    if not access.does_work(actor):
        raise PermissionDenied("Read-only users do not upload files.")
    if not 1 <= count <= MAX_UPLOAD_URLS:
        raise InvalidInput.on("count", f"Between 1 and {MAX_UPLOAD_URLS}.")
    base = f"{base_url.rstrip('/')}{UPLOAD_ROUTE}/{space.uuid}"
    urls = []
    for _ in range(count):
        path = f"uploads/{uuid.uuid4().hex}"
        query = signer.query(signed_key(space.uuid, path), expires_in, action=UPLOAD_ACTION)
        urls.append((path, f"{base}/{quote(path)}?{urlencode(query)}"))
    return urls


def admit(session: Session, signer: UrlSigner, link: UploadLink, content_type: str | None) -> Space:
    """The space an upload goes to, when the link is good, the Content-Type is there and
    nothing was uploaded to the path yet: checked before the body is read, so that a
    refused upload is not received first."""
    if not signer.verify(link.signed_key, link.expires, link.signature, action=UPLOAD_ACTION):
        raise PermissionDenied(BAD_LINK)
    _check_content_type(content_type)
    space = session.scalars(select(Space).where(Space.uuid == link.space_uuid)).first()
    if space is None:
        raise NotFound("No such space.")
    if session.scalars(_uploaded(space, [link.path]).limit(1)).first() is not None:
        raise Conflict("A file was already uploaded to this URL.")
    return space


def measure(file: Path, content_type: str | None) -> ReceivedFile:
    """What the uploaded file is; a 400 unless it is a whole, decodable image. Videos are
    refused for now: a work item covers the first frame of a video it is placed on."""
    kept_type = _check_content_type(content_type)
    size = file.stat().st_size
    if size == 0:
        raise InvalidInput.on("non_field_errors", "The upload is empty: send the file as the body.")
    try:
        image = probe_image(file)
    except MediaError as error:
        if _is_video(file):
            raise InvalidInput.on(
                "non_field_errors", "Only images can be uploaded for now; this is a video."
            ) from None
        raise InvalidInput.on(
            "non_field_errors", f"The upload is not a usable image: {error.reason}."
        ) from None
    return ReceivedFile(
        file=file,
        size_bytes=size,
        width=image.width,
        height=image.height,
        media_type=Image.MIME.get(image.format, FALLBACK_TYPE),
        content_type=kept_type,
    )


def store_upload(
    uow: UnitOfWork, storage: Storage, space: Space, path: str, received: ReceivedFile
) -> Asset:
    """Store a file that :func:`admit` let in and :func:`measure` measured, as an image
    asset of the space's uploads dataset, and commit. The link is not checked again: an
    upload that started before its link expired is not refused for taking long.

    The asset's row is inserted before the file is stored: its name is unique in the
    batch, so of two uploads racing to one URL the second waits for the first and fails
    there, and never writes over the file the first one kept. Nothing stays stored when
    the asset is not committed."""
    dataset, batch = uploads_dataset(uow.session, space)
    key = f"{dataset.storage_prefix}/{path}{_suffix(path, received.media_type)}"
    asset = Asset(
        dataset_id=dataset.id,
        batch_id=batch.id,
        name=path,
        kind=AssetKind.IMAGE.value,
        storage_key=key,
        size_bytes=received.size_bytes,
        width=received.width,
        height=received.height,
        extra={"uploadPath": path, "contentType": received.content_type},
    )
    uow.session.add(asset)
    try:
        uow.flush()
    except IntegrityError:
        uow.session.rollback()
        raise Conflict("A file was already uploaded to this URL.") from None
    try:
        storage.put_file(key, received.file, content_type=received.media_type)
        uow.commit()
    except BaseException:
        with suppress(StorageError):
            storage.delete(key)
        raise
    return asset


def uploads_dataset(session: Session, space: Space) -> tuple[Dataset, Batch]:
    """The space's uploads dataset and its batch, made on first use."""
    dataset = _oldest_uploads_dataset(session, space)
    if dataset is None:
        # Two first uploads at once make one dataset: the second waits on the space's row,
        # then finds the first's.
        session.scalars(select(Space.id).where(Space.id == space.id).with_for_update()).first()
        dataset = _oldest_uploads_dataset(session, space)
    if dataset is None:
        dataset = Dataset(
            space_id=space.id,
            name=f"{space.name} uploads"[:256],
            description="Files uploaded to the space through signed upload URLs.",
            scene=Scene.IMAGE,
            format=UPLOADS_FORMAT,
            status=DatasetStatus.READY,
            owner_id=None,
        )
        session.add(dataset)
        session.flush()
    batch = session.scalars(
        select(Batch).where(Batch.dataset_id == dataset.id, Batch.name == UPLOADS_BATCH)
    ).first()
    if batch is None:
        batch = Batch(dataset_id=dataset.id, name=UPLOADS_BATCH)
        session.add(batch)
        session.flush()
    return dataset, batch


def download_urls(
    session: Session,
    storage: Storage,
    space: Space,
    paths: Sequence[str],
    base_url: str,
    expires_in: int = DOWNLOAD_EXPIRES,
) -> list[tuple[str, str]]:
    """A ``(path, url)`` for each path uploaded to the space, in the order asked; a 400
    naming each ``paths.<index>`` that is not one. A URL the storage answers relative
    to this server (the local backend's) is made absolute with ``base_url``."""
    if not 1 <= len(paths) <= MAX_DOWNLOAD_PATHS:
        raise InvalidInput.on("paths", f"Between 1 and {MAX_DOWNLOAD_PATHS} paths.")
    keys = {
        asset.name: asset.storage_key
        for asset in session.scalars(_uploaded(space, sorted(set(paths))))
    }
    errors = FieldErrors()
    for index, path in enumerate(paths):
        if path not in keys:
            errors.add(f"paths.{index}", f'Nothing was uploaded to "{path}" in this space.')
    errors.raise_if_any()
    urls = []
    for path in paths:
        url = storage.signed_url(keys[path], expires_in=expires_in)
        if url.startswith("/"):
            url = base_url.rstrip("/") + url
        urls.append((path, url))
    return urls


def _oldest_uploads_dataset(session: Session, space: Space) -> Dataset | None:
    return session.scalars(
        select(Dataset).where(_is_uploads_dataset(space)).order_by(Dataset.id).limit(1)
    ).first()


def _is_uploads_dataset(space: Space) -> ColumnElement[bool]:
    return and_(
        Dataset.space_id == space.id,
        Dataset.format == UPLOADS_FORMAT,
        Dataset.owner_id.is_(None),
    )


def _uploaded(space: Space, paths: Sequence[str]) -> Select[Asset]:
    """The assets uploaded to these paths of the space. The name (the path, unique in its
    batch and indexed with it) finds them; ``uploadPath`` confirms each was uploaded."""
    return (
        select(Asset)
        .join(Dataset, Dataset.id == Asset.dataset_id)
        .join(Batch, Batch.id == Asset.batch_id)
        .where(
            _is_uploads_dataset(space),
            Batch.name == UPLOADS_BATCH,
            Asset.name.in_(paths),
            Asset.extra["uploadPath"].as_string().in_(paths),
        )
    )


def _suffix(path: str, media_type: str) -> str:
    """An extension for the stored key when ``path`` does not name the bytes' type (an
    upload URL's path has none): storage that serves files itself (the local backend)
    tells their type by the key's extension; S3 keeps the type given when storing."""
    guessed, _ = mimetypes.guess_type(path, strict=False)
    if guessed == media_type or media_type == FALLBACK_TYPE:
        return ""
    return mimetypes.guess_extension(media_type, strict=False) or ""


def _check_content_type(content_type: str | None) -> str:
    """Seed 004: "Content-Type header is mandatory when uploading to the signed urls"."""
    value = (content_type or "").strip()
    if not value:
        raise InvalidInput.on(
            "Content-Type", "The Content-Type header is mandatory when uploading a file."
        )
    if len(value) > CONTENT_TYPE_MAX:
        raise InvalidInput.on("Content-Type", f"At most {CONTENT_TYPE_MAX} characters.")
    return value


def _is_video(file: Path) -> bool:
    try:
        return classify(file) == "video"
    except MediaError:
        return False
