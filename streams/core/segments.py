"""Audience segments: rules from config over profile, state and model output, evaluated by the core.

A segment is an expression (`when`) over the names in `FACTS`, e.g.
`purchase_intent >= 0.5 and cart_items > 0` or `lifecycle == "at_risk" and orders >= 3`. The
expressions are evaluated with simpleeval's meaning (a safe evaluator: no attribute access to
internals, no imports, no calls beyond the few allowed), parsed once when the rules are loaded and
compiled then (`streams.core.expressions`), and checked for unknown names then, so a typo is an
error at start-up and not a silent empty audience.

After every applied event, and when a lifecycle boundary passes (a timer in the user state), the
shopper's segments are recomputed; a change leaves as `enter` / `exit` events on the
`audience-segments` topic, with ids derived from the cause so a re-emission has the same id.
Membership is kept in the user state. Consent applies as for promotion triggers: an opted-out
shopper is in no segment (opting out exits every segment).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simpleeval import EvalWithCompoundTypes, InvalidExpression

from streams.core import profile as profiles
from streams.core.catalog import Catalog
from streams.core.config import DAY, RulesConfig, Segment
from streams.core.events import SCHEMA_VERSION
from streams.core.expressions import compile_rules
from streams.core.ids import stable_id
from streams.core.state import UserState

AUDIENCE_SEGMENTS = "audience-segments"
TIMER = "segments"  # timer kind in UserState.timers: re-evaluate when the lifecycle may change

# The names a `when` expression can use (docs/segments.md, "Audience segments").
FACTS = {
    "purchase_intent": "model purchase intent of the latest event (0 without a model)",
    "cart_value": "sum of price x quantity over the cart",
    "cart_items": "quantity in the cart",
    "orders": "orders placed minus cancelled",
    "spend": "money spent: placed minus cancelled or returned",
    "days_since_order": "days since the latest order (null if none)",
    "days_since_seen": "days since the latest event",
    "lifecycle": "new, active, at_risk or lapsed",
    "price_band": "budget, mid, upper or premium (null if no price seen)",
    "top_category": "category of strongest interest (null if none)",
    "interest": "category -> share of interest, e.g. interest.get('books', 0) > 0.5",
    "events": "events applied so far",
    "session_events": "events in the current session",
}
# Facts that change with time alone: segments using them need a timer to notice.
TIME_FACTS = frozenset({"days_since_order", "days_since_seen", "lifecycle"})
_ALLOWED_CALLS = {"min": min, "max": max, "abs": abs, "round": round}


def facts(
    state: UserState, intent: float | None, now: int, config: RulesConfig, catalog: Catalog | None = None
) -> dict[str, Any]:
    """The names segment rules see, for `state` at event time `now`."""
    known = Facts(state, intent, now, config, catalog)
    return {name: known[name] for name in FACTS}


class Facts(dict[str, Any]):
    """`facts` computed on first use: segment rules read a few of the names after every event, and
    an `and` stops at its first false operand, so most facts of most events are never needed. The
    compiled rules compute a fact from it with `_FACT_OF` when they first read the fact; as a
    mapping, it computes and keeps each fact when first looked up."""

    __slots__ = ("catalog", "config", "intent", "now", "state")

    def __init__(
        self, state: UserState, intent: float | None, now: int, config: RulesConfig, catalog: Catalog | None
    ) -> None:
        # No dict.__init__: it has nothing to do for an empty dict, and one is made per event.
        self.state, self.intent, self.now, self.config, self.catalog = state, intent, now, config, catalog

    def __missing__(self, name: str) -> Any:
        value = self[name] = _FACT_OF[name](self)
        return value


_FACT_OF: dict[str, Callable[[Facts], Any]] = {
    "purchase_intent": lambda f: f.intent or 0.0,
    "cart_value": lambda f: f.state.cart_value(f.catalog),
    "cart_items": lambda f: sum(line.quantity for line in f.state.cart.values()),
    "orders": lambda f: max(0, f.state.profile.orders),
    "spend": lambda f: max(0, f.state.profile.spend_cents) / 100,
    "days_since_order": lambda f: profiles.days_between(f.state.profile.last_order_ts, f.now),
    "days_since_seen": lambda f: profiles.days_between(f.state.last_ts, f.now) or 0.0,
    "lifecycle": lambda f: profiles.lifecycle(f.state.first_ts, f.state.last_ts, f.now, f.config),
    "price_band": lambda f: profiles.price_band(f.state.profile, f.config),
    "top_category": lambda f: profiles.top_category(f.state.profile),
    "interest": lambda f: profiles.interest_shares(f.state.profile),
    "events": lambda f: sum(f.state.counters.values()),
    "session_events": lambda f: f.state.session.events if f.state.session is not None else 0,
}


@dataclass(frozen=True, slots=True)
class _Rule:
    segment: Segment
    tree: ast.AST  # simpleeval's parse of `segment.when`


class SegmentRules:
    """The configured segments, parsed once and compiled into one function (`streams.core.expressions`)."""

    def __init__(self, config: RulesConfig, catalog: Catalog | None = None) -> None:
        self.config = config
        self.catalog = catalog
        self._evaluator = EvalWithCompoundTypes(functions=_ALLOWED_CALLS)
        self.rules: list[_Rule] = []
        used: set[str] = set()
        for segment in config.segments:
            try:
                tree = self._evaluator.parse(segment.when)
            except SyntaxError as exc:
                raise ValueError(f"segment {segment.id}: cannot parse {segment.when!r}: {exc.msg}") from None
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            unknown = sorted(names - set(FACTS) - set(_ALLOWED_CALLS) - {"True", "False", "None"})
            if unknown:
                raise ValueError(
                    f"segment {segment.id}: unknown name(s) {', '.join(unknown)}; known: {', '.join(FACTS)}"
                )
            used |= names
            self.rules.append(_Rule(segment, tree))
        self.time_dependent = bool(used & TIME_FACTS)
        # In id order, so the function's answer is already sorted.
        by_id = sorted(self.rules, key=lambda rule: rule.segment.id)
        trees = [(rule.segment.id, rule.tree) for rule in by_id]
        compile_args = (self._evaluator.operators, _ALLOWED_CALLS, frozenset(FACTS), frozenset({"interest"}))
        self._matching, left_out = compile_rules(trees, *compile_args, readers=_FACT_OF)
        self._left_out = [rule for rule in by_id if rule.segment.id in left_out]
        if self._left_out:
            # simpleeval reads every fact from a dict: the compiled rules read that dict too, so no
            # fact is computed twice.
            self._matching, _ = compile_rules(trees, *compile_args)
        self.all_compiled = not self._left_out
        self._check(UserState("segment-check"))

    def _check(self, sample: UserState) -> None:
        """Evaluate every rule once, so an expression the evaluator refuses fails at load time."""
        self._evaluator.names = facts(sample, None, 0, self.config)
        for rule in self.rules:
            try:
                self._evaluator.eval(rule.segment.when, previously_parsed=rule.tree)
            except TypeError:
                pass  # a comparison with null: allowed, it is false (see `matching`)
            except InvalidExpression as exc:
                raise ValueError(f"segment {rule.segment.id}: {exc}") from None

    def matching(self, state: UserState, intent: float | None, now: int) -> list[str]:
        """Ids of the segments the shopper belongs to at `now`, sorted (consent not applied). A rule
        that raises TypeError, a comparison with null (no order yet, no price seen), does not hold."""
        if self.all_compiled:
            # Facts are computed by the compiled function, each when first read.
            return self._matching(Facts(state, intent, now, self.config, self.catalog))
        names = self._evaluator.names = facts(state, intent, now, self.config, self.catalog)
        out = self._matching(names)
        for rule in self._left_out:
            try:
                if self._evaluator.eval(rule.segment.when, previously_parsed=rule.tree):
                    out.append(rule.segment.id)
            except TypeError:
                pass
        return sorted(out)

    def next_check(self, state: UserState, after: int) -> int | None:
        """When time alone may change a segment: the next lifecycle boundary after `after`, rounded
        up to a whole day (so a shopper's timer moves at most once a day, not on every event)."""
        if not self.time_dependent:
            return None
        for boundary in profiles.lifecycle_boundaries(state.first_ts, state.last_ts, self.config):
            if boundary > after:
                return -(-boundary // DAY) * DAY
        return None

    def update(
        self,
        facts_state: UserState,
        ledger: UserState,
        intent: float | None,
        now: int,
        anchor: str,
        cause_event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Recompute membership (judged on `facts_state`, as of `now`), record it in `ledger` (mutates
        it) and return one enter / exit event per change."""
        if intent is not None:
            ledger.intent = intent
        consent = facts_state.consent
        opted_out = consent is False or (self.config.require_opt_in and consent is not True)
        target = [] if opted_out else self.matching(facts_state, ledger.intent, now)
        current = ledger.segments
        if target == current:
            return []
        known = {rule.segment.id: rule.segment for rule in self.rules}
        changes: list[tuple[str, str, str]] = []
        for segment_id in sorted(set(current) - set(target)):
            if opted_out:
                reason = "marketing consent withdrawn"
            elif segment_id not in known:
                reason = "segment no longer configured"
            else:
                reason = f"no longer: {known[segment_id].when}"
            changes.append((segment_id, "exit", reason))
        changes += [(s, "enter", known[s].when) for s in sorted(set(target) - set(current))]
        ledger.segments = target
        return [
            _event(
                ledger.user_id, segment_id, action, now, anchor, reason, facts_state.replayed, cause_event_id
            )
            for segment_id, action, reason in changes
        ]


def _event(
    user_id: str,
    segment_id: str,
    action: str,
    ts: int,
    anchor: str,
    reason: str,
    replay: bool,
    cause_event_id: str | None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": stable_id("s", user_id, segment_id, action, anchor),
        "user_id": user_id,
        "segment": segment_id,
        "action": action,
        "ts": ts,
        "reason": reason,
        "replay": replay,
    }
    if cause_event_id is not None:
        value["cause_event_id"] = cause_event_id
    return value
