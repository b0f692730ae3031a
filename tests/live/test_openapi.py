"""`/openapi.json` describes the real request and response bodies: the event shapes are the files of
`schemas/`, the collector's batch and answer validate what the collector really takes and gives, and
every endpoint says how it is authenticated."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import fastjsonschema
import pytest

from streams.live.event_collector import EventCollector, read_batch
from streams.live.openapi import EVENT_SCHEMAS, openapi_document
from streams.live.web import openapi_document as served_document
from streams.schemas import load_schema
from tests.live.test_event_collector import NOW, SETTINGS, FakeProducer, click

DOCUMENT = openapi_document()


def validator(component: str) -> Callable[[Any], Any]:
    """A validator of one component schema, its references resolved inside the document."""
    return fastjsonschema.compile({**DOCUMENT, "$ref": f"#/components/schemas/{component}"})


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in references(v)]
    if isinstance(node, list):
        return [r for v in node for r in references(v)]
    return []


def test_the_worker_serves_this_document() -> None:
    assert served_document() == DOCUMENT
    assert DOCUMENT["openapi"].startswith("3.1")
    json.dumps(DOCUMENT)


def test_every_reference_resolves() -> None:
    refs = references(DOCUMENT)
    assert refs
    schemas = DOCUMENT["components"]["schemas"]
    for target in refs:
        assert target.startswith("#/components/schemas/") and target.rsplit("/", 1)[1] in schemas, target


def test_event_shapes_are_the_files_of_schemas() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for name, kind in EVENT_SCHEMAS.items():
        expected = {k: v for k, v in load_schema(kind).items() if k not in ("$schema", "$id")}
        assert schemas[name] == expected, name
        for example in load_schema(kind).get("examples", []):
            validator(name)(example)


def test_the_batch_schema_takes_what_the_collector_takes() -> None:
    batch = {"clicks": load_schema("click")["examples"], "orders": load_schema("order")["examples"]}
    validator("EventBatch")(batch)
    read_batch(json.dumps(batch).encode())
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validator("EventBatch")({"views": []})


def test_the_answer_schema_describes_the_collectors_answer() -> None:
    collector = EventCollector(SETTINGS, FakeProducer(), lambda: NOW)
    _, answer = collector.collect(read_batch(json.dumps({"clicks": [click(1), {"user_id": 5}]}).encode()))
    assert [a["status"] for a in answer["clicks"]] == ["accepted", "refused"]
    validator("EventBatchAnswer")(answer)
    _, failed = EventCollector(SETTINGS, FakeProducer(down=("t-clicks",)), lambda: NOW).collect(
        {"clicks": [click(1)], "orders": []}
    )
    validator("EventBatchAnswer")(failed)
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validator("EventBatchAnswer")({**answer, "clicks": [{"status": "accepted"}]})


def test_every_operation_answers_and_names_its_security() -> None:
    schemes = set(DOCUMENT["components"]["securitySchemes"])
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            assert any(code.startswith("2") for code in operation["responses"]), (path, method)
            for requirement in operation["security"]:
                assert set(requirement) <= schemes, (path, requirement)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path
    paths = DOCUMENT["paths"]
    assert paths["/events"]["post"]["security"] == [{"collectorKey": []}]
    assert paths["/users/{user_id}/state"]["get"]["security"] == [{"apiToken": []}]
    shopper = paths["/users/{user_id}/recommendations/stream"]["get"]["security"]
    assert {} in shopper and {"shopperToken": []} in shopper  # the token is optional by default
