"""Errors named for what went wrong with an input message; each carries a stable code for dead letters."""

from __future__ import annotations


class BadMessage(Exception):
    """An input message that can never be processed. It goes to `dead-letters`, never retried."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class DecodeError(BadMessage):
    """The bytes are not a msgpack (or declared JSON) map."""


class SchemaViolation(BadMessage):
    """The decoded map does not satisfy the event's JSON Schema."""
