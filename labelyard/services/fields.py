"""The base of every write body and the field types several resources share."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from sqlalchemy import func, select

from labelyard.domain import User
from labelyard.services.errors import InvalidInput
from labelyard.services.uow import UnitOfWork

# Ids and counts are 32-bit integer columns on PostgreSQL; larger numbers are refused
# as bad input instead of failing in the database.
MAX_INT = 2**31 - 1
Id = Annotated[int, Field(ge=1, le=MAX_INT)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
_DIGITS = re.compile(r"[0-9]{1,10}")


# What a JSON column can hold: its writer (orjson) takes 64-bit integers at most, and
# nothing nested deeper than it recurses.
JSON_INT_RANGE = (-(2**63), 2**64 - 1)
JSON_MAX_DEPTH = 64


def _storable(value: Any, depth: int = 0) -> Any:
    if depth > JSON_MAX_DEPTH:
        raise ValueError(f"Nested deeper than {JSON_MAX_DEPTH} levels.")
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not JSON_INT_RANGE[0] <= value <= JSON_INT_RANGE[1]:
        raise ValueError("Integers beyond 64 bits cannot be stored; send them as strings.")
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        _storable(item, depth + 1)
    return value


# Free-form JSON a client stores (a log event's payload).
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable)]


CONTROL_CHARACTERS = "Control characters (a NUL byte, a newline...) cannot be in it."


def _no_control_characters(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(CONTROL_CHARACTERS)
    return value


def one_line(value: str, path: str) -> str:
    """``value``, or InvalidInput on ``path`` when it holds control characters (what a
    name or a path read from a form, not a model, is checked with)."""
    try:
        return _no_control_characters(value)
    except ValueError:
        raise InvalidInput.on(path, CONTROL_CHARACTERS) from None


# A path or URL a client names: one line of text, as long as a path may be.
PathText = Annotated[str, Field(max_length=4096), AfterValidator(_no_control_characters)]


def is_id(value: int) -> bool:
    return 0 < value <= MAX_INT


def parse_id(text: str) -> int | None:
    """An id written in ASCII digits, or None."""
    return int(text) if _DIGITS.fullmatch(text) and is_id(int(text)) else None


class ReadOnlyFields(Exception):
    """Raised while parsing a body that sets fields the server owns."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class WriteModel(BaseModel):
    """Unknown fields are refused; ``read_only`` names fields that are answered but
    never written, so a client that sends them learns so instead of being ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    read_only: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            present = sorted(name for name in cls.read_only if name in data)
            if present:
                raise ReadOnlyFields(present)
            _refuse_nul_bytes(data, "")
        return data


def _refuse_nul_bytes(value: Any, path: str) -> None:
    """No text the server keeps may hold a NUL byte (PostgreSQL's text cannot)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput.on(path or "non_field_errors", "A NUL byte cannot be in text.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul_bytes(key, path)
            _refuse_nul_bytes(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul_bytes(item, f"{path}.{index}" if path else str(index))


def _user_ref(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("Expected a user id or a username.")
    if isinstance(value, dict) and "id" in value:
        return value["id"]  # a nested user object, as answered, sent back
    return value


# A user named by id, by username, or by the nested object the API answers.
UserRef = Annotated[
    Id | Annotated[str, Field(min_length=1, max_length=150)], BeforeValidator(_user_ref)
]


def resolve_user(uow: UnitOfWork, ref: int | str | None, path: str) -> User | None:
    if ref is None:
        return None
    user: User | None
    if isinstance(ref, int):
        user = uow.session.get(User, ref)
    else:
        user = uow.session.scalar(select(User).where(User.username == ref))
        if user is None:
            user = uow.session.scalar(select(User).where(func.lower(User.username) == ref.lower()))
        if user is None and (user_id := parse_id(ref)) is not None:
            user = uow.session.get(User, user_id)
    if user is None:
        raise InvalidInput.on(path, f'Invalid pk "{ref}" - object does not exist.')
    return user


def pick_user_ref(data: BaseModel, name: str) -> tuple[bool, int | str | None, str]:
    """``assignee`` and ``assignee_id`` both set the same user (seed 001 shows both);
    returns whether either was given, the reference and the field it came from."""
    id_name = f"{name}_id"
    fields = data.model_fields_set
    if id_name in fields:
        return True, getattr(data, id_name), id_name
    if name in fields:
        return True, getattr(data, name), name
    return False, None, name
