"""Segment expressions compiled once into Python closures, with simpleeval's meaning.

simpleeval walks an expression's tree on every evaluation, checking each node and result: after
every event each configured segment was evaluated that way, a fifth of the core's time per event.
Here the tree that simpleeval parsed and accepted is turned into nested closures once, for the
node kinds segment rules use (constants, fact names, comparisons, `and`/`or`/`not`, arithmetic,
`x if c else y`, subscripts, the allowed functions and `.get` of a dict fact). Operators are simpleeval's own
functions (its `safe_power`, `safe_mult`, `safe_add` limits included), so a compiled expression
gives the same value or raises the same error as simpleeval would. An expression using anything
else is not compiled: `compile_expression` returns None and the caller keeps evaluating it with
simpleeval.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

from simpleeval import MAX_STRING_LENGTH

Names = Mapping[str, Any]
Compiled = Callable[[Names], Any]


class _NotCompiled(Exception):
    """A node outside the compiled subset."""


def compile_expression(
    tree: ast.AST,
    operators: Mapping[type, Callable[..., Any]],
    functions: Mapping[str, Callable[..., Any]],
    names: frozenset[str],
    dict_names: frozenset[str] = frozenset(),
) -> Compiled | None:
    """`tree`: simpleeval's parse of the expression; `operators` and `functions`: the evaluator's;
    `names`: the names the expression may read (facts), `dict_names` those always bound to a dict
    (their `.get` is compiled). None where the expression uses anything outside the subset."""
    try:
        return _Compiler(operators, functions, names, dict_names).compile(tree)
    except _NotCompiled:
        return None


class _Compiler:
    def __init__(
        self,
        operators: Mapping[type, Callable[..., Any]],
        functions: Mapping[str, Callable[..., Any]],
        names: frozenset[str],
        dict_names: frozenset[str],
    ) -> None:
        self.operators = operators
        self.functions = functions
        self.names = names
        self.dict_names = dict_names

    def compile(self, node: ast.AST) -> Compiled:
        if isinstance(node, ast.Expression | ast.Expr):
            return self.compile(node.body if isinstance(node, ast.Expression) else node.value)
        if isinstance(node, ast.Constant):
            return self._constant(node.value)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BoolOp):
            return self._boolop(node)
        if isinstance(node, ast.UnaryOp):
            operand, unary = self.compile(node.operand), self._operator(node.op)
            return lambda names: unary(operand(names))
        if isinstance(node, ast.BinOp):
            left, right, binary = self.compile(node.left), self.compile(node.right), self._operator(node.op)
            return lambda names: binary(left(names), right(names))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
            return lambda names: body(names) if test(names) else orelse(names)
        if isinstance(node, ast.Subscript):
            container, key = self.compile(node.value), self.compile(node.slice)
            return lambda names: container(names)[key(names)]
        if isinstance(node, ast.Tuple | ast.List):
            items = [self.compile(element) for element in node.elts]
            build = tuple if isinstance(node, ast.Tuple) else list
            return lambda names: build(item(names) for item in items)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _NotCompiled(type(node).__name__)

    def _constant(self, value: Any) -> Compiled:
        if hasattr(value, "__len__") and len(value) > MAX_STRING_LENGTH:
            raise _NotCompiled("long literal")  # simpleeval refuses it when evaluated
        return lambda names: value

    def _name(self, name: str) -> Compiled:
        if name not in self.names:
            raise _NotCompiled(name)  # a function used as a value, or an unknown name
        return lambda names: names[name]

    def _operator(self, op: ast.AST) -> Callable[..., Any]:
        operator = self.operators.get(type(op))
        if operator is None:
            raise _NotCompiled(type(op).__name__)
        return operator

    def _boolop(self, node: ast.BoolOp) -> Compiled:
        values = [self.compile(value) for value in node.values]
        if isinstance(node.op, ast.And):

            def all_of(names: Names) -> Any:
                result: Any = False
                for value in values:
                    result = value(names)
                    if not result:
                        break
                return result

            return all_of

        def any_of(names: Names) -> Any:
            result: Any = False
            for value in values:
                result = value(names)
                if result:
                    break
            return result

        return any_of

    def _compare(self, node: ast.Compare) -> Compiled:
        first = self.compile(node.left)
        steps = [
            (self._operator(op), self.compile(comp))
            for op, comp in zip(node.ops, node.comparators, strict=True)
        ]
        if len(steps) == 1:
            ((compare, other),) = steps
            left, right = node.left, node.comparators[0]
            if isinstance(left, ast.Name) and isinstance(right, ast.Constant):
                # `fact <op> literal`, most of what segment rules say: one call, not three.
                name, value = left.id, right.value
                return lambda names: compare(names[name], value)
            return lambda names: compare(first(names), other(names))

        def chained(names: Names) -> Any:
            right = first(names)
            result: Any = True
            for compare, other in steps:
                if not result:
                    break
                left, right = right, other(names)
                result = compare(left, right)
            return result

        return chained

    def _call(self, node: ast.Call) -> Compiled:
        if node.keywords:
            raise _NotCompiled("keyword arguments")
        args = [self.compile(arg) for arg in node.args]
        func = node.func
        if isinstance(func, ast.Name) and func.id in self.functions:
            function = self.functions[func.id]
            return lambda names: function(*(arg(names) for arg in args))
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.dict_names
        ):
            mapping = func.value.id
            return lambda names: names[mapping].get(*(arg(names) for arg in args))
        raise _NotCompiled("call")
