"""`streams token USER_ID` prints a token the worker accepts for that shopper only."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from streams.cli import _register, app
from streams.live.shopper_tokens import InvalidShopperToken, verify


def test_token_is_valid_for_the_user_until_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_SHOPPER_SECRET", "shop-secret")
    _register()
    result = CliRunner().invoke(app, ["token", "u4", "--ttl", "120"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    now = time.time()
    verify("shop-secret", "u4", token, now)
    with pytest.raises(InvalidShopperToken):
        verify("shop-secret", "u5", token, now)
    with pytest.raises(InvalidShopperToken, match="expired"):
        verify("shop-secret", "u4", token, now + 121)


def test_token_without_a_secret_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMS_SHOPPER_SECRET", raising=False)
    _register()
    result = CliRunner().invoke(app, ["token", "u4"])
    assert result.exit_code == 2
    assert "STREAMS_SHOPPER_SECRET" in result.output
