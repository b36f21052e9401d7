"""What a use case can refuse, independent of how it is served."""

from __future__ import annotations


class LabelyardError(Exception):
    """Base of every refusal a service raises; ``detail`` is for the user."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        # More fields for the answer, e.g. the current version with a 409.
        self.extra: dict[str, object] = {}


class NotAuthenticated(LabelyardError):
    def __init__(self, detail: str = "Authentication credentials were not provided.") -> None:
        super().__init__(detail)


class PermissionDenied(LabelyardError):
    def __init__(self, detail: str = "You do not have permission to perform this action.") -> None:
        super().__init__(detail)


class NotFound(LabelyardError):
    def __init__(self, detail: str = "Not found.") -> None:
        super().__init__(detail)


class Conflict(LabelyardError):
    """The request is valid but the object's current state does not allow it."""


class InvalidInput(LabelyardError):
    """Bad values; ``fields`` maps a dotted field path to its messages."""

    def __init__(self, fields: dict[str, list[str]], detail: str | None = None) -> None:
        self.fields = fields
        if detail is None:
            path, messages = next(iter(fields.items()))
            detail = messages[0] if path in ("", "non_field_errors") else f"{path}: {messages[0]}"
        super().__init__(detail)

    @classmethod
    def on(cls, path: str, message: str) -> InvalidInput:
        return cls({path: [message]})


class FieldErrors:
    """Collects per-field messages so that one response can name them all."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            raise InvalidInput(self.fields)
