"""The `streams` command. Each concern registers its commands from its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Real-time e-commerce personalization on Kafka."
)


def _register() -> None:
    # Imported here so that `streams --help` stays cheap and a module can't import the app cyclically.
    from streams.cli import (  # noqa: F401
        attribution,
        bench,
        data,
        deliver,
        demo,
        forecast,
        intent,
        kafka,
        logs,
        model,
        ops,
        sessions,
        token,
        topics,
        worker,
    )


def main() -> None:
    _register()
    app()
