"""What the HTTP front ends (web chat, API) guard the same way: loopback hosts, request size, rate limits.

Framework-free: plain ASGI helpers and the ``limits`` library (an extra of both front ends, imported only
when a limiter is made), so neither front end imports the other.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

MAX_BODY_BYTES = 1_000_000  # a question, a comment and a 50-turn conversation fit many times over

Receive = Callable[[], Awaitable[dict[str, Any]]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``localhost``, ``127.0.0.1``, ``[::1]``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BodyTooLarge(Exception):
    """Raised by :func:`counted_receive` once a request body passes its limit."""


def declared_too_large(scope: dict[str, Any], max_body: int) -> bool:
    """Whether the request's ``Content-Length`` already says it is over ``max_body`` bytes."""
    declared = dict(scope.get("headers") or []).get(b"content-length")
    return declared is not None and declared.isdigit() and int(declared) > max_body


def counted_receive(receive: Receive, max_body: int) -> Receive:
    """``receive`` that raises :class:`BodyTooLarge` once the body read so far is over ``max_body`` bytes
    (for a body sent without, or with a false, ``Content-Length``)."""
    seen = 0

    async def counted() -> dict[str, Any]:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_body:
                raise BodyTooLarge
        return message

    return counted


class RateLimiter:
    """A moving-window limit such as ``"30/minute"``, counted per action and client.

    ``variable`` names the setting in the error a bad rate raises (as ``error``, the caller's own type)."""

    def __init__(self, rate: str, variable: str, error: type[Exception]):
        from limits import parse as parse_limit
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        try:
            self.rate = parse_limit(rate)
        except ValueError:
            raise error(f"{variable}={rate!r} is not a rate such as '30/minute' or '500/day'.") from None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, action: str, client: str) -> bool:
        """Count one ``action`` for ``client``; False once over the limit."""
        return self.limiter.hit(self.rate, action, client)
