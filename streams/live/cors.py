"""Cross-origin access for browsers (`STREAMS_CORS_ORIGINS`): a shop's pages, served from the shop's
own origin, call the JSON endpoints and post to the collector. Faust applies these options to every
view through aiohttp-cors, which also answers the preflight (`OPTIONS`) requests."""

from __future__ import annotations

from faust.web import ResourceOptions

from streams.web_access import WebAccess

# A page sends the collector's write key or a token in `Authorization`, and JSON bodies: both make
# the browser ask first (a preflight), which may be cached this long.
ALLOWED_HEADERS = ("Authorization", "Content-Type")
ALLOWED_METHODS = ("GET", "POST")
PREFLIGHT_MAX_AGE_SECONDS = 600


def cors_options(access: WebAccess) -> dict[str, ResourceOptions]:
    """Faust's `web_cors_options`: per allowed origin (`*`: any), what its pages may send. No
    credentials (cookies): every endpoint authenticates with a bearer header or a token."""
    options = ResourceOptions(
        allow_credentials=False,
        expose_headers=(),
        allow_headers=ALLOWED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
        allow_methods=ALLOWED_METHODS,
    )
    return {origin: options for origin in access.cors_origins}
