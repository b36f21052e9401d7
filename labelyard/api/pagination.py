"""DRF-style pages for ``/api/v1``: ``{"count", "next", "previous", "results"}``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from labelyard.services.errors import InvalidInput, NotFound

DIGITS = re.compile(r"[0-9]{1,9}")
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


@dataclass(frozen=True)
class PageParams:
    page: int
    page_size: int | None  # None: every row (page_size=all)


def page_params(
    page: Annotated[str | None, Query(description="1-based page number")] = None,
    page_size: Annotated[
        str | None, Query(description=f"Rows a page, up to {MAX_PAGE_SIZE}, or `all`")
    ] = None,
) -> PageParams:
    size: int | None = DEFAULT_PAGE_SIZE
    if page_size == "all":
        size = None
    elif page_size not in (None, ""):
        if not DIGITS.fullmatch(page_size) or int(page_size) < 1:
            raise InvalidInput.on("page_size", "A positive integer or `all`.")
        size = min(int(page_size), MAX_PAGE_SIZE)
    if page in (None, "", "last"):
        number = 1 if page != "last" else -1
    elif DIGITS.fullmatch(page) and int(page) >= 1:
        number = int(page)
    else:
        raise NotFound("Invalid page.")
    return PageParams(number, size)


PageDep = Annotated[PageParams, Depends(page_params)]


def paginate(
    session: Session,
    stmt: Select[Any],
    params: PageParams,
    request: Request,
    serialize: Callable[[Any], T],
) -> Page[T]:
    count = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page, size = params.page, params.page_size
    if size is None:
        rows: Sequence[Any] = session.scalars(stmt).unique().all()
        return Page(count=count, next=None, previous=None, results=[serialize(r) for r in rows])
    pages = max(1, -(-count // size))
    if page == -1:
        page = pages
    if page > pages:
        raise NotFound("Invalid page.")
    rows = session.scalars(stmt.limit(size).offset((page - 1) * size)).unique().all()
    url = request.url
    next_url = str(url.include_query_params(page=page + 1)) if page < pages else None
    if page <= 1:
        previous = None
    elif page == 2:
        previous = str(url.remove_query_params("page"))
    else:
        previous = str(url.include_query_params(page=page - 1))
    return Page(count=count, next=next_url, previous=previous, results=[serialize(r) for r in rows])
