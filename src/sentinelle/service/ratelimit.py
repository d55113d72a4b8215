"""Per-key token-bucket rate limiting (per service instance).

Each key has a bucket of ``burst`` tokens refilled at ``rate`` tokens per second;
a request takes one token or is refused with the seconds until one is available
(sent as ``Retry-After``). Buckets live in the memory of one instance: with N
instances behind a load balancer a key may reach up to N x its rate. That keeps
the hot path free of database writes; put a shared limiter in the load balancer
if a strict global rate is needed.
"""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """Thread-safe token buckets keyed by an id (an API key id, or a client address)."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self._buckets: dict[object, tuple[float, float]] = {}  # id -> (tokens, last time)
        self._lock = threading.Lock()
        self.max_buckets = max_buckets

    def take(self, bucket: object, rate: float, burst: float) -> float:
        """Take one token. Returns 0.0 when allowed, else seconds to wait (> 0).

        ``rate <= 0`` means unlimited.
        """
        if rate <= 0:
            return 0.0
        burst = max(1.0, burst)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(bucket, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._set(bucket, tokens - 1.0, now)
                return 0.0
            self._set(bucket, tokens, now)
            return (1.0 - tokens) / rate

    def _set(self, bucket: object, tokens: float, now: float) -> None:
        if bucket not in self._buckets and len(self._buckets) >= self.max_buckets:
            self._buckets.clear()  # bounded memory; worst case: buckets refill early
        self._buckets[bucket] = (tokens, now)


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
