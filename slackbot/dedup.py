"""Exactly-once delivery: remembers which Slack deliveries were already taken on.

Slack retries an event it thinks went unacknowledged (``X-Slack-Retry-Num`` 1-3, within about five
minutes) and may deliver one message twice (as ``app_mention`` and ``message``). Each delivery is claimed
*before* any work starts, atomically, on every key that identifies it (the ``event_id`` and the message's
channel+ts), so a retry that arrives while the first delivery is still generating finds the claim and is
dropped.

The claims live in a store every bot process shares (:func:`make_dedup`): SQLite under ``KQA_HOME`` by
default (processes on one machine, and a restarted bot, see each other's claims), Redis when
``KQA_SLACK_DEDUP_URL=redis://...`` (replicas on several machines), or the process's memory
(``KQA_SLACK_DEDUP_URL=memory``, for tests and one-off runs).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Protocol

from rag.errors import KQAError
from rag.redaction import safe_url


class Dedup(Protocol):
    def claim(self, *keys: str | None) -> bool:
        """Claim every non-empty key at once: True for the first delivery, False if any key is taken."""


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


class SqliteDedup:
    """Claims in one SQLite file, shared by every process that opens it (one transaction per claim)."""

    def __init__(self, path: Path, ttl_s: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self.path, self._ttl_s, self._clock = Path(path), ttl_s, clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, claimed_at REAL NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def claim(self, *keys: str | None) -> bool:
        wanted = list(dict.fromkeys(k for k in keys if k))
        if not wanted:
            return True
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            try:
                now = self._clock()
                db.execute("DELETE FROM claims WHERE claimed_at <= ?", (now - self._ttl_s,))
                marks = ",".join("?" * len(wanted))
                taken = db.execute(f"SELECT 1 FROM claims WHERE key IN ({marks}) LIMIT 1", wanted).fetchone()
                if not taken:
                    db.executemany("INSERT INTO claims VALUES (?, ?)", [(k, now) for k in wanted])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return not taken


_CLAIM_SCRIPT = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do redis.call('SET', key, '1', 'PX', ARGV[1]) end
return 1
"""


class RedisDedup:
    """Claims in Redis (a Lua script checks and sets every key atomically; Redis expires them)."""

    def __init__(self, url: str, ttl_s: float = 3600.0, prefix: str = "kqa:slack:claim:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise KQAError(
                f"Cannot reach Redis at {safe_url(url)} for Slack delivery de-duplication ({type(exc).__name__}); "
                "start it, fix KQA_SLACK_DEDUP_URL, or unset it to use SQLite under KQA_HOME."
            ) from None
        self._script = self._redis.register_script(_CLAIM_SCRIPT)
        self._ttl_ms, self._prefix = int(ttl_s * 1000), prefix

    def claim(self, *keys: str | None) -> bool:
        wanted = list(dict.fromkeys(k for k in keys if k))
        if not wanted:
            return True
        return bool(self._script(keys=[self._prefix + k for k in wanted], args=[self._ttl_ms]))


def make_dedup(url: str | None, home: Path, ttl_s: float) -> Dedup:
    """The claim store ``KQA_SLACK_DEDUP_URL`` names: ``redis://…``, ``memory``, ``sqlite:///path``, or
    (unset) SQLite at ``<home>/slack-deliveries.sqlite3``."""
    url = (url or "").strip()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisDedup(url, ttl_s)
    if url == "memory":
        return DeliveryDedup(ttl_s=ttl_s)
    if url.startswith("sqlite:///"):
        return SqliteDedup(Path(url.removeprefix("sqlite:///")), ttl_s)
    if url:
        raise KQAError(f"KQA_SLACK_DEDUP_URL={url!r}: expected redis://host:port/db, sqlite:///path or memory.")
    return SqliteDedup(home / "slack-deliveries.sqlite3", ttl_s)

