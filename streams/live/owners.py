"""Which worker of the group owns a partition, and where its HTTP API answers.

Each worker's consumer carries its advertised URL as its client id, so the group's description
(one DescribeGroups request) maps every assigned partition to a URL. Answers are kept for a moment:
an HTTP request does not cost a broker round trip each, and a stale answer is refreshed as soon as
it names this worker for a partition this worker does not hold (right after a takeover).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import KafkaException

log = logging.getLogger(__name__)

KEEP_SECONDS = 1.0


class GroupAdmin(Protocol):  # confluent_kafka.admin.AdminClient's part used here
    def describe_consumer_groups(self, group_ids: list[str], **kwargs: Any) -> Any: ...


class PartitionOwners:
    def __init__(
        self,
        admin: GroupAdmin,
        group_id: str,
        topic: str,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 5.0,
    ) -> None:
        self._admin = admin
        self.group_id = group_id
        self.topic = topic  # an input topic: its partition p is owned with every input's p
        self._clock = clock
        self._timeout = timeout
        self._owners: dict[int, str] = {}
        self._asked_at: float | None = None

    def owner(self, partition: int, fresh: bool = False) -> str | None:
        """The URL of the worker owning `partition` (None: nobody, or the group is unknown)."""
        now = self._clock()
        if fresh or self._asked_at is None or now - self._asked_at >= KEEP_SECONDS:
            self._owners = self._describe()
            self._asked_at = now
        return self._owners.get(partition)

    def _describe(self) -> dict[int, str]:
        try:
            future = self._admin.describe_consumer_groups([self.group_id], request_timeout=self._timeout)[
                self.group_id
            ]
            group = future.result(timeout=self._timeout)
        except (KafkaException, TimeoutError) as exc:
            log.warning("group %s not described: %s", self.group_id, exc)
            return {}
        owners = {}
        for member in group.members:
            assignment = member.assignment
            for tp in assignment.topic_partitions if assignment is not None else ():
                if tp.topic == self.topic:
                    owners[tp.partition] = member.client_id
        return owners
