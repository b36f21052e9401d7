"""``GET /storage/{key}``: serves one media object to whoever holds a signed URL for it.

The signature is the credential, so the route needs no session or token: ``<img>`` and
``<video>`` tags and download links can use the URL as it is.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from labelyard.adapters.storage import (
    InvalidKey,
    MissingObject,
    Storage,
    UrlSigner,
    content_disposition,
)
from labelyard.api.responses import MediaFileResponse

router = APIRouter(prefix="/storage", tags=["storage"])

CHUNK_BYTES = 256 * 1024
FALLBACK_TYPE = "application/octet-stream"
# Media come from users: keep a browser from sniffing them into HTML or running scripts in
# an uploaded SVG or HTML file on labelyard's own origin.
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


@router.get(
    "/{key:path}",
    responses={
        403: {"description": "Bad or expired signature"},
        404: {"description": "No such object"},
    },
)
def fetch_object(
    request: Request,
    key: str,
    expires: str = "",
    signature: str = "",
    filename: str | None = None,
) -> Response:
    """The object's bytes, with a content type guessed from its key and, when the URL names
    a ``filename``, a Content-Disposition that saves it under that name."""
    signer: UrlSigner = request.app.state.signer
    storage: Storage = request.app.state.storage
    if not signer.verify(key, expires, signature, filename):
        raise HTTPException(status_code=403, detail="The link is invalid or has expired.")

    media_type = _guess_type(key, filename)
    headers = dict(SAFE_HEADERS)
    if filename is not None:
        headers["Content-Disposition"] = content_disposition(filename)
    try:
        path = storage.local_path(key)
        if path is not None:
            if not path.is_file():
                raise MissingObject(key)
            return MediaFileResponse(path, media_type=media_type, headers=headers)
        stream = storage.open(key)
    except (MissingObject, InvalidKey) as error:
        raise HTTPException(status_code=404, detail="Not found.") from error
    return StreamingResponse(_chunks(stream), media_type=media_type, headers=headers)


def _guess_type(key: str, filename: str | None) -> str:
    for name in (key, filename):
        if name:
            guessed, _ = mimetypes.guess_type(name, strict=False)
            if guessed:
                return guessed
    return FALLBACK_TYPE


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk
