"""Per-key rate limits: a token bucket per API key, in this server process.

Each replica keeps its own buckets, so behind N replicas a key may send up to N times the
rate. A request refused here never reached a route: clients may retry any call.
"""

from __future__ import annotations

import time
import uuid

__all__ = ["Buckets"]


class Buckets:
    """A token bucket per key on this replica: ``rate`` requests a second on average,
    ``burst`` at once. A long-poll claim is one request, however long it waits."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self._buckets: dict[uuid.UUID | None, tuple[float, float]] = {}

    def wait(self, key: uuid.UUID | None) -> float:
        """Take a token for ``key``: 0 when there was one, else the seconds until one."""
        now = time.monotonic()
        tokens, then = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate
