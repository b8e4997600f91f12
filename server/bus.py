"""In-process publish/subscribe with topics such as `user:7`, `video:abc`, `channel:xyz`.

Each subscriber owns a bounded queue. Publishing never waits: a subscriber whose queue
is full has fallen behind and is dropped (its `dropped` reason set, its queue closed), so
one slow client can never grow the server's memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Event = dict[str, Any]
_CLOSED: Event = {"type": "__closed__"}


@dataclass(eq=False)
class Subscription:
    bus: Bus
    topics: set[str]
    queue: asyncio.Queue[Event]
    dropped: str | None = None
    _closed: bool = field(default=False, repr=False)

    async def get(self) -> Event | None:
        """The next event, or None once the subscription is closed or dropped."""
        if self._closed and self.queue.empty():
            return None
        event = await self.queue.get()
        if event is _CLOSED:
            self._closed = True
            return None
        return event

    def add_topics(self, topics: Iterable[str]) -> None:
        self.bus._attach(self, set(topics) - self.topics)

    def close(self) -> None:
        self.bus.unsubscribe(self)


class Bus:
    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._by_topic: dict[str, set[Subscription]] = defaultdict(set)
        self.published = 0

    def subscribe(self, topics: Iterable[str], queue_size: int | None = None) -> Subscription:
        # One extra slot so the close marker always fits after a drop.
        size = (queue_size or self._queue_size) + 1
        subscription = Subscription(self, set(), asyncio.Queue(maxsize=size))
        self._attach(subscription, set(topics))
        return subscription

    def _attach(self, subscription: Subscription, topics: set[str]) -> None:
        for topic in topics:
            self._by_topic[topic].add(subscription)
        subscription.topics |= topics

    def unsubscribe(self, subscription: Subscription, reason: str | None = None) -> None:
        for topic in subscription.topics:
            subscribers = self._by_topic.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_topic[topic]
        subscription.topics = set()
        if reason and subscription.dropped is None:
            subscription.dropped = reason
        if not subscription._closed:
            subscription._closed = True
            try:
                subscription.queue.put_nowait(_CLOSED)
            except asyncio.QueueFull:
                pass

    def publish(self, topic: str, event: Event) -> int:
        """Delivers to every subscriber of the topic; returns how many got it."""
        self.published += 1
        message = {**event, "topic": topic}
        delivered = 0
        for subscription in list(self._by_topic.get(topic, ())):
            if subscription.queue.qsize() >= subscription.queue.maxsize - 1:
                log.info("dropping a subscriber of %s: its queue is full", topic)
                self.unsubscribe(subscription, reason="too slow: events were not read in time")
                continue
            subscription.queue.put_nowait(message)
            delivered += 1
        return delivered

    def subscriber_count(self, topic: str) -> int:
        return len(self._by_topic.get(topic, ()))

    def close_all(self, reason: str = "server shutting down") -> None:
        for subscription in {s for subs in self._by_topic.values() for s in subs}:
            self.unsubscribe(subscription, reason=reason)
