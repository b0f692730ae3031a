"""Shopper tokens: proof, minted by the shop's backend, that a browser acts for one shopper until a
time. A token is `EXPIRES.SIGNATURE`: the expiry in epoch seconds and the URL-safe base64 of
HMAC-SHA256 over the expiry and the user id under `STREAMS_SHOPPER_SECRET`. It names no user: it
is only valid for the user it was minted for, so another shopper's token proves nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac

DEFAULT_TTL_SECONDS = 24 * 60 * 60


class InvalidShopperToken(Exception):
    """A token that does not prove the request acts for the user (malformed, forged, expired, or
    minted for someone else: the last two are told apart only by the expiry)."""


def _signature(secret: str, user_id: str, expires: int) -> str:
    # The expiry is digits only and comes first: no user id can make two messages collide.
    digest = hmac.new(secret.encode(), f"{expires}:{user_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(secret: str, user_id: str, expires: int) -> str:
    """A token for `user_id` valid until `expires` (epoch seconds)."""
    return f"{expires}.{_signature(secret, user_id, expires)}"


def verify(secret: str, user_id: str, token: str, now: float) -> None:
    """Return if `token` is valid for `user_id` at `now` (epoch seconds); raise InvalidShopperToken."""
    expires_text, dot, signature = token.partition(".")
    if not dot or not expires_text.isdigit() or len(expires_text) > 12:
        raise InvalidShopperToken("malformed shopper token")
    expires = int(expires_text)
    if not hmac.compare_digest(signature.encode(), _signature(secret, user_id, expires).encode()):
        raise InvalidShopperToken("shopper token is not valid for this user")
    if expires <= now:
        raise InvalidShopperToken("shopper token has expired")
