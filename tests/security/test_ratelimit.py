"""The token-bucket login throttle."""

from __future__ import annotations

import pytest

from shipyard.security.ratelimit import RateLimited, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_empties_then_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(capacity=3, period=30.0, clock=clock)
    for _ in range(3):
        limiter.check("1.2.3.4")
    with pytest.raises(RateLimited) as caught:
        limiter.check("1.2.3.4")
    assert caught.value.retry_after == 10.0  # one attempt per 10 s
    limiter.check("5.6.7.8")  # other keys are unaffected
    clock.now += 10.0
    limiter.check("1.2.3.4")
    with pytest.raises(RateLimited):
        limiter.check("1.2.3.4")


def test_reset_forgets_a_key_and_memory_is_bounded() -> None:
    limiter = RateLimiter(capacity=1, period=60.0, max_keys=100, clock=Clock())
    limiter.check("k")
    limiter.reset("k")
    limiter.check("k")
    for i in range(1000):
        limiter.attempt(f"flood-{i}")
    assert len(limiter) == 100


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        RateLimiter(capacity=0)
