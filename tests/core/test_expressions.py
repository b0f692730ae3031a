"""Compiled segment expressions give simpleeval's answer: the same value, or the same error."""

from __future__ import annotations

import random
from typing import Any

import pytest
from simpleeval import EvalWithCompoundTypes

from streams.core.config import DEFAULT_SEGMENTS
from streams.core.expressions import compile_expression
from streams.core.segments import _ALLOWED_CALLS, FACTS

EXPRESSIONS = [
    *(segment.when for segment in DEFAULT_SEGMENTS),
    "0 < cart_items <= 3 < orders",  # a chain stops at its first false link
    "cart_value > 100 or orders >= 3 or spend",  # `or` gives the first true operand
    "cart_items and spend",  # `and` gives the first false operand, else the last
    "not orders and -cart_value < +spend",
    "days_since_order > 30",  # null compared: TypeError, as simpleeval raises
    "round(spend / max(orders, 1), 1) >= abs(-20) and min(cart_items, 2) == 2",
    "cart_value * 2 - spend // 3 % 7 + 2 ** 3 > 5",
    "interest.get('books', 0) > 0.5 or interest.get(top_category or 'x', 0) >= 0.3",
    "lifecycle in ('at_risk', 'lapsed') and price_band not in ['budget']",
    "'premium' if spend > 500 else price_band == 'upper'",
    "interest['books'] > 0.1",  # KeyError where absent, as simpleeval
    "top_category is None or events is not None",
    "session_events != events",
]


def sample_facts(rng: random.Random) -> dict[str, Any]:
    categories = ["books", "electronics", "garden"]
    shares = {c: rng.random() for c in rng.sample(categories, rng.randrange(len(categories) + 1))}
    return {
        "purchase_intent": rng.random(),
        "cart_value": rng.choice([0.0, 12.5, 150.0]),
        "cart_items": rng.randrange(5),
        "orders": rng.randrange(6),
        "spend": rng.choice([0.0, 49.9, 800.0]),
        "days_since_order": rng.choice([None, 2.0, 45.0]),
        "days_since_seen": rng.random() * 100,
        "lifecycle": rng.choice(["new", "active", "at_risk", "lapsed"]),
        "price_band": rng.choice([None, "budget", "mid", "upper", "premium"]),
        "top_category": next(iter(shares), None),
        "interest": shares,
        "events": rng.randrange(100),
        "session_events": rng.randrange(20),
    }


def outcome(run: Any) -> tuple[str, Any]:
    try:
        return "value", run()
    except Exception as exc:  # the kind of error is part of the meaning
        return "error", type(exc).__name__


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_compiled_expression_answers_as_simpleeval_does(expression: str) -> None:
    evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)
    tree = evaluator.parse(expression)
    compiled = compile_expression(
        tree, evaluator.operators, _ALLOWED_CALLS, frozenset(FACTS), frozenset({"interest"})
    )
    assert compiled is not None
    rng = random.Random(expression)
    for _ in range(300):
        names = sample_facts(rng)
        evaluator.names = names
        expected = outcome(lambda: evaluator.eval(expression, previously_parsed=tree))
        assert outcome(lambda n=names: compiled(n)) == expected, names


@pytest.mark.parametrize(
    "expression",
    [
        "top_category.upper() == 'X'",  # any attribute but a dict fact's get
        "orders.get(1)",  # get of a fact that is not a dict
        "max(orders, key=abs) > 1",  # keyword arguments
        "[x for x in interest]",  # comprehensions
        "min",  # a function as a value
    ],
)
def test_what_is_not_compiled_is_left_to_simpleeval(expression: str) -> None:
    evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)
    tree = evaluator.parse(expression)
    assert (
        compile_expression(
            tree, evaluator.operators, _ALLOWED_CALLS, frozenset(FACTS), frozenset({"interest"})
        )
        is None
    )
