"""Responses for media, and for the polls of exports."""

from __future__ import annotations

from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from labelyard.adapters.storage import Storage
from labelyard.services import exchange
from labelyard.services.exchange import ExportState


class MediaFileResponse(FileResponse):
    """A file sent in 1 MiB reads: Starlette's 64 KiB reads each cost a thread hand-off,
    which made a 4 MB chunk take three times as long to send."""

    chunk_size = 1024 * 1024


def export_answer(storage: Storage, state: ExportState, action: str | None) -> Response:
    """CVAT's answers to a poll of an export (or a backup): 202 while it is made, 201
    when it is ready, and with ``action=download`` the file (or where S3 serves it)."""
    if state.status != "ready":
        return JSONResponse({"rq_id": state.operation.id}, status_code=202)
    if action != "download":
        return JSONResponse({"rq_id": state.operation.id}, status_code=201)
    key, filename = exchange.download(state.operation)
    local = storage.local_path(key)
    if local is None:
        return RedirectResponse(storage.signed_url(key, filename=filename), status_code=302)
    return MediaFileResponse(local, media_type="application/zip", filename=filename)
