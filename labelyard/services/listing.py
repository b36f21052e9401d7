"""Filtering and ordering shared by the list use cases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Select, func, or_
from sqlalchemy.orm import aliased

from labelyard.domain import User
from labelyard.services.errors import InvalidInput


def icontains(column: Any, value: str) -> ColumnElement[bool]:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")


class PeopleFilter(Protocol):
    name: str | None
    owner: str | None
    assignee: str | None
    search: str | None


def filter_by_people(
    stmt: Select[Any], entity: Any, filters: PeopleFilter, *also_searched: Any
) -> tuple[Select[Any], dict[str, Any]]:
    """Join the owner and assignee of ``entity`` (a task or a project) and apply the
    name / owner / assignee / search filters both take. Returns the statement and the
    ordering columns it adds: name, owner, assignee."""
    owner, assignee = aliased(User), aliased(User)
    stmt = stmt.outerjoin(owner, entity.owner_id == owner.id).outerjoin(
        assignee, entity.assignee_id == assignee.id
    )
    if filters.name:
        stmt = stmt.where(icontains(entity.name, filters.name))
    if filters.owner:
        stmt = stmt.where(icontains(owner.username, filters.owner))
    if filters.assignee:
        stmt = stmt.where(icontains(assignee.username, filters.assignee))
    if filters.search:
        searched = (entity.name, owner.username, assignee.username, *also_searched)
        stmt = stmt.where(or_(*(icontains(column, filters.search) for column in searched)))
    columns = {"name": entity.name, "owner": owner.username, "assignee": assignee.username}
    return stmt, columns


def order_by(
    stmt: Select[Any],
    ordering: str | None,
    columns: Mapping[str, Any],
    default: str,
) -> Select[Any]:
    """Apply DRF-style ``ordering=name,-id`` over the named columns; ids break ties."""
    terms = [t.strip() for t in (ordering or default).split(",") if t.strip()]
    clauses = []
    for term in terms:
        name = term.lstrip("-")
        column = columns.get(name)
        if column is None:
            allowed = ", ".join(sorted(columns))
            raise InvalidInput.on("ordering", f'Unknown ordering field "{name}"; use {allowed}.')
        clauses.append(column.desc() if term.startswith("-") else column.asc())
    if "id" not in {t.lstrip("-") for t in terms}:
        id_column = columns["id"]
        clauses.append(id_column.desc() if default.startswith("-") else id_column.asc())
    return stmt.order_by(*clauses)
