"""Options every Kafka-facing command shares; flags override the environment (see Settings.from_env)."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.config import Settings
from streams.redaction import redact_secrets

Bootstrap = Annotated[
    str | None, typer.Option("--bootstrap", help="Kafka bootstrap servers [env KAFKA_BOOTSTRAP]")
]
Prefix = Annotated[
    str | None, typer.Option("--topic-prefix", help="Prefix of every topic name [env STREAMS_TOPIC_PREFIX]")
]
AppId = Annotated[str | None, typer.Option("--app-id", help="Worker group / app id [env STREAMS_APP_ID]")]


def settings_from(
    bootstrap: str | None = None,
    topic_prefix: str | None = None,
    app_id: str | None = None,
    **changes: object,
) -> Settings:
    settings = Settings.from_env(bootstrap=bootstrap, topic_prefix=topic_prefix, app_id=app_id, **changes)
    # Every command reads its secrets here, so this is where they are kept out of its logs.
    redact_secrets(settings.secrets())
    return settings
