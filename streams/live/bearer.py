"""Bearer tokens of HTTP requests: what `Authorization: Bearer ...` carries, and the API token check
every view behind `STREAMS_API_TOKEN` shares."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

API_TOKEN_REQUIRED = "a valid bearer token is required (STREAMS_API_TOKEN)"


def bearer(headers: Mapping[str, str]) -> str:
    """The token of the `Authorization: Bearer` header ('' without one)."""
    return headers.get("Authorization", "").removeprefix("Bearer ").strip()


def carries_api_token(headers: Mapping[str, str], token: str | None) -> bool:
    """The request carries the API token; with no token configured, no request does."""
    return bool(token) and hmac.compare_digest(bearer(headers).encode(), str(token).encode())
