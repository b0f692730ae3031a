"""The worker's OpenAPI document (`GET /openapi.json`): every endpoint, its parameters, request and
response bodies (the event shapes come from `schemas/`, the single source of truth) and how each is
authenticated.

An endpoint is one entry of `paths()`: its path and one operation per method, built with
`operation`. A body shape used by more than one endpoint goes in `component_schemas()` and is
referenced with `ref`.
"""

from __future__ import annotations

from typing import Any

from streams.live.event_collector import MAX_BATCH_EVENTS
from streams.live.operations import MODEL_SWAP_PATH
from streams.live.shopper_access import TOKEN_PARAMETER
from streams.schemas import load_schema

OPENAPI_VERSION = "3.1.0"  # its Schema Object is JSON Schema: the files in schemas/ fit as they are

# Component name -> event kind in schemas/.
EVENT_SCHEMAS = {
    "Click": "click",
    "Order": "order",
    "Recommendation": "recommendation",
    "PromotionTrigger": "promotion_trigger",
    "AudienceSegment": "audience_segment",
    "DeadLetter": "dead_letter",
}

API_TOKEN = [{"apiToken": []}]
# Optional (`{}`): without a token a shopper endpoint serves its public view.
SHOPPER = [{}, {"shopperToken": []}, {"shopperTokenQuery": []}, {"apiToken": []}]


def ref(component: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{component}"}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return json_body(ref("Error"), description)


def path_parameter(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


USER = path_parameter("user_id", "the shopper's user_id")


def operation(
    summary: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
    security: list[dict[str, list[str]]] | None = None,
    request_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        out["parameters"] = parameters
    # Unauthenticated unless named: the document has no global security requirement.
    out["security"] = security or []
    if request_body is not None:
        out["requestBody"] = request_body
    return out


def query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


# The request-time parameters of every item list (streams.core.listing).
LIST_PARAMETERS = [
    query_parameter("n", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}, "how many items"),
    query_parameter("placement", {"type": "string", "maxLength": 64}, "where the list is shown (echoed)"),
    query_parameter("category", {"type": "string"}, "only items of this catalog category"),
    query_parameter("min_price", {"type": "number", "minimum": 0}, "only items priced at least this"),
    query_parameter("max_price", {"type": "number", "minimum": 0}, "only items priced at most this"),
    query_parameter("in_stock", {"type": "boolean"}, "only items the catalog lists as in (or out of) stock"),
    query_parameter("exclude", {"type": "string"}, "comma-separated item ids to leave out (repeatable)"),
    query_parameter(
        "fields", {"type": "string"}, "comma-separated catalog fields: title, price, category, in_stock"
    ),
]


def item_list_paths() -> dict[str, dict[str, Any]]:
    item = path_parameter("item_id", "an item of the catalog or the model's vocabulary")
    answers = {
        "200": json_body({"type": "object"}, "the ranked items"),
        "400": error("unknown parameter or bad value"),
    }
    unknown = {"404": error("unknown item")}
    return {
        "/items/{item_id}/similar": {
            "get": operation(
                "Items similar to an item (the model's embeddings)",
                {**answers, **unknown},
                [item, *LIST_PARAMETERS],
            )
        },
        "/items/{item_id}/bought-together": {
            "get": operation(
                "Items bought together with an item (co-purchase counts, whole shop)",
                {**answers, **unknown},
                [item, *LIST_PARAMETERS],
            )
        },
        "/items/trending": {
            "get": operation(
                "Trending items of the whole shop (decayed view and cart counts)", answers, LIST_PARAMETERS
            )
        },
    }


def token_protected(summary: str, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": operation(
            summary,
            {
                "200": json_body(document, "OK"),
                "401": error("missing or wrong API token"),
                "404": error("unknown user"),
            },
            [USER],
            API_TOKEN,
        )
    }


def paths() -> dict[str, dict[str, Any]]:
    refused_token = error("a bad shopper token, or none when STREAMS_SHOPPER_TOKENS=required")
    return {
        "/events": {
            "post": operation(
                f"Collect a batch of up to {MAX_BATCH_EVENTS} clicks and orders: each event is validated, "
                "the valid ones are written keyed by user_id, each gets an answer",
                {
                    "200": json_body(ref("EventBatchAnswer"), "every event accepted or refused"),
                    "400": error("the body is not a batch (nothing was written)"),
                    "401": error("missing or wrong write key"),
                    "413": error("the body is over 1 MiB"),
                    "503": json_body(
                        ref("EventBatchAnswer"), "some events were not acknowledged: send them again"
                    ),
                },
                security=[{"collectorKey": []}],
                request_body={**json_body(ref("EventBatch"), "the batch"), "required": True},
            )
        },
        "/streams.js": {
            "get": operation(
                "The JavaScript snippet that sends a page's events and follows its recommendations",
                {
                    "200": {
                        "description": "OK",
                        "content": {"application/javascript": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/users/{user_id}/recommendations": {
            "get": operation(
                "The user's latest recommendation (without a shopper token, without `provenance.removed`); "
                "with list parameters, a list computed now from the user's state, each item with its reason",
                {
                    "200": json_body(ref("Recommendation"), "OK"),
                    "400": error("unknown parameter or bad value"),
                    "401": refused_token,
                    "404": error("no recommendation yet"),
                },
                [USER, *LIST_PARAMETERS],
                SHOPPER,
            )
        },
        "/users/{user_id}/recommendations/stream": {
            "get": operation(
                "Server-Sent Events: the latest recommendation, then each `recommendation` as it is sent; "
                "with the shopper's token also each `trigger` (PromotionTrigger) and `segment` "
                "(AudienceSegment)",
                {
                    "200": {
                        "description": "an event stream; `data` is one JSON document",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "401": refused_token,
                },
                [
                    USER,
                    {
                        "name": TOKEN_PARAMETER,
                        "in": "query",
                        "required": False,
                        "description": "a shopper token (EventSource cannot send headers)",
                        "schema": {"type": "string"},
                    },
                ],
                SHOPPER,
            )
        },
        "/users/{user_id}/state": token_protected("The user's state", {"type": "object"}),
        "/users/{user_id}/profile": token_protected(
            "The shopper's profile: interests, price band, RFM, lifecycle, segments", {"type": "object"}
        ),
        "/users/{user_id}/context": token_protected(
            "Compact summary for a shopping assistant's prompt, at most 4 KiB", {"type": "object"}
        ),
        **item_list_paths(),
        "/stats/recommendations": {
            "get": operation(
                "Impressions, clicks, add-to-carts, orders and revenue attributed to recommendations, per "
                "model version and placement, over every partition of the shop (docs/recommendations.md, "
                "Attribution)",
                {
                    "200": json_body({"type": "object"}, "the figures and the partitions they cover"),
                    "401": error("missing or wrong API token"),
                },
                security=[{"apiToken": []}],
            )
        },
        "/livez": {
            "get": operation(
                "Liveness: 503 only when stalled (an orchestrator restarts the worker)",
                {
                    "200": json_body({"type": "object"}, "alive"),
                    "503": json_body({"type": "object"}, "stalled"),
                },
            )
        },
        "/readyz": {
            "get": operation(
                "Readiness: 503 while joining the group, restoring tables, loading the catalog or stalled",
                {
                    "200": json_body({"type": "object"}, "ready"),
                    "503": json_body({"type": "object"}, "not ready, with the reasons"),
                },
            )
        },
        MODEL_SWAP_PATH: {
            "post": operation(
                'Swap the served model without a restart; body {"path": "<model directory on the worker>"}',
                {
                    "200": json_body({"type": "object"}, "the new model version"),
                    "400": json_body({"type": "object"}, "the artifact could not be loaded"),
                    "401": json_body({"type": "object"}, "missing or wrong API token"),
                    "409": json_body({"type": "object"}, "the worker serves no model"),
                },
                security=[{"apiToken": []}],
                request_body={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["path"],
                                "properties": {"path": {"type": "string"}},
                            }
                        }
                    },
                },
            )
        },
        "/healthz": {
            "get": operation(
                "Liveness and counters of this worker",
                {"200": json_body({"type": "object"}, "OK"), "503": json_body({"type": "object"}, "stalled")},
            )
        },
        "/metrics": {
            "get": operation(
                "Prometheus metrics",
                {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
            )
        },
        "/openapi.json": {"get": operation("This document", {"200": json_body({"type": "object"}, "OK")})},
        "/demo": {
            "get": operation(
                "The live dashboard: a shop simulator, one followed shopper and the system's figures",
                {"200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}}},
                [{"name": "user", "in": "query", "required": False, "schema": {"type": "string"}}],
            )
        },
        **dashboard_paths(),
    }


def dashboard_paths() -> dict[str, dict[str, Any]]:
    """The dashboard's own endpoints (streams.live.dashboard, streams.live.catalog_views)."""
    page = {"type": "object"}
    return {
        "/items": {
            "get": operation(
                "The catalog, a page at a time, in item-id order",
                {
                    "200": json_body(
                        {
                            "type": "object",
                            "required": ["total", "offset", "limit", "items", "categories"],
                            "properties": {
                                "total": {"type": "integer", "description": "items matching the filters"},
                                "offset": {"type": "integer"},
                                "limit": {"type": "integer"},
                                "items": {"type": "array", "items": {"type": "object"}},
                                "categories": {"type": "object", "description": "category -> items"},
                            },
                        },
                        "One page of catalog items (the catalog_item shape)",
                    ),
                    "400": error("A bad parameter"),
                },
                [
                    query_parameter("offset", {"type": "integer", "minimum": 0}, "items to skip"),
                    query_parameter("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size"),
                    query_parameter("category", {"type": "string"}, "only this category"),
                    query_parameter("q", {"type": "string", "maxLength": 100}, "text in the title or id"),
                    query_parameter("in_stock", {"type": "boolean"}, "only in or out of stock"),
                ],
            )
        },
        "/system/summary": {
            "get": operation(
                "Events/s, event-to-recommendation latency, lag and dead letters over the last minutes",
                {"200": json_body(page, "The worker's recent figures and one point per sample")},
            )
        },
        "/demo/session": {
            "get": operation(
                "A write key and a shopper token for the demo page (only with STREAMS_DEMO=true)",
                {
                    "200": json_body(page, "user_id, write_key, shopper_token, expires"),
                    "400": error("No user given"),
                    "404": error("The demo's shopper access is off"),
                },
                [{"name": "user", "in": "query", "required": True, "schema": {"type": "string"}}],
            )
        },
        "/demo/shoppers/{user_id}": {
            "get": operation(
                "The shopper's cart, recent activity and profile (only with STREAMS_DEMO=true)",
                {
                    "200": json_body(page, "profile, cart and recent, items with catalog facts"),
                    "401": error("Not the shopper's own token"),
                    "404": error("Unknown user, or the demo's shopper access is off"),
                },
                [USER],
                [{"shopperToken": []}, {"shopperTokenQuery": []}, {"apiToken": []}],
            )
        },
        "/demo/{name}": {
            "get": operation(
                "The dashboard's script and style (demo.js, demo.css)",
                {"200": {"description": "OK"}, "404": error("No such file")},
                [path_parameter("name", "demo.js or demo.css")],
            )
        },
    }


def event_schema(kind: str) -> dict[str, Any]:
    """A file of schemas/ as a Schema Object: without its own `$schema` and `$id`, which would
    declare another dialect and base URI inside this document."""
    return {k: v for k, v in load_schema(kind).items() if k not in ("$schema", "$id")}


def component_schemas() -> dict[str, Any]:
    accepted = {
        "type": "object",
        "required": ["status", "event_id", "partition"],
        "properties": {
            "status": {"const": "accepted"},
            "event_id": {"type": "string"},
            "partition": {"type": "integer", "minimum": 0, "description": "where Kafka's murmur2 put it"},
        },
    }
    refused = {
        "type": "object",
        "required": ["status", "code", "message"],
        "properties": {
            "status": {"const": "refused"},
            "code": {"type": "string", "description": "the dead-letter code (docs/topics.md)"},
            "message": {"type": "string"},
            "field": {"type": "string"},
        },
    }
    failed = {
        "type": "object",
        "required": ["status", "message"],
        "properties": {"status": {"const": "failed"}, "message": {"type": "string"}},
    }
    answers = {"type": "array", "items": {"oneOf": [accepted, refused, failed]}}
    return {
        **{name: event_schema(kind) for name, kind in EVENT_SCHEMAS.items()},
        "EventBatch": {
            "type": "object",
            "additionalProperties": False,
            "description": f"at most {MAX_BATCH_EVENTS} events in all",
            "properties": {
                "clicks": {"type": "array", "items": ref("Click")},
                "orders": {"type": "array", "items": ref("Order")},
            },
        },
        "EventBatchAnswer": {
            "type": "object",
            "required": ["accepted", "refused", "failed", "clicks", "orders"],
            "description": "one answer per event, in the order of the batch",
            "properties": {
                "accepted": {"type": "integer", "minimum": 0},
                "refused": {"type": "integer", "minimum": 0},
                "failed": {"type": "integer", "minimum": 0},
                "clicks": answers,
                "orders": answers,
            },
        },
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "streams worker API", "version": "1"},
        "paths": paths(),
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {
                "apiToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "STREAMS_API_TOKEN: the shop's backend; reads any shopper's data",
                },
                "collectorKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a write key of STREAMS_COLLECTOR_KEYS: may only send events",
                },
                "shopperToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a shopper token (`streams token USER_ID`): one shopper, until it expires",
                },
                "shopperTokenQuery": {"type": "apiKey", "in": "query", "name": TOKEN_PARAMETER},
            },
        },
    }
