"""Keyset pages (the work face's ``limit`` / ``cursor`` / ``page=NEXT|PREV``).

A page is the rows after (NEXT) or before (PREV) a boundary key, in key order, so rows
inserted meanwhile never shift a page the way an offset would. Cursors are opaque: the
boundary key and the list they belong to, signed, so a cursor that was changed, or that
comes from another list, is refused instead of silently paging somewhere else."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from labelyard.services.errors import InvalidInput

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_MAX = 512


class Direction(StrEnum):
    NEXT = "NEXT"
    PREV = "PREV"


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = hashlib.sha256(b"labelyard-cursor-v1" + secret).digest()

    def encode(self, scope: str, key: int) -> str:
        body = base64.urlsafe_b64encode(json.dumps([scope, key]).encode()).rstrip(b"=")
        return f"{body.decode()}.{self._mac(body)}"

    def decode(self, scope: str, cursor: str) -> int:
        """The boundary key of a cursor made by :meth:`encode` for this list."""
        body, _, mac = cursor.partition(".")
        bad = InvalidInput.on("cursor", "Invalid cursor: pass cursor_next or cursor_prev as given.")
        if len(cursor) > CURSOR_MAX or not body or not mac.isascii():
            raise bad
        if not hmac.compare_digest(self._mac(body.encode("ascii", "replace")), mac):
            raise bad
        try:
            decoded = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error):
            raise bad from None
        if (
            not isinstance(decoded, list)
            or len(decoded) != 2
            or decoded[0] != scope
            or not isinstance(decoded[1], int)
        ):
            raise bad
        return decoded[1]

    def _mac(self, body: bytes) -> str:
        return hmac.new(self._secret, body, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class KeysetPage:
    rows: list[Any]
    limit: int
    direction: Direction
    cursor_next: str | None
    cursor_prev: str | None


def page(
    session: Session,
    stmt: Select[Any],
    key: InstrumentedAttribute[int],
    *,
    codec: CursorCodec,
    scope: str,
    limit: int,
    cursor: str | None,
    direction: Direction,
) -> KeysetPage:
    """One page of ``stmt``'s rows ordered by ``key`` (a unique, increasing column)."""
    boundary = codec.decode(scope, cursor) if cursor else None
    forward = direction == Direction.NEXT
    query = stmt
    if boundary is not None:
        query = query.where(key > boundary if forward else key < boundary)
    query = query.order_by(key.asc() if forward else key.desc()).limit(limit + 1)
    rows = list(session.scalars(query).unique())
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()
    if not rows:
        return KeysetPage([], limit, direction, None, None)
    first, last = getattr(rows[0], key.key), getattr(rows[-1], key.key)
    # Beyond the page on the side it was read towards: known from the extra row; on the
    # side it came from: there is, whenever a boundary was given.
    after = more if forward else boundary is not None
    before = (boundary is not None) if forward else more
    return KeysetPage(
        rows,
        limit,
        direction,
        codec.encode(scope, last) if after else None,
        codec.encode(scope, first) if before else None,
    )
