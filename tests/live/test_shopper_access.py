"""What a request to a per-shopper public endpoint may see: everything with its own shopper token,
recommendations without cart-revealing provenance without one, nothing with a bad one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.config import Settings
from streams.live.shopper_access import Access, AccessRefused, public_recommendation, shopper_access
from streams.live.shopper_tokens import mint
from streams.web_access import WebAccess

NOW = 1_700_000_000
OPTIONAL = Settings(api_token="api-token", web_access=WebAccess(shopper_secret="s"))
REQUIRED = replace(OPTIONAL, web_access=WebAccess(shopper_secret="s", shopper_tokens="required"))


def access(settings: Settings, bearer: str | None = None, query_token: str | None = None) -> Access:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    query = {"shopper_token": query_token} if query_token is not None else {}
    return shopper_access(settings, "u4", headers, query, NOW)


def test_without_a_token_public_unless_required() -> None:
    assert access(OPTIONAL) is Access.PUBLIC
    with pytest.raises(AccessRefused, match="shopper token is required"):
        access(REQUIRED)


@pytest.mark.parametrize("settings", [OPTIONAL, REQUIRED])
def test_the_shoppers_own_token_in_header_or_query_sees_everything(settings: Settings) -> None:
    token = mint("s", "u4", NOW + 60)
    assert access(settings, bearer=token) is Access.SHOPPER
    assert access(settings, query_token=token) is Access.SHOPPER
    assert access(settings, bearer="api-token") is Access.SHOPPER  # the shop's backend


@pytest.mark.parametrize("settings", [OPTIONAL, REQUIRED])
@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (mint("s", "u5", NOW + 60), "not valid for this user"),
        (mint("s", "u4", NOW - 1), "expired"),
        (mint("other", "u4", NOW + 60), "not valid for this user"),
        ("api-token", "malformed"),  # the API token is for the Authorization header only
    ],
)
def test_a_bad_token_is_refused_in_every_mode(settings: Settings, token: str, reason: str) -> None:
    with pytest.raises(AccessRefused, match=reason):
        access(settings, query_token=token)


def test_a_token_on_a_worker_without_a_secret_is_refused() -> None:
    with pytest.raises(AccessRefused, match="STREAMS_SHOPPER_SECRET"):
        access(Settings(), bearer=mint("s", "u4", NOW + 60))


def test_required_tokens_need_a_secret() -> None:
    with pytest.raises(ValueError, match="STREAMS_SHOPPER_SECRET"):
        WebAccess(shopper_tokens="required")
    with pytest.raises(ValueError, match="STREAMS_SHOPPER_TOKENS"):
        WebAccess(shopper_tokens="sometimes")


def test_a_public_recommendation_does_not_tell_the_cart() -> None:
    rec = {
        "rec_id": "r1",
        "items": [{"item_id": "sku-2", "score": 0.5, "rank": 1}],
        "provenance": {"removed": {"in_cart": ["sku-1"], "purchased": ["sku-9"]}, "fallback": None},
    }
    public = public_recommendation(rec)
    assert "sku-1" not in str(public) and "sku-9" not in str(public)
    assert public["provenance"] == {"fallback": None} and public["items"] == rec["items"]
    assert rec["provenance"]["removed"]  # the original is left as it is
