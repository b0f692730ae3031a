"""Who may call the worker's browser-facing HTTP endpoints: the event collector's write keys, the
origins allowed by CORS, and shopper tokens (streams.live.shopper_tokens)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SHOPPER_TOKEN_MODES = ("optional", "required")


def _listed(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


@dataclass(frozen=True)
class WebAccess:
    # Write keys of `POST /events`, sent as `Authorization: Bearer KEY`; none: the collector is closed.
    # They ship inside web pages, so they are distinct from the API token, which reads shopper data.
    collector_keys: tuple[str, ...] = field(default=(), repr=False)
    # Origins a browser may call the API from (`*`: any); none: no cross-origin calls.
    cors_origins: tuple[str, ...] = ()
    # Signs shopper tokens; unset: no shopper token is valid.
    shopper_secret: str | None = field(default=None, repr=False)
    # `required`: a per-shopper public endpoint refuses a request without a valid token (401).
    shopper_tokens: str = "optional"
    # The demo page may hand any visitor a write key and a shopper token for any shopper
    # (streams.live.dashboard): for a local demo only, never on a worker facing real shoppers.
    demo: bool = False

    def __post_init__(self) -> None:
        if self.shopper_tokens not in SHOPPER_TOKEN_MODES:
            mode = self.shopper_tokens
            raise ValueError(f"STREAMS_SHOPPER_TOKENS={mode!r}: use one of {SHOPPER_TOKEN_MODES}")
        if self.shopper_tokens == "required" and not self.shopper_secret:
            raise ValueError("STREAMS_SHOPPER_TOKENS=required needs STREAMS_SHOPPER_SECRET")
        if self.demo and not (self.collector_keys and self.shopper_secret):
            raise ValueError("STREAMS_DEMO=true needs STREAMS_COLLECTOR_KEYS and STREAMS_SHOPPER_SECRET")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebAccess:
        return cls(
            collector_keys=_listed(env.get("STREAMS_COLLECTOR_KEYS")),
            cors_origins=_listed(env.get("STREAMS_CORS_ORIGINS")),
            shopper_secret=env.get("STREAMS_SHOPPER_SECRET") or None,
            shopper_tokens=(env.get("STREAMS_SHOPPER_TOKENS") or "optional").lower(),
            demo=(env.get("STREAMS_DEMO") or "").lower() in ("1", "true", "yes"),
        )

    def env(self) -> dict[str, str]:
        """The environment `from_env` reads these settings back from (for a worker's child process)."""
        out = {"STREAMS_SHOPPER_TOKENS": self.shopper_tokens, "STREAMS_DEMO": str(self.demo).lower()}
        if self.collector_keys:
            out["STREAMS_COLLECTOR_KEYS"] = ",".join(self.collector_keys)
        if self.cors_origins:
            out["STREAMS_CORS_ORIGINS"] = ",".join(self.cors_origins)
        if self.shopper_secret:
            out["STREAMS_SHOPPER_SECRET"] = self.shopper_secret
        return out

    def secrets(self) -> list[str]:
        return [*self.collector_keys, *([self.shopper_secret] if self.shopper_secret else [])]
