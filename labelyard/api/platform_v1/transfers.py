"""``/spaces/{spaceID}/upload-urls`` and ``/spaces/{spaceID}/download-urls`` (seed 004), and
``PUT /uploads/{spaceID}/{path}``, which the upload URLs point at."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from labelyard.adapters.storage import Storage, UrlSigner
from labelyard.api.deps import ActorDep, UowDep
from labelyard.config import Settings
from labelyard.domain import Asset, Space
from labelyard.services.ingest import work_dir
from labelyard.services.uow import UnitOfWork
from labelyard.services.workflow import uploads
from labelyard.services.workflow.items import CamelWrite
from labelyard.services.workflow.projects import get_space

router = APIRouter(tags=["work: transfers"])

WRITE_BYTES = 1024 * 1024  # received bytes gathered before each write to the scratch file


class DownloadUrlsBody(CamelWrite):
    paths: list[Annotated[str, Field(min_length=1, max_length=uploads.PATH_MAX)]] = Field(
        min_length=1, max_length=uploads.MAX_DOWNLOAD_PATHS
    )


def _items(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"items": [{"path": path, "signedUrl": url} for path, url in pairs]}


@router.post("/spaces/{space_id}/upload-urls")
def create_upload_urls(
    request: Request,
    space_id: str,
    actor: ActorDep,
    uow: UowDep,
    count: Annotated[int, Query(ge=1, le=uploads.MAX_UPLOAD_URLS)] = 1,
) -> dict[str, Any]:
    """``count`` signed URLs, each valid for an hour, to PUT one file to (with its
    Content-Type); the file becomes an asset of the space under the URL's ``path``."""
    space = get_space(uow.session, actor, space_id)
    signer: UrlSigner = request.app.state.signer
    return _items(uploads.upload_urls(signer, actor, space, count, str(request.base_url)))


@router.post("/spaces/{space_id}/download-urls")
def create_download_urls(
    request: Request, space_id: str, body: DownloadUrlsBody, actor: ActorDep, uow: UowDep
) -> dict[str, Any]:
    """A signed URL, valid for an hour, for each path uploaded to the space."""
    space = get_space(uow.session, actor, space_id)
    storage: Storage = request.app.state.storage
    pairs = uploads.download_urls(uow.session, storage, space, body.paths, str(request.base_url))
    return _items(pairs)


@router.put(
    "/uploads/{space_uuid}/{path:path}",
    status_code=201,
    responses={
        403: {"description": "Bad or expired signature"},
        409: {"description": "A file was already uploaded to this URL"},
        413: {"description": "The file is larger than the upload limit"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The file's bytes, sent with a Content-Type header",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def receive_upload(
    request: Request, space_uuid: str, path: str, expires: str = "", signature: str = ""
) -> dict[str, Any]:
    """The file in the body becomes an image asset of the space. The signature is the
    credential: no token or session is needed, and each URL stores one file."""
    settings: Settings = request.app.state.settings
    factory: sessionmaker[Session] = request.app.state.session_factory
    link = uploads.UploadLink(space_uuid, path, expires, signature)
    content_type = request.headers.get("content-type")
    space = await run_in_threadpool(_admit, factory, request.app.state.signer, link, content_type)
    async with _received_file(request, settings) as file:
        received = await run_in_threadpool(uploads.measure, file, content_type)
        asset = await run_in_threadpool(
            _store, factory, request.app.state.storage, space, link.path, received
        )
    return {
        "assetId": asset.id,
        "path": link.path,
        "width": asset.width,
        "height": asset.height,
        "sizeBytes": asset.size_bytes,
        "contentType": received.content_type,
    }


def _admit(
    factory: sessionmaker[Session], signer: UrlSigner, link: uploads.UploadLink, kind: str | None
) -> Space:
    with UnitOfWork(factory, writes=False) as uow:
        return uploads.admit(uow.session, signer, link, kind)


def _store(
    factory: sessionmaker[Session],
    storage: Storage,
    space: Space,
    path: str,
    received: uploads.ReceivedFile,
) -> Asset:
    # Its own unit of work, opened once the body is in: on SQLite a writer's transaction
    # holds the write lock, which no upload should keep while its bytes trickle in.
    with UnitOfWork(factory) as uow:
        return uploads.store_upload(uow, storage, space, path, received)


@asynccontextmanager
async def _received_file(request: Request, settings: Settings) -> AsyncIterator[Path]:
    """The request body in a scratch file (removed afterwards), refused with a 413 once
    it passes the upload limit."""
    limit = settings.max_upload_bytes
    too_large = f"The file is larger than {limit} bytes."
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=too_large)
    with work_dir(settings) as scratch:
        file = scratch / "upload"
        with open(file, "wb") as out:
            received, pending = 0, bytearray()
            try:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > limit:
                        raise HTTPException(status_code=413, detail=too_large)
                    pending += chunk
                    if len(pending) >= WRITE_BYTES:
                        await run_in_threadpool(out.write, bytes(pending))
                        pending.clear()
            except ClientDisconnect:
                raise HTTPException(status_code=400, detail="The upload was interrupted.") from None
            await run_in_threadpool(out.write, bytes(pending))
        yield file
