"""Multipart uploads of media: reading CVAT-style forms and staging files in storage."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request
from starlette.datastructures import UploadFile

from labelyard.adapters.storage import Storage, check_key
from labelyard.services.errors import InvalidInput

MAX_UPLOAD_FILES = 100_000
IN_MEMORY_BYTES = 8 * 1024 * 1024
ARRAY_FIELDS = {"client_files", "server_files", "remote_files", "dataset_ids", "files"}


async def read_upload_form(request: Request) -> tuple[dict[str, Any], list[UploadFile]]:
    """CVAT's form (``client_files[0]``, ``image_quality``, ...) or a JSON body."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise InvalidInput.on("non_field_errors", f"JSON parse error - {exc}") from None
        if not isinstance(body, dict):
            raise InvalidInput.on("non_field_errors", "Expected a JSON object.")
        return body, []
    form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_UPLOAD_FILES)
    fields: dict[str, Any] = {}
    uploads: list[UploadFile] = []
    for key, value in form.multi_items():
        name = key.split("[", 1)[0]
        if isinstance(value, UploadFile):
            uploads.append(value)
        elif name in ARRAY_FIELDS:
            fields.setdefault(name, []).append(value)
        else:
            fields[name] = value
    return fields, uploads


def stage_uploads(storage: Storage, uploads: list[UploadFile]) -> list[dict[str, Any]]:
    """Put uploaded files into storage for whichever worker runs the operation."""
    prefix = f"staging/{uuid.uuid4().hex}"
    staged = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, upload in enumerate(uploads):
            name = (upload.filename or f"file_{index}").replace("\\", "/").rsplit("/", 1)[-1]
            if not name or name in (".", ".."):
                name = f"file_{index}"
            key = f"{prefix}/{index:06d}/{name}"
            try:
                check_key(key)
            except ValueError:
                key = f"{prefix}/{index:06d}/file_{index}"
            if upload.size is not None and upload.size <= IN_MEMORY_BYTES:
                # Starlette keeps small files in memory: store them without a scratch copy.
                storage.put_bytes(key, upload.file.read())
            else:
                local = f"{scratch}/{index:06d}"
                with open(local, "wb") as out:
                    shutil.copyfileobj(upload.file, out, 1 << 20)
                storage.put_file(key, Path(local))
            staged.append({"kind": "staged", "key": key, "name": name})
    return staged
