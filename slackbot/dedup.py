"""Exactly-once delivery: remembers which Slack deliveries were already taken on.

Slack retries an event it thinks went unacknowledged (``X-Slack-Retry-Num`` 1-3, within about five
minutes) and may deliver one message twice (as ``app_mention`` and ``message``). Each delivery is claimed
*before* any work starts, under one lock, on every key that identifies it (the ``event_id`` and the
message's channel+ts), so a retry that arrives while the first delivery is still generating finds the
claim and is dropped. The memory lives in the process: after a restart a retry is answered once more,
which is right, because the restart most likely killed the first attempt.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class DeliveryDedup:
    """A thread-safe set of keys that forgets each key ``ttl_s`` seconds after it was claimed."""

    def __init__(
        self, ttl_s: float = 3600.0, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl_s <= 0 or max_keys <= 0:
            raise ValueError("ttl_s and max_keys must be positive")
        self._ttl_s = ttl_s
        self._max_keys = max_keys
        self._clock = clock
        self._claimed: OrderedDict[str, float] = OrderedDict()  # key -> claim time, oldest first
        self._lock = threading.Lock()

    def claim(self, *keys: str | None) -> bool:
        """Claim every non-empty key at once: True for the first delivery, False if any key is taken."""
        wanted = [k for k in keys if k]
        if not wanted:
            return True  # nothing identifies the delivery: it cannot be deduplicated
        with self._lock:
            now = self._clock()
            self._forget_expired(now)
            if any(k in self._claimed for k in wanted):
                return False
            for key in wanted:
                self._claimed[key] = now
            while len(self._claimed) > self._max_keys:
                self._claimed.popitem(last=False)
            return True

    def __contains__(self, key: str) -> bool:
        with self._lock:
            self._forget_expired(self._clock())
            return key in self._claimed

    def __len__(self) -> int:
        with self._lock:
            self._forget_expired(self._clock())
            return len(self._claimed)

    def _forget_expired(self, now: float) -> None:
        while self._claimed:
            key, claimed_at = next(iter(self._claimed.items()))
            if now - claimed_at < self._ttl_s:
                return
            del self._claimed[key]
