"""Refuse request bodies over a size limit with a JSON 413, chunked bodies included."""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_DIGITS = re.compile(rb"[0-9]{1,20}")


class BodyLimit:
    """ASGI middleware. ``limit`` holds for every request except those whose path matches
    one of ``path_limits`` (pattern, limit): media uploads and annotation saves are larger.
    A declared Content-Length over the limit is refused before a byte is read; a chunked
    body is counted as it streams and refused once it passes the limit."""

    def __init__(
        self, app: ASGIApp, limit: int, *, path_limits: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.limit = limit
        self.path_limits = [(re.compile(pattern), value) for pattern, value in path_limits]

    def limit_for(self, path: str) -> int:
        return next((value for pattern, value in self.path_limits if pattern.search(path)),
                    self.limit)  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not _DIGITS.fullmatch(length.strip()):
                await refuse(send, 400, "Content-Length is not a number.")
            elif int(length) > limit:
                await refuse(send, 413, _too_large(limit))
            else:
                await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, limit)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        exceeded = started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    # The app sees the client go away; the 413 below answers instead.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await refuse(send, 413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"The request body is larger than {limit} bytes."


async def refuse(
    send: Send, status: int, detail: str, fields: dict[str, list[str]] | None = None
) -> None:
    """Answer with a JSON error (the app never sees the request)."""
    body = orjson.dumps({"detail": detail, **(fields or {})})
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
