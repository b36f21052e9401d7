"""Refuse NUL bytes in a request's path and query string with a JSON 400 naming the
parameter: no text the server keeps or looks up may hold one (PostgreSQL's text cannot)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from labelyard.api.body_limit import refuse

MESSAGE = "A NUL byte cannot be in it."


class RefuseNulBytes:
    """ASGI middleware; bodies are checked where they are read (services/fields.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if "\x00" in scope["path"]:
                await refuse(send, 400, "A NUL byte cannot be in a path.")
                return
            query = scope.get("query_string", b"").decode("latin-1")
            named = sorted(
                {name for name, value in parse_qsl(query, keep_blank_values=True)
                 if "\x00" in name + value}
            )  # fmt: skip
            if named:
                fields = {name.replace("\x00", "\\x00"): [MESSAGE] for name in named}
                await refuse(send, 400, f"{next(iter(fields))}: {MESSAGE}", fields)
                return
        await self.app(scope, receive, send)
