"""A shopper token proves one user until its expiry, and nothing else."""

from __future__ import annotations

import pytest

from streams.live.shopper_tokens import InvalidShopperToken, mint, verify

SECRET = "shop-secret"
NOW = 1_700_000_000


def test_a_token_is_valid_for_its_user_until_it_expires() -> None:
    token = mint(SECRET, "u4", NOW + 60)
    verify(SECRET, "u4", token, NOW)
    verify(SECRET, "u4", token, NOW + 59.9)
    with pytest.raises(InvalidShopperToken, match="expired"):
        verify(SECRET, "u4", token, NOW + 60)


def test_another_shoppers_token_is_refused() -> None:
    with pytest.raises(InvalidShopperToken, match="not valid for this user"):
        verify(SECRET, "u4", mint(SECRET, "u5", NOW + 60), NOW)
    # The expiry leads the signed text: no user id can shift text across it.
    with pytest.raises(InvalidShopperToken):
        verify(SECRET, "4:u", mint(SECRET, "u", NOW + 60), NOW)


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # a changed signature
        lambda token: f"{NOW + 10**6}." + token.split(".")[1],  # a later expiry, the old signature
        lambda token: mint("guessed-secret", "u4", NOW + 60),
        lambda token: "",
        lambda token: "garbage",
        lambda token: "-5.abc",
        lambda token: "9" * 40 + ".abc",
    ],
)
def test_a_forged_token_is_refused(forge) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidShopperToken):
        verify(SECRET, "u4", forge(mint(SECRET, "u4", NOW + 60)), NOW)
