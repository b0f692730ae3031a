"""Segment expressions compiled once into Python code, with simpleeval's meaning.

simpleeval walks an expression's tree on every evaluation, checking each node and result: after
every event each configured segment was evaluated that way, a fifth of the core's time per event
(and still a tenth with one Python closure per node). Here the tree that simpleeval parsed and
accepted is translated once into a Python function: `compile_rules` makes ONE function for a whole
rule set that returns the ids of the rules that hold, so an event's segments are evaluated in one
Python frame. The function is built as a Python syntax tree and handed to `compile`, so no text of
a rule is ever pasted into source code: the rule's constants are the parsed values themselves, and
operator functions, allowed functions and fact readers are names in the generated code's globals
(which hold nothing else, no builtins).

Only the node kinds segment rules use are compiled: constants, fact names, comparisons,
`and`/`or`/`not`, arithmetic, `x if c else y`, subscripts, tuples and lists, the allowed functions
and `.get` of a dict fact. An expression using anything else is not compiled: `compile_expression`
returns None, `compile_rules` leaves the rule out and names it, and the caller keeps evaluating it
with simpleeval.

The meaning is simpleeval's: the same value or the same error. Operators are simpleeval's own
functions: one that is exactly Python's operator (simpleeval's `-` is `operator.sub`, its `in` is
`y` contains `x`, ...) is written as that operator, which does the same thing without a call; the
others (`safe_add`, `safe_mult`, `safe_power` with their limits, or whatever an evaluator was given)
are called. Python runs `and`/`or` (the deciding operand is the value), chained comparisons (each
middle operand evaluated once, stopping at the first false link) and `x if c else y` exactly as
simpleeval's tree walk does.

A name is read at most once per call, when first needed, and kept in a local: an `and` stops at its
first false operand, so where reading a name computes something (segments' facts), most of that
work is never done.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from simpleeval import DEFAULT_OPERATORS, DISALLOW_FUNCTIONS, MAX_STRING_LENGTH

Names = Mapping[str, Any]
Compiled = Callable[[Names], Any]
# A function of all rules: given what the names are read from, the ids of the rules that hold.
RulesFunction = Callable[[Any], list[str]]
Reader = Callable[[Any], Any]

# What each operator node means in Python; where an evaluator's function for it is this very one,
# the generated code uses the Python operator itself. simpleeval's own `in`, `not in`, `is` and
# `is not` are lambdas that mean exactly Python's.
_PYTHON_MEANING: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.MatMult: operator.matmul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitXor: operator.xor,
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: DEFAULT_OPERATORS[ast.In],
    ast.NotIn: DEFAULT_OPERATORS[ast.NotIn],
    ast.Is: DEFAULT_OPERATORS[ast.Is],
    ast.IsNot: DEFAULT_OPERATORS[ast.IsNot],
}

# Identifiers of the generated code. A name's local is `_VALUE` + the name; nothing else starts so.
_SOURCE, _MATCHED, _VALUE, _UNSET = "source", "matched", "v_", "_unset"


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
    (their `.get` is compiled). The result takes the names as a mapping. None where the expression
    uses anything outside the subset."""
    generator = _Generator(operators, functions, names, dict_names, None)
    try:
        value = generator.expression(tree)
    except _NotCompiled:
        return None
    return generator.function("expression", [ast.Return(value)])


def compile_rules(
    rules: Sequence[tuple[str, ast.AST]],
    operators: Mapping[type, Callable[..., Any]],
    functions: Mapping[str, Callable[..., Any]],
    names: frozenset[str],
    dict_names: frozenset[str] = frozenset(),
    readers: Mapping[str, Reader] | None = None,
) -> tuple[RulesFunction, list[str]]:
    """One function for `rules` (id, simpleeval's parse of its expression): it returns the ids of
    the rules whose expression is true, in the order given. A rule whose evaluation raises
    TypeError does not hold (a comparison with null), and the other rules are evaluated as usual;
    any other error is raised. The function's argument is what the names are read from: name `n` is
    `readers[n](argument)`, or `argument[n]` without `readers`. Other arguments as for
    `compile_expression`. Also returns the ids of the rules outside the subset, which the function
    leaves out."""
    generator = _Generator(operators, functions, names, dict_names, readers)
    body: list[ast.stmt] = [ast.Assign([_store(_MATCHED)], ast.List([], ast.Load()))]
    left_out = []
    for rule_id, tree in rules:
        try:
            holds = generator.expression(tree)
        except _NotCompiled:
            left_out.append(rule_id)  # what it bound or read on the way is unused, and harmless
            continue
        append = ast.Attribute(_load(_MATCHED), "append", ast.Load())
        keep = ast.If(holds, [ast.Expr(ast.Call(append, [ast.Constant(rule_id)], []))], [])
        # Each rule in its own try: one rule's TypeError must not stop the others.
        handler = ast.ExceptHandler(generator.bind(TypeError, "TypeError"), None, [ast.Pass()])
        body.append(ast.Try([keep], [handler], [], []))
    body.append(ast.Return(_load(_MATCHED)))
    return generator.function("rules", body), left_out


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _store(name: str) -> ast.Name:
    return ast.Name(name, ast.Store())


class _Generator:
    """Translates trees into one generated function, collecting the globals it needs on the way."""

    def __init__(
        self,
        operators: Mapping[type, Callable[..., Any]],
        functions: Mapping[str, Callable[..., Any]],
        names: Iterable[str],
        dict_names: frozenset[str],
        readers: Mapping[str, Reader] | None,
    ) -> None:
        self.operators = operators
        self.functions = functions
        self.names = frozenset(names)
        self.dict_names = dict_names
        self.readers = readers
        self.globals: dict[str, Any] = {"__builtins__": {}, _UNSET: object()}
        self.bound: dict[int, ast.Name] = {}  # id(value) -> its global
        self.read: list[str] = []  # names the function reads, in first-use order
        self.temporaries = 0

    def function(self, name: str, body: list[ast.stmt]) -> Callable[[Any], Any]:
        """The generated function: `body` after setting every name's local to unread."""
        if self.read:
            unread = ast.Assign([_store(_VALUE + n) for n in self.read], _load(_UNSET))
            body = [unread, *body]
        # The signature comes from fixed text (the same on every Python); the body is built nodes.
        module = ast.parse(f"def {name}({_SOURCE}):\n    pass")
        definition = module.body[0]
        assert isinstance(definition, ast.FunctionDef)
        definition.body = body
        code = compile(ast.fix_missing_locations(module), f"<compiled {name}>", "exec")
        namespace = dict(self.globals)
        exec(code, namespace)  # code built above from nodes; its globals are only these
        function: Callable[[Any], Any] = namespace[name]
        return function

    def bind(self, value: Any, label: str) -> ast.Name:
        """`value` as a global of the generated code (`label` makes the code readable)."""
        if id(value) not in self.bound:
            name = f"_{len(self.globals)}_{label}" if label.isidentifier() else f"_{len(self.globals)}"
            self.globals[name] = value
            self.bound[id(value)] = _load(name)
        return self.bound[id(value)]

    def expression(self, node: ast.AST) -> ast.expr:
        if isinstance(node, ast.Expression):
            return self.expression(node.body)
        if isinstance(node, ast.Expr):
            return self.expression(node.value)
        if isinstance(node, ast.Constant):
            if hasattr(node.value, "__len__") and len(node.value) > MAX_STRING_LENGTH:
                raise _NotCompiled("long literal")  # simpleeval refuses it when evaluated
            return ast.Constant(node.value)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BoolOp):
            return ast.BoolOp(type(node.op)(), [self.expression(value) for value in node.values])
        if isinstance(node, ast.UnaryOp):
            operand = self.expression(node.operand)
            if self._is_python_operator(node.op):
                return ast.UnaryOp(type(node.op)(), operand)
            return ast.Call(self._operator(node.op), [operand], [])
        if isinstance(node, ast.BinOp):
            left, right = self.expression(node.left), self.expression(node.right)
            if self._is_python_operator(node.op):
                return ast.BinOp(left, type(node.op)(), right)
            return ast.Call(self._operator(node.op), [left, right], [])
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.IfExp):
            test, body, orelse = (self.expression(n) for n in (node.test, node.body, node.orelse))
            return ast.IfExp(test, body, orelse)
        if isinstance(node, ast.Subscript):
            container, key = self.expression(node.value), self.expression(node.slice)
            return ast.Subscript(container, key, ast.Load())
        if isinstance(node, ast.Tuple | ast.List):
            items = [self.expression(element) for element in node.elts]
            return (
                ast.Tuple(items, ast.Load()) if isinstance(node, ast.Tuple) else ast.List(items, ast.Load())
            )
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _NotCompiled(type(node).__name__)

    def _name(self, name: str) -> ast.expr:
        """`name`'s value: its local if already read, else read now (and kept in the local)."""
        if name not in self.names:
            raise _NotCompiled(name)  # a function used as a value, or an unknown name
        if name not in self.read:
            self.read.append(name)
        read: ast.expr
        if self.readers is None:
            read = ast.Subscript(_load(_SOURCE), ast.Constant(name), ast.Load())
        else:
            read = ast.Call(self.bind(self.readers[name], "read_" + name), [_load(_SOURCE)], [])
        local = _VALUE + name
        is_read = ast.Compare(_load(local), [ast.IsNot()], [_load(_UNSET)])
        return ast.IfExp(is_read, _load(local), ast.NamedExpr(_store(local), read))

    def _is_python_operator(self, op: ast.AST) -> bool:
        function = self.operators.get(type(op))
        return function is not None and function is _PYTHON_MEANING.get(type(op))

    def _operator(self, op: ast.AST) -> ast.Name:
        function = self.operators.get(type(op))
        if function is None:
            raise _NotCompiled(type(op).__name__)
        return self.bind(function, getattr(function, "__name__", ""))

    def _compare(self, node: ast.Compare) -> ast.expr:
        first = self.expression(node.left)
        others = [self.expression(comparator) for comparator in node.comparators]
        if all(self._is_python_operator(op) for op in node.ops):
            return ast.Compare(first, [type(op)() for op in node.ops], others)
        # The chain spelt out: each middle operand is evaluated once (kept in a temporary) and the
        # first false link is the value, as simpleeval's loop gives.
        links: list[ast.expr] = []
        left = first
        for index, (op, right) in enumerate(zip(node.ops, others, strict=True)):
            if index < len(others) - 1:
                temporary = f"t{self.temporaries}"
                self.temporaries += 1
                links.append(
                    ast.Call(self._operator(op), [left, ast.NamedExpr(_store(temporary), right)], [])
                )
                left = _load(temporary)
            else:
                links.append(ast.Call(self._operator(op), [left, right], []))
        return links[0] if len(links) == 1 else ast.BoolOp(ast.And(), links)

    def _call(self, node: ast.Call) -> ast.expr:
        if node.keywords:
            raise _NotCompiled("keyword arguments")
        args = [self.expression(arg) for arg in node.args]
        func = node.func
        if isinstance(func, ast.Name) and func.id in self.functions:
            function = self.functions[func.id]
            if function in DISALLOW_FUNCTIONS:
                raise _NotCompiled(func.id)  # simpleeval refuses to call it
            return ast.Call(self.bind(function, func.id), args, [])
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.dict_names
        ):
            method = ast.Attribute(self._name(func.value.id), "get", ast.Load())
            return ast.Call(method, args, [])
        raise _NotCompiled("call")
