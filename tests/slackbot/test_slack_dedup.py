"""DeliveryDedup: one winner per delivery, under concurrency, for the TTL."""

from __future__ import annotations

import threading

import pytest

from slackbot.dedup import DeliveryDedup


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_claim_wins_and_any_shared_key_is_a_duplicate():
    dedup = DeliveryDedup()
    assert dedup.claim("event:Ev1", "message:C1:1.0")
    assert not dedup.claim("event:Ev1")  # a retry of the same event
    assert not dedup.claim("event:Ev2", "message:C1:1.0")  # the same message under another event id
    assert dedup.claim("event:Ev3", "message:C1:2.0")
    assert dedup.claim(None, "")  # nothing to identify it by: never dropped


def test_concurrent_claims_have_exactly_one_winner():
    dedup = DeliveryDedup()
    barrier = threading.Barrier(16)
    wins = []

    def deliver() -> None:
        barrier.wait()
        wins.append(dedup.claim("event:EvSame", "message:C1:1.0"))

    threads = [threading.Thread(target=deliver) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 15 + [True]


def test_claims_expire_after_the_ttl_and_memory_is_bounded():
    clock = FakeClock()
    dedup = DeliveryDedup(ttl_s=300, max_keys=3, clock=clock)
    assert dedup.claim("a")
    clock.now += 299
    assert "a" in dedup and not dedup.claim("a")
    clock.now += 2
    assert "a" not in dedup and dedup.claim("a")
    for key in "bcd":
        dedup.claim(key)
    assert len(dedup) == 3 and "a" not in dedup  # the oldest key made room


def test_invalid_limits_are_rejected():
    with pytest.raises(ValueError):
        DeliveryDedup(ttl_s=0)


# --- shared stores: SQLite (processes on one machine, restarts) and a real redis-server ---------------


def _claim_in_a_process(path: str, key: str, start, results) -> None:
    from slackbot.dedup import SqliteDedup

    dedup = SqliteDedup(path)
    start.wait()
    results.put(dedup.claim(key, f"{key}:message"))


def test_sqlite_claims_are_shared_by_every_process_on_the_file(tmp_path):
    import multiprocessing

    from slackbot.dedup import SqliteDedup

    path = tmp_path / "deliveries.sqlite3"
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=_claim_in_a_process, args=(str(path), "event:EvRace", start, results)) for _ in range(4)]
    for process in processes:
        process.start()
    start.set()
    outcomes = sorted(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(30)
    assert outcomes == [False, False, False, True]
    restarted = SqliteDedup(path)  # a bot started later sees the claim
    assert not restarted.claim("event:EvRace") and restarted.claim("event:EvNew")


def test_sqlite_claims_expire_after_the_ttl(tmp_path):
    from slackbot.dedup import SqliteDedup

    clock = FakeClock()
    dedup = SqliteDedup(tmp_path / "d.sqlite3", ttl_s=60, clock=clock)
    assert dedup.claim("event:Ev1", "message:C1:1.0")
    assert not dedup.claim("message:C1:1.0")
    clock.now += 61
    assert dedup.claim("message:C1:1.0")


def test_redis_claims_are_shared_by_replicas_and_expire(redis_url):
    import time

    from slackbot.dedup import RedisDedup, make_dedup

    first, second = RedisDedup(redis_url, ttl_s=1.0), make_dedup(redis_url, None, 1.0)
    winners = []
    threads = [threading.Thread(target=lambda d=d: winners.append(d.claim("event:EvR", "message:C:1"))) for d in (first, second) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(winners) == [False] * 7 + [True]
    assert not second.claim("message:C:1")
    time.sleep(1.3)
    assert second.claim("message:C:1")


def test_an_unreachable_redis_is_a_clear_error():
    from rag.errors import KQAError
    from slackbot.dedup import make_dedup
    from tests.support.processes import free_port

    with pytest.raises(KQAError, match=r"Cannot reach Redis at redis://127\.0\.0\.1:\d+/0"):
        make_dedup(f"redis://:hunter2@127.0.0.1:{free_port()}/0", None, 60)
