"""In-process publish/subscribe with topics such as `user:7`, `video:abc`, `channel:xyz`.

Each subscriber owns a bounded queue. Publishing never waits: a subscriber whose queue
is full has fallen behind and is dropped (its `dropped` reason set, its queue closed, its
`on_drop` callback told), so one slow client can never grow the server's memory.

A published event is a `Message`: a dict that also carries its JSON text, made once on
first use and shared by every subscriber, so a fan-out to 10,000 sockets serialises once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

Event = dict[str, Any]


class Message(dict[str, Any]):
    __slots__ = ("_encoded", "_text")

    @property
    def text(self) -> str:
        try:
            return self._text
        except AttributeError:
            self._text: str = json.dumps(self, separators=(",", ":"))
            return self._text

    def encoded(self, encode: Callable[[str], bytes]) -> bytes:
        """The text in a wire format (e.g. a WebSocket frame), made once per message."""
        try:
            return self._encoded
        except AttributeError:
            self._encoded: bytes = encode(self.text)
            return self._encoded


CLOSED = Message(type="__closed__")


class SmallQueue:
    """The subset of `asyncio.Queue` a subscriber needs, in a fraction of its memory: the
    buffer exists only while events wait, and one future stands for the one reader."""

    __slots__ = ("_items", "_waiter", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[Message] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def get_nowait(self) -> Message:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def put_nowait(self, item: Message) -> None:
        if self._items is None:
            self._items = deque()
        elif len(self._items) >= self.maxsize:
            raise asyncio.QueueFull
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Message:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item


class Listener(Protocol):
    """An optional consumer attached to a subscription (a WebSocket connection)."""

    def offer(self, message: Message) -> bool:
        """Fast path, called while nothing is queued: True if it took the message at once."""

    def queued(self) -> None:
        """Something was queued after all: drain the queue."""

    def dropped(self, reason: str) -> None:
        """The subscription fell behind and was dropped."""


@dataclass(eq=False, slots=True)
class Subscription:
    bus: Bus
    # A tuple, not a set: most subscriptions hold one or two topics, and a set costs
    # four times the memory of a short tuple on each of thousands of sockets.
    topics: tuple[str, ...]
    queue: SmallQueue
    dropped: str | None = None
    listener: Listener | None = None
    # Whose subscription this is, so access can be taken back (Bus.end_topic, end_user).
    user_id: int | None = None
    is_admin: bool = False
    _closed: bool = field(default=False, repr=False)

    async def get(self) -> Message | None:
        """The next event, or None once the subscription is closed or dropped."""
        if self._closed and self.queue.empty():
            return None
        event = await self.queue.get()
        if event is CLOSED:
            self._closed = True
            return None
        return event

    def add_topics(self, topics: Iterable[str]) -> None:
        self.bus._attach(self, set(topics) - set(self.topics))

    def remove_topics(self, topics: Iterable[str]) -> None:
        self.bus._detach(self, set(topics) & set(self.topics))

    def close(self) -> None:
        self.bus.unsubscribe(self)


class Bus:
    def __init__(self, queue_size: int = 256) -> None:
        self._queue_size = queue_size
        self._by_topic: dict[str, set[Subscription]] = defaultdict(set)
        self.published = 0

    def subscribe(self, topics: Iterable[str], queue_size: int | None = None, *,
                  user_id: int | None = None, is_admin: bool = False) -> Subscription:
        # One extra slot so the close marker always fits after a drop.
        size = (queue_size or self._queue_size) + 1
        subscription = Subscription(self, (), SmallQueue(size), user_id=user_id,
                                    is_admin=is_admin)
        self._attach(subscription, set(topics))
        return subscription

    def _attach(self, subscription: Subscription, topics: set[str]) -> None:
        for topic in topics:
            self._by_topic[topic].add(subscription)
        subscription.topics += tuple(sorted(topics))

    def _detach(self, subscription: Subscription, topics: set[str]) -> None:
        for topic in topics:
            subscribers = self._by_topic.get(topic)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._by_topic[topic]
        subscription.topics = tuple(t for t in subscription.topics if t not in topics)

    def unsubscribe(self, subscription: Subscription, reason: str | None = None) -> None:
        self._detach(subscription, set(subscription.topics))
        if reason and subscription.dropped is None:
            subscription.dropped = reason
        if not subscription._closed:
            subscription._closed = True
            try:
                subscription.queue.put_nowait(CLOSED)
            except asyncio.QueueFull:
                pass
            if reason and subscription.listener is not None:
                subscription.listener.dropped(reason)

    def publish(self, topic: str, event: Event) -> int:
        """Delivers to every subscriber of the topic; returns how many got it."""
        self.published += 1
        subscribers = self._by_topic.get(topic)
        if not subscribers:
            return 0
        message = Message(event)
        message["topic"] = topic
        return sum(self._deliver(subscription, message) for subscription in list(subscribers))

    def _deliver(self, subscription: Subscription, message: Message) -> bool:
        queue = subscription.queue
        listener = subscription.listener
        if listener is not None and queue.empty() and listener.offer(message):
            return True
        if queue.qsize() >= queue.maxsize - 1:
            log.info("dropping a subscriber of %s: its queue is full", message["topic"])
            self.unsubscribe(subscription, reason="too slow: events were not read in time")
            return False
        queue.put_nowait(message)
        if listener is not None:
            listener.queued()
        return True

    def end_topic(self, topic: str, event: Event, keep: Callable[[Subscription], bool]) -> int:
        """Takes `topic` away from every subscriber for whom `keep` is false, after telling
        each of them with `event` (the last message they get on it); returns how many."""
        message = Message(event)
        message["topic"] = topic
        ended = 0
        for subscription in list(self._by_topic.get(topic, ())):
            if not keep(subscription):
                self._deliver(subscription, message)
                self._detach(subscription, {topic})
                ended += 1
        return ended

    def end_user(self, user_id: int, reason: str) -> int:
        """Closes every subscription of one user (an account disabled)."""
        mine = {s for subs in self._by_topic.values() for s in subs if s.user_id == user_id}
        for subscription in mine:
            self.unsubscribe(subscription, reason=reason)
        return len(mine)

    def subscriber_count(self, topic: str) -> int:
        return len(self._by_topic.get(topic, ()))

    def close_all(self, reason: str = "server shutting down") -> None:
        for subscription in {s for subs in self._by_topic.values() for s in subs}:
            self.unsubscribe(subscription, reason=reason)
