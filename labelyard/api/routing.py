"""Routers that step aside at once for paths outside their prefix."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

# The CVAT v1 face and the dataset-management face share it.
API_PREFIX = "/api/v1"
_PARAMETER = re.compile(r"\{[^}]*\}")


def _gate(path: str) -> re.Pattern[str]:
    """What every path under ``path`` starts with (a path parameter matches one segment)."""
    literals = _PARAMETER.split(path)
    return re.compile("[^/]+".join(re.escape(literal) for literal in literals))


class GatedRouter(APIRouter):
    """An APIRouter whose routes are skipped with one comparison for a request outside
    its prefix, once it knows where it is mounted: a FaceRouter, or a GatedRouter that
    a FaceRouter includes (directly or through others) tells it.

    FastAPI tries a request's path against every route in turn, over a hundred here, at a
    few microseconds each: before these gates, that was half of what a bare health check
    cost, and a work item's signal was tried against fifty routes of its own face."""

    def __init__(self, *, prefix: str = "", **options: Any) -> None:
        super().__init__(prefix=prefix, **options)
        self._path: str | None = None  # the full path of the prefix, once mounted
        self._pattern: re.Pattern[str] | None = None
        self._parts: list[tuple[GatedRouter, str]] = []

    def _mount(self, base: str) -> None:
        self._path = base + self.prefix
        self._pattern = _gate(self._path)
        for part, prefix in self._parts:
            part._mount(self._path + prefix)

    def include_router(self, router: APIRouter, *, prefix: str = "", **options: Any) -> None:
        if isinstance(router, GatedRouter):
            self._parts.append((router, prefix))
            if self._path is not None:
                router._mount(self._path + prefix)
        super().include_router(router, prefix=prefix, **options)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if self._pattern is not None and not self._pattern.match(get_route_path(scope)):
            return Match.NONE, {}
        return super().matches(scope)


class FaceRouter(GatedRouter):
    """One face of the API (``/api/v1``, ``/api/platform/v1``), made with its full prefix
    and included in the app without one."""

    def __init__(self, *, prefix: str, **options: Any) -> None:
        super().__init__(prefix=prefix, **options)
        self._mount("")
