"""Compiled segment expressions give simpleeval's answer: the same value, or the same error."""

from __future__ import annotations

import ast
import functools
import random
from typing import Any

import pytest
from simpleeval import EvalWithCompoundTypes

from streams.core.config import DEFAULT_SEGMENTS
from streams.core.expressions import compile_expression, compile_rules
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


@pytest.mark.parametrize("called", [False, True], ids=["python-operators", "operators-called"])
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_compiled_expression_answers_as_simpleeval_does(expression: str, called: bool) -> None:
    """`called`: the evaluator's operators are wrapped copies, so the generated code must call them
    (as it does simpleeval's `safe_*` limits) rather than write Python's operators."""
    evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)
    if called:
        evaluator.operators = wrapped(evaluator.operators)
    tree = evaluator.parse(expression)
    compiled = compile_expression(
        tree, evaluator.operators, _ALLOWED_CALLS, frozenset(FACTS), frozenset({"interest"})
    )
    assert compiled is not None
    if called:
        kinds = {type(n) for n in ast.walk(tree) if isinstance(n, ast.operator | ast.unaryop | ast.cmpop)}
        bound = list(compiled.__globals__.values())
        assert all(any(evaluator.operators[kind] is value for value in bound) for kind in kinds)
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


def simpleeval_rules(evaluator: EvalWithCompoundTypes, rules: list[tuple[str, Any]], names: dict) -> Any:
    """What `compile_rules`' function should answer, by simpleeval: the ids of the rules that hold,
    a rule raising TypeError does not, any other error is raised."""
    evaluator.names = names
    matched = []
    for rule_id, tree in rules:
        try:
            if evaluator.eval("", previously_parsed=tree):
                matched.append(rule_id)
        except TypeError:
            pass
    return matched


def wrapped(operators: dict) -> dict:
    """The same operators as other function objects: compiled code must call them, not inline."""
    return {kind: functools.partial(function) for kind, function in operators.items()}


@pytest.mark.parametrize("operators", ["simpleeval's", "wrapped"])
@pytest.mark.parametrize("with_key_error", [True, False])
def test_one_function_for_all_rules_answers_as_simpleeval_does_rule_by_rule(
    operators: str, with_key_error: bool
) -> None:
    evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)
    if operators == "wrapped":
        evaluator.operators = wrapped(evaluator.operators)
    # Without the rule that can raise KeyError, every sample shows each rule judged on its own.
    expressions = [e for e in EXPRESSIONS if with_key_error or "interest['books']" not in e]
    rules = [(f"rule_{n}", evaluator.parse(expression)) for n, expression in enumerate(expressions)]
    matching, left_out = compile_rules(
        rules, evaluator.operators, _ALLOWED_CALLS, frozenset(FACTS), frozenset({"interest"})
    )
    assert left_out == []
    rng = random.Random(operators)
    for _ in range(300):
        names = sample_facts(rng)
        expected = outcome(lambda n=names: simpleeval_rules(evaluator, rules, n))
        assert outcome(lambda n=names: matching(n)) == expected, names


def test_a_rule_raising_type_error_does_not_hold_and_the_others_are_judged() -> None:
    evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)
    rules = [(r, evaluator.parse(e)) for r, e in [("a", "orders >= 0"), ("b", "days_since_order > 30")]]
    rules.append(("c", evaluator.parse("cart_items >= 0")))
    matching, _ = compile_rules(rules, evaluator.operators, _ALLOWED_CALLS, frozenset(FACTS))
    assert matching({"orders": 1, "days_since_order": None, "cart_items": 0}) == ["a", "c"]
    assert matching({"orders": 1, "days_since_order": 31.0, "cart_items": 0}) == ["a", "b", "c"]


def test_each_name_is_read_once_when_first_needed_through_its_reader() -> None:
    evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)
    expressions = ["orders >= 3 and spend > 100", "orders == 0 or cart_items > 0", "0 < orders < orders + 1"]
    rules = [(str(n), evaluator.parse(e)) for n, e in enumerate(expressions)]
    reads: list[str] = []

    def reader(name: str) -> Any:
        def read(values: dict) -> Any:
            reads.append(name)
            return values[name]

        return read

    readers = {name: reader(name) for name in FACTS}
    matching, _ = compile_rules(rules, evaluator.operators, _ALLOWED_CALLS, frozenset(FACTS), readers=readers)
    assert matching({"orders": 0, "spend": 500.0, "cart_items": 2}) == ["1"]
    assert reads == ["orders"]  # `spend` and `cart_items` were not needed
    reads.clear()
    assert matching({"orders": 4, "spend": 500.0, "cart_items": 2}) == ["0", "1", "2"]
    assert reads == ["orders", "spend", "cart_items"]


def test_rule_text_and_ids_are_values_never_code() -> None:
    evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)
    tricky = "x\" or __import__('os') or \"\n'''\\"
    rules = [(tricky, evaluator.parse(f"top_category == {tricky!r}"))]
    matching, left_out = compile_rules(rules, evaluator.operators, _ALLOWED_CALLS, frozenset(FACTS))
    assert left_out == []
    assert matching({"top_category": tricky}) == [tricky]
    assert matching({"top_category": "x"}) == []
    assert matching.__globals__["__builtins__"] == {}


def test_rules_outside_the_subset_are_named_and_left_out() -> None:
    evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)
    rules = [("a", evaluator.parse("orders.get(1)")), ("b", evaluator.parse("orders > 1"))]
    rules.append(("c", evaluator.parse("max(orders, key=abs) > 1")))
    matching, left_out = compile_rules(
        rules, evaluator.operators, _ALLOWED_CALLS, frozenset(FACTS), frozenset({"interest"})
    )
    assert left_out == ["a", "c"]
    assert matching({"orders": 2}) == ["b"]
