from __future__ import annotations

from dataclasses import fields

from streams.core.events import Click


def test_click_from_dict_sets_every_field_as_the_constructor_does() -> None:
    full = {
        "event_id": "e1",
        "user_id": "u1",
        "type": "impression",
        "ts": 1.7e12,
        "item_id": "i1",
        "session_id": "s1",
        "quantity": 2.0,
        "price": 9.5,
        "category": "shoes",
        "query": "red",
        "marketing_consent": True,
        "rec_id": "r1",
        "position": 3.0,
        "placement": "home",
        "items": ["i1", "i2"],
    }
    assert {f.name for f in fields(Click)} == set(full)
    expected = Click(**{**full, "ts": 1_700_000_000_000, "quantity": 2, "position": 3, "items": ("i1", "i2")})  # type: ignore[arg-type]
    parsed = Click.from_dict(full)
    assert parsed == expected
    assert type(parsed.ts) is int and type(parsed.quantity) is int and type(parsed.position) is int
    minimal = {"event_id": "e2", "user_id": "u1", "type": "view", "ts": 5}
    assert Click.from_dict(minimal) == Click("e2", "u1", "view", 5)
