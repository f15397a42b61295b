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
