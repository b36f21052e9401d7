"""Routers that step aside at once for paths outside their prefix."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope

# The CVAT v1 face and the dataset-management face share it.
API_PREFIX = "/api/v1"


class FaceRouter(APIRouter):
    """One face of the API (``/api/v1``, ``/api/platform/v1``), made with its full prefix
    and included without one.

    FastAPI tries a request's path against every route in turn, over a hundred here, at a
    few microseconds each: that was half of what a bare health check cost. A request
    outside this face's prefix skips all of its routes with one comparison."""

    def __init__(self, *, prefix: str, **options: Any) -> None:
        super().__init__(prefix=prefix, **options)
        # Path parameters in a prefix match anything: compare up to the first one.
        self._gate = prefix.split("{", 1)[0]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not get_route_path(scope).startswith(self._gate):
            return Match.NONE, {}
        return super().matches(scope)
