"""Who may use the API, and how much: API keys, per-key rate limits, request size, public error text.

Keys come from ``KQA_API_KEYS`` (comma-separated) and are sent as ``Authorization: Bearer KEY``. Without
keys the service only starts on a loopback address, where every caller is the machine's own user (and,
as in the web chat, is not rate limited). ``/healthz`` and the OpenAPI docs need no key; ``/v1/*`` and
``/mcp`` do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from rag.errors import KQAError
from rag.http_guard import (
    MAX_BODY_BYTES,
    BodyTooLarge,
    RateLimiter,
    counted_receive,
    declared_too_large,
    is_loopback,
)
from rag.redaction import redact
from rag.settings import Settings

PROTECTED = ("/v1", "/mcp")
_SERVER_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.\-]+/)+[\w.\-]*")  # /a/b/c, not the path in a URL


class ApiAccessError(KQAError):
    """The API's access settings are missing or wrong; the message says what to set."""


class RateLimited(KQAError):
    """A key (or address) asked more than ``KQA_API_RATE_LIMIT`` allows."""


class ApiAccess:
    """The access policy of one API process (see the module doc). Raises :class:`ApiAccessError`."""

    def __init__(self, settings: Settings, host: str):
        raw = settings.api_keys.get_secret_value() if settings.api_keys else ""
        self.keys = [k.strip() for k in raw.split(",") if k.strip()]
        self.host = host
        self.settings = settings
        if not self.keys and not is_loopback(host):
            raise ApiAccessError(
                f"Refusing to serve the API on {host} without API keys: anyone who can reach it could ask "
                "questions and call the MCP tools. Set KQA_API_KEYS (comma-separated; clients send "
                "'Authorization: Bearer KEY'), or serve on 127.0.0.1."
            )
        self.limiter = RateLimiter(settings.api_rate_limit, "KQA_API_RATE_LIMIT", ApiAccessError)

    def caller(self, authorization: str | None) -> str | None:
        """The caller's identity for rate limits (a key's fingerprint), or None when the key is wrong."""
        if not self.keys:
            return "local"
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        for key in self.keys:
            if hmac.compare_digest(token.encode(), key.encode()):
                return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]
        return None

    def allow(self, caller: str) -> None:
        """Count one question for ``caller``; raises :class:`RateLimited` over ``KQA_API_RATE_LIMIT``."""
        if not self.keys:  # then the host is loopback (see __init__): the machine's own user
            return
        if not self.limiter.hit("ask", caller):
            raise RateLimited(
                f"Too many requests ({self.settings.api_rate_limit} per key); wait a minute and try again."
            )

    def secrets(self) -> list[str]:
        openai_key = self.settings.openai_api_key.get_secret_value()
        return [*self.keys, openai_key]


def public_message(message: str, secrets: list[str]) -> str:
    """``message`` as a client may see it: no secret, no server path (``/srv/kqa/chroma`` -> ``<path>``)."""
    return _SERVER_PATH.sub("<path>", redact(message, secrets))


class Guard:
    """ASGI middleware: 413 over ``max_body`` bytes, 401 without a valid key on ``/v1`` and ``/mcp``.

    Pure ASGI (not BaseHTTPMiddleware) so streamed answers pass through unbuffered and a client's
    disconnect still reaches the endpoint. The caller's identity goes to ``scope["state"]["caller"]``."""

    def __init__(self, app, access: ApiAccess, max_body: int = MAX_BODY_BYTES):
        self.app, self.access, self.max_body = app, access, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        path = scope.get("path", "")
        if path.startswith(PROTECTED):
            caller = self.access.caller(headers.get(b"authorization", b"").decode("latin-1"))
            if caller is None:
                return await send_error(
                    send, 401, "Missing or wrong API key: send 'Authorization: Bearer KEY' with one of the "
                    "server's KQA_API_KEYS.", "authentication_error", "invalid_api_key",
                    extra_headers=[(b"www-authenticate", b"Bearer")],
                )  # fmt: skip
            scope.setdefault("state", {})["caller"] = caller
        if declared_too_large(scope, self.max_body):
            return await send_error(send, 413, _too_large(self.max_body), "invalid_request_error", "too_large")
        started = False

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive(receive, self.max_body), tracked_send)
        except BodyTooLarge:
            if not started:
                await send_error(send, 413, _too_large(self.max_body), "invalid_request_error", "too_large")


def _too_large(limit: int) -> str:
    return f"The request body is over {limit:,} bytes; send a shorter question or history."


def error_body(message: str, kind: str, code: str) -> dict:
    """The OpenAI-style error object every endpoint returns: ``{"error": {"message", "type", "code"}}``."""
    return {"error": {"message": message, "type": kind, "code": code}}


async def send_error(send, status: int, message: str, kind: str, code: str, extra_headers=()) -> None:
    body = json.dumps(error_body(message, kind, code)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
