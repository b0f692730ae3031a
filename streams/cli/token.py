"""`streams token USER_ID`: a shopper token, as the shop's backend mints one (docs/http-api.md)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from streams.cli import app
from streams.cli.options import settings_from
from streams.live.shopper_tokens import DEFAULT_TTL_SECONDS, mint


@app.command()
def token(
    user_id: str,
    ttl: Annotated[int, typer.Option(min=1, help="Seconds the token is valid")] = DEFAULT_TTL_SECONDS,
) -> None:
    """Print a shopper token for USER_ID, signed with STREAMS_SHOPPER_SECRET: it lets a browser follow
    that shopper's feed, triggers and segments included."""
    secret = settings_from().web_access.shopper_secret
    if not secret:
        typer.echo("STREAMS_SHOPPER_SECRET is not set", err=True)
        raise typer.Exit(2)
    typer.echo(mint(secret, user_id, int(time.time()) + ttl))
