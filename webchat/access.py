"""Who may use the web chat, and how much: sign-in, admins, per-client rate limits, request limits.

Three ways in, chosen by settings:

* **open** (no setting): only on a loopback address, where everyone is the machine's own user (and
  admin). Bound to any other address, the server refuses to start unless ``KQA_WEB_OPEN_ACCESS=true``
  says "no sign-in" on purpose (logged as a warning; nobody is admin then).
* **users file** (``KQA_WEB_USERS_FILE``): Gradio's sign-in page against ``name:hash[:admin]`` lines,
  hashes from ``python -m webchat.access hash`` (PBKDF2-SHA256). Every route answers 401 without a
  session.
* **trusted proxy** (``KQA_WEB_PROXY_USER_HEADER``, e.g. ``X-Forwarded-User`` from oauth2-proxy): the
  user is the header's value, set by the proxy in front; requests without it get 401. Admins are
  ``KQA_WEB_ADMINS`` (comma-separated names). Bind the app where only the proxy can reach it.

Admin actions (re-ingest, the status view's paths) need an admin. Asking and rating are limited per
client (user, else address) by ``KQA_WEB_RATE_LIMIT`` (the ``limits`` library's moving window); request
bodies are capped and Gradio's upload route is closed, since the page takes no files.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import logging
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import KQAError
from rag.http_guard import (
    MAX_BODY_BYTES,
    BodyTooLarge,
    RateLimiter,
    counted_receive,
    declared_too_large,
    is_loopback,
)
from rag.settings import Settings
from rag.version import add_version_argument

log = logging.getLogger(__name__)

HASH_SCHEME = "pbkdf2_sha256"
HASH_ITERATIONS = 240_000
CLOSED_ROUTES = ("/gradio_api/upload", "/upload")  # the page has no file input


class AccessError(KQAError):
    """The web chat's access settings are missing or wrong; the message says what to set."""


@dataclass(frozen=True)
class User:
    name: str
    password_hash: str
    admin: bool = False


def hash_password(password: str, salt: bytes | None = None, iterations: int = HASH_ITERATIONS) -> str:
    """``pbkdf2_sha256$iterations$salt$hash`` (base64), the form a users file holds."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "$".join([HASH_SCHEME, str(iterations), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, iterations, salt, digest = encoded.split("$")
        if scheme != HASH_SCHEME:
            return False
        expected = base64.b64decode(digest)
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def load_users(path: Path) -> dict[str, User]:
    """``name:hash[:admin]`` per line (``#`` comments and blank lines skipped); errors name the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AccessError(f"Cannot read KQA_WEB_USERS_FILE {path}: {exc.strerror or exc}.") from None
    users: dict[str, User] = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        password_hash, _, role = rest.partition(":")
        if not name or not password_hash.startswith(HASH_SCHEME + "$") or role not in ("", "admin"):
            raise AccessError(
                f"{path}:{number}: expected 'name:{HASH_SCHEME}$...[:admin]' "
                "(make a line with: python -m webchat.access hash NAME [--admin])."
            )
        users[name] = User(name, password_hash, role == "admin")
    if not users:
        raise AccessError(f"KQA_WEB_USERS_FILE {path} lists no users (python -m webchat.access hash NAME).")
    return users


class Access:
    """The access policy of one web chat process (see the module doc)."""

    def __init__(self, settings: Settings, host: str):
        self.settings = settings
        self.host = host
        self.users = load_users(settings.web_users_file) if settings.web_users_file else {}
        self.header = (settings.web_proxy_user_header or "").strip()
        self.admins = {n.strip() for n in settings.web_admins.split(",") if n.strip()}
        if self.users and self.header:
            raise AccessError("Set KQA_WEB_USERS_FILE or KQA_WEB_PROXY_USER_HEADER, not both.")
        self.mode = "users" if self.users else "proxy" if self.header else "open"
        if self.mode == "open" and not is_loopback(host):
            if not settings.web_open_access:
                raise AccessError(
                    f"Refusing to serve the web chat on {host} without sign-in: anyone who can reach it could "
                    "ask, rate and re-ingest. Set KQA_WEB_USERS_FILE (a users file; make lines with "
                    "`python -m webchat.access hash NAME --admin`), or KQA_WEB_PROXY_USER_HEADER behind a "
                    "sign-in proxy such as oauth2-proxy, or KQA_WEB_OPEN_ACCESS=true to serve it open on purpose."
                )
            log.warning("web chat open to anyone who can reach %s (KQA_WEB_OPEN_ACCESS=true); nobody is admin", host)
        self.limiter = RateLimiter(settings.web_rate_limit, "KQA_WEB_RATE_LIMIT", AccessError)

    # --- who -------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> bool:
        user = self.users.get(username)
        return bool(user) and verify_password(password, user.password_hash)

    def proxy_user(self, request: Any) -> str | None:
        """Gradio's auth dependency in proxy mode: the signed-in user the proxy names, or None (401)."""
        value = (request.headers.get(self.header) or "").strip()
        return value[:200] or None

    def launch_kwargs(self) -> dict[str, Any]:
        if self.mode == "users":
            return {"auth": self.authenticate, "auth_message": "Sign in to KubeCon Recap QA."}
        if self.mode == "proxy":
            return {"auth_dependency": self.proxy_user}
        return {}

    def username(self, request: Any) -> str:
        return str(getattr(request, "username", None) or "") if request is not None else ""

    def is_admin(self, request: Any) -> bool:
        if self.mode == "open":
            return is_loopback(self.host)  # the machine's own user; nobody when served open on purpose
        name = self.username(request)
        if self.mode == "users":
            return bool(name) and self.users.get(name, User("", "")).admin
        return name in self.admins

    # --- how much --------------------------------------------------------------------------
    def client(self, request: Any) -> str:
        name = self.username(request)
        if name:
            return f"user:{name}"
        client = getattr(request, "client", None)
        return f"addr:{getattr(client, 'host', '') or 'unknown'}"

    def allow(self, action: str, request: Any) -> None:
        """Count one ``action`` for the request's client; raises when over ``KQA_WEB_RATE_LIMIT``.

        Open on loopback, every request is the machine's own user (load tests, a laptop): not limited."""
        if self.mode == "open" and is_loopback(self.host):
            return
        if not self.limiter.hit(action, self.client(request)):
            raise KQAError(
                f"Too many requests ({self.settings.web_rate_limit} per client); wait a minute and try again."
            )


class RequestLimits:
    """ASGI middleware: 413 for bodies over ``max_body`` bytes, 404 for the closed upload routes."""

    def __init__(self, app: Any, max_body: int = MAX_BODY_BYTES, closed: tuple[str, ...] = CLOSED_ROUTES):
        self.app, self.max_body, self.closed = app, max_body, closed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if any(scope.get("path", "").rstrip("/").endswith(route) for route in self.closed):
            return await _plain(send, 404, b"Not found: this app takes no uploads.")
        if declared_too_large(scope, self.max_body):
            return await _plain(send, 413, b"Request too large.")
        try:
            await self.app(scope, counted_receive(receive, self.max_body), send)
        except BodyTooLarge:
            await _plain(send, 413, b"Request too large.")


async def _plain(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webchat.access",
        description="Print a users-file line (name:hash[:admin]) for KQA_WEB_USERS_FILE. "
        "The password is read from the terminal, or from stdin when it is not a terminal.",
    )
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("hash", help="hash a password for a user")
    make.add_argument("name")
    make.add_argument("--admin", action="store_true", help="the user may re-ingest and see paths")
    args = parser.parse_args(argv)
    if ":" in args.name or not args.name.strip():
        parser.error("the user name must be non-empty and contain no ':'")
    password = getpass.getpass(f"password for {args.name}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        parser.error("use a password of at least 8 characters")
    print(f"{args.name}:{hash_password(password)}" + (":admin" if args.admin else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
