"""Errors named for what went wrong with an input message; each carries a stable code for dead letters."""

from __future__ import annotations

# The dead-letter schema's limits: a reason quoting hostile input must still fit in a dead letter.
MAX_MESSAGE_CHARS = 2048
MAX_FIELD_CHARS = 256


class BadMessage(Exception):
    """An input message that can never be processed. It goes to `dead-letters`, never retried."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        message = _printable(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = None if field is None else _printable(field, MAX_FIELD_CHARS)

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


def _printable(text: str, limit: int) -> str:
    """Bounded and encodable: a reason may quote input (a key, a field name) with lone surrogates."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


class DecodeError(BadMessage):
    """The bytes are not a msgpack (or declared JSON) map."""


class SchemaViolation(BadMessage):
    """The decoded map does not satisfy the event's JSON Schema."""


class TimestampTooFarAhead(BadMessage):
    """The event claims a time well after its Kafka record was produced (a broken clock)."""
