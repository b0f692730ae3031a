"""Which of this worker's users watch an item (they saw it: price-drop and back-in-stock triggers).

A user's watch list lives in its state, capped at 20 items. The index follows each list exactly,
forgetting the items a user no longer watches, so it stays within users x 20 entries whatever item
ids the traffic names (it used to keep every item any user had ever seen).
"""

from __future__ import annotations

from streams.core.state import UserState


class WatchIndex:
    def __init__(self) -> None:
        self._users: dict[str, set[str]] = {}  # item -> users watching it
        self._items: dict[str, set[str]] = {}  # user -> items it watches

    def note(self, state: UserState) -> None:
        """Make the index agree with this (new or stored) state's watch list."""
        user = state.user_id
        now = set(state.watch)
        before = self._items.get(user, set())
        for item in before - now:
            watching = self._users[item]
            watching.discard(user)
            if not watching:
                del self._users[item]
        for item in now - before:
            self._users.setdefault(item, set()).add(user)
        if now:
            self._items[user] = now
        else:
            self._items.pop(user, None)

    def users(self, item_id: str) -> set[str]:
        return self._users.get(item_id, set())

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._users

    def __len__(self) -> int:
        return sum(len(users) for users in self._users.values())
