"""What a request to a per-shopper public endpoint (the latest recommendation, the live feed) may see.

With a valid shopper token for the user (or the API token) it sees everything the endpoint serves.
Without one it sees recommendations only, with nothing that tells the shopper's cart or purchases
(`provenance.removed` names items removed because they are in the cart or were bought); with
`STREAMS_SHOPPER_TOKENS=required` it is refused. A token that is present but not valid is always
refused: a wrong token is a mistake to report, not a reason to fall back.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from streams.config import Settings
from streams.live.bearer import bearer, carries_api_token
from streams.live.shopper_tokens import InvalidShopperToken, verify

TOKEN_PARAMETER = "shopper_token"  # EventSource cannot send headers: the feed takes it in the query


class Access(Enum):
    PUBLIC = "public"  # recommendations only, without cart-revealing provenance
    SHOPPER = "shopper"  # everything the endpoint serves for this user


class AccessRefused(Exception):
    """The request must be answered 401 with this message."""


def shopper_access(
    settings: Settings, user_id: str, headers: Mapping[str, str], query: Mapping[str, str], now: float
) -> Access:
    """`now`: the wall clock in epoch seconds, against which token expiries are judged."""
    access = settings.web_access
    given = bearer(headers)
    token = query.get(TOKEN_PARAMETER, "").strip() or given
    if not token:
        if access.shopper_tokens == "required":
            raise AccessRefused(
                f"a shopper token is required (Authorization: Bearer TOKEN or ?{TOKEN_PARAMETER}=TOKEN)"
            )
        return Access.PUBLIC
    if token == given and carries_api_token(headers, settings.api_token):
        return Access.SHOPPER
    if not access.shopper_secret:
        raise AccessRefused("shopper tokens are not enabled on this worker (STREAMS_SHOPPER_SECRET)")
    try:
        verify(access.shopper_secret, user_id, token, now)
    except InvalidShopperToken as exc:
        raise AccessRefused(str(exc)) from None
    return Access.SHOPPER


def public_recommendation(recommendation: dict[str, Any]) -> dict[str, Any]:
    """A recommendation as a request without a shopper token may see it."""
    provenance = recommendation.get("provenance")
    if not isinstance(provenance, dict) or "removed" not in provenance:
        return recommendation
    return {**recommendation, "provenance": {k: v for k, v in provenance.items() if k != "removed"}}
