"""Typed input events. Built from values that already passed their JSON Schema (see streams.ingest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ClickType = Literal["view", "add_to_cart", "remove_from_cart", "search", "impression", "checkout_started"]
OrderStatus = Literal["placed", "cancelled", "returned"]

SCHEMA_VERSION = 1  # of every event shape; the JSON Schemas in schemas/ carry the same number

CLICKS = "clicks"
ORDERS = "orders"
# Ties in event time between topics are broken by this rank, so every adapter orders them alike.
SOURCE_RANK = {CLICKS: 0, ORDERS: 1}

_new_object = object.__new__  # an instance with its slots unset (`Click.from_dict` fills them)
_set_field = object.__setattr__  # sets a field of a frozen dataclass


def as_int(value: Any) -> Any:
    """JSON Schema calls 2.0 an integer, and a JSON tracker may send 1.7e12: the core sees ints only
    (a float event time would leak into output ids, timers and the outputs' `ts`)."""
    return int(value) if isinstance(value, float) else value


@dataclass(frozen=True, slots=True)
class Click:
    event_id: str
    user_id: str
    type: ClickType
    ts: int
    item_id: str | None = None
    session_id: str | None = None
    quantity: int | None = None
    price: float | None = None
    category: str | None = None
    query: str | None = None
    marketing_consent: bool | None = None
    # attribution (streams.core.attribution): where a recommended item was shown or clicked
    rec_id: str | None = None
    position: int | None = None
    placement: str | None = None
    items: tuple[str, ...] = ()  # an impression's items shown

    source = CLICKS

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Click:
        # Runs for every click. The frozen dataclass's constructor binds fifteen arguments and then
        # sets each field with object.__setattr__; setting them on a bare instance here costs about
        # a third less. tests/core/test_events.py checks that every field is set.
        get = value.get
        click = _new_object(cls)
        _set_field(click, "event_id", value["event_id"])
        _set_field(click, "user_id", value["user_id"])
        _set_field(click, "type", value["type"])
        _set_field(click, "ts", as_int(value["ts"]))
        _set_field(click, "item_id", get("item_id"))
        _set_field(click, "session_id", get("session_id"))
        _set_field(click, "quantity", as_int(get("quantity")))
        _set_field(click, "price", get("price"))
        _set_field(click, "category", get("category"))
        _set_field(click, "query", get("query"))
        _set_field(click, "marketing_consent", get("marketing_consent"))
        _set_field(click, "rec_id", get("rec_id"))
        _set_field(click, "position", as_int(get("position")))
        _set_field(click, "placement", get("placement"))
        _set_field(click, "items", tuple(get("items", ())))
        return click


@dataclass(frozen=True, slots=True)
class OrderLine:
    item_id: str
    quantity: int
    price: float | None = None


@dataclass(frozen=True, slots=True)
class Order:
    event_id: str
    user_id: str
    order_id: str
    status: OrderStatus
    items: tuple[OrderLine, ...]
    ts: int
    total: float | None = None
    currency: str | None = None
    rec_id: str | None = None  # the recommendation the whole order is attributed to
    position: int | None = None
    placement: str | None = None

    source = ORDERS

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Order:
        return cls(
            event_id=value["event_id"],
            user_id=value["user_id"],
            order_id=value["order_id"],
            status=value["status"],
            items=tuple(
                OrderLine(i["item_id"], as_int(i["quantity"]), i.get("price")) for i in value["items"]
            ),
            ts=as_int(value["ts"]),
            total=value.get("total"),
            currency=value.get("currency"),
            rec_id=value.get("rec_id"),
            position=as_int(value.get("position")),
            placement=value.get("placement"),
        )


UserEvent = Click | Order


@dataclass(frozen=True, slots=True)
class Position:
    """Where an event came from on Kafka; the offset watermark in the state makes re-delivery a no-op."""

    topic: str
    partition: int
    offset: int
    # "topic/partition", the key of offset watermarks. Read several times per event: made once here.
    slot: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set_field(self, "slot", f"{self.topic}/{self.partition}")
