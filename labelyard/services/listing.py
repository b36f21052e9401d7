"""Filtering and ordering shared by the list use cases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, func

from labelyard.services.errors import InvalidInput


def icontains(column: Any, value: str) -> ColumnElement[bool]:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")


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
