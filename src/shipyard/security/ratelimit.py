"""An in-memory token-bucket rate limiter for login attempts and similar.

Each key (a client address, a user name) has a bucket of ``capacity`` attempts that refills
continuously at ``capacity / period`` per second. Every operation is O(1) under one lock, and
at most ``max_keys`` buckets are kept (least recently used are dropped), so a flood of
distinct keys cannot exhaust memory. The state is per process: several servers behind a load
balancer each limit on their own, which is the intended trade-off for a login throttle.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from shipyard.errors import Unavailable

__all__ = ["RateDecision", "RateLimited", "RateLimiter"]


class RateLimited(Unavailable):
    """Too many attempts from one key; ``retry_after`` says how many seconds to wait."""


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one attempt: allowed or not, and when the next one would be."""

    allowed: bool
    remaining: int
    retry_after: float


class RateLimiter:
    """Token bucket per key; thread-safe, O(1) per call, bounded memory."""

    def __init__(
        self,
        capacity: int = 5,
        period: float = 60.0,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or period <= 0 or max_keys < 1:
            raise ValueError("capacity and max_keys must be >= 1 and period > 0")
        self.capacity = capacity
        self.period = period
        self._rate = capacity / period  # tokens per second
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, t)

    def _refilled(self, key: str, now: float) -> float:
        tokens, stamp = self._buckets.get(key, (float(self.capacity), now))
        return min(float(self.capacity), tokens + (now - stamp) * self._rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def attempt(self, key: str) -> RateDecision:
        """Spend one attempt for ``key`` if it has one left."""
        with self._lock:
            now = self._clock()
            tokens = self._refilled(key, now)
            if tokens >= 1.0:
                self._store(key, tokens - 1.0, now)
                return RateDecision(True, math.floor(tokens - 1.0), 0.0)
            self._store(key, tokens, now)
            return RateDecision(False, 0, (1.0 - tokens) / self._rate)

    def check(self, key: str) -> None:
        """Spend one attempt or raise :class:`RateLimited` with ``retry_after`` set."""
        decision = self.attempt(key)
        if not decision.allowed:
            wait = math.ceil(decision.retry_after)
            raise RateLimited(
                f"too many attempts: try again in {wait} seconds", retry_after=float(wait)
            )

    def reset(self, key: str) -> None:
        """Forget ``key`` (e.g. after a successful login)."""
        with self._lock:
            self._buckets.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)
