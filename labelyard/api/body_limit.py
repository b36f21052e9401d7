"""Refuse request bodies over a size limit with a JSON 413, chunked bodies included."""

from __future__ import annotations

import re

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DIGITS = re.compile(rb"[0-9]{1,20}")


class BodyLimit:
    """ASGI middleware. A declared Content-Length over the limit is refused before a
    byte is read; a body without one is read up to the limit, then replayed to the app."""

    def __init__(
        self, app: ASGIApp, limit: int, *, upload_limit: int, upload_paths: str = r"$^"
    ) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit
        self.upload_paths = re.compile(upload_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.upload_paths.search(scope["path"]):
            # Uploads stream to disk as they are parsed; only their size is capped.
            await BodyLimit(self.app, self.upload_limit, upload_limit=self.upload_limit)(
                scope, receive, send
            )
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not _DIGITS.fullmatch(length.strip()):
                await _refuse(send, 400, "Content-Length is not a number.")
            elif int(length) > self.limit:
                await _refuse(send, 413, self._too_large())
            else:
                await self.app(scope, receive, send)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b""):
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _refuse(send, 413, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"The request body is larger than {self.limit} bytes."


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
