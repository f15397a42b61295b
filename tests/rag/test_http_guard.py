"""rag.http_guard: the loopback, body-size and rate-limit pieces the web chat and the API share."""

from __future__ import annotations

import pytest

from rag.http_guard import BodyTooLarge, RateLimiter, counted_receive, declared_too_large, is_loopback


@pytest.mark.parametrize(
    "host, expected",
    [("localhost", True), ("127.0.0.1", True), ("[::1]", True), ("0.0.0.0", False), ("example.com", False)],
)
def test_is_loopback(host, expected):
    assert is_loopback(host) is expected


def test_declared_length_over_the_limit():
    assert declared_too_large({"headers": [(b"content-length", b"11")]}, 10)
    assert not declared_too_large({"headers": [(b"content-length", b"10")]}, 10)
    assert not declared_too_large({"headers": [(b"content-length", b"x")]}, 10)
    assert not declared_too_large({}, 10)


def test_counted_receive_raises_once_the_body_passes_the_limit():
    chunks = iter([{"type": "http.request", "body": b"12345"}, {"type": "http.request", "body": b"678"}])

    async def receive():
        return next(chunks)

    async def read(limit):
        counted = counted_receive(receive, limit)
        return [await counted(), await counted()]

    with pytest.raises(BodyTooLarge):
        read(7).send(None)  # nothing here waits on I/O: one step runs it to the end


def test_rate_limiter_counts_per_action_and_client_and_names_a_bad_setting():
    limiter = RateLimiter("2/minute", "KQA_X", ValueError)
    assert [limiter.hit("ask", "a") for _ in range(3)] == [True, True, False]
    assert limiter.hit("rate", "a") and limiter.hit("ask", "b")
    with pytest.raises(ValueError, match="KQA_X='often'"):
        RateLimiter("often", "KQA_X", ValueError)
