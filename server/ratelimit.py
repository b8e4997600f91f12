"""Token-bucket rate limits per client address and per user.

Over the limit the answer is 429 with `Retry-After` (RFC 9110 section 10.2.3) and the
`RateLimit-*` fields of the IETF httpapi rate-limit draft.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from typing import NamedTuple


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class Verdict(NamedTuple):
    # A tuple, not a dataclass: one is made for every request, and cheaply.
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


_UNLIMITED = Verdict(True, 0, 0, 0)


class RateLimiter:
    """Buckets live in an LRU map so a flood of addresses cannot grow memory without bound."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_keys = max_keys

    def hit(self, key: str, per_minute: int, cost: float = 1.0) -> Verdict:
        if per_minute <= 0:
            return _UNLIMITED
        rate = per_minute / 60.0
        at = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(per_minute), at)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(per_minute), bucket.tokens + (at - bucket.updated) * rate)
            bucket.updated = at
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            reset = math.ceil((per_minute - bucket.tokens) / rate)
            return Verdict(True, per_minute, int(bucket.tokens), reset)
        wait = math.ceil((cost - bucket.tokens) / rate)
        return Verdict(False, per_minute, 0, max(1, wait))
