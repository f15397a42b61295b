"""Transports: HTTP mode (bolt's WSGI adapter on a threaded stdlib server) and Socket Mode.

HTTP mode serves ``POST <events_path>`` (events, slash commands and interactivity all go there) and
``GET /healthz``. bolt verifies every request's signature and timestamp before any listener runs and
answers 401 otherwise. For production behind gunicorn, :func:`wsgi_app` is the WSGI callable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from slackbot.bot import SlackBot

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller; refuse to buffer anything bigger


def wsgi_app(bot: SlackBot, events_path: str = "/slack/events") -> Callable:
    """The bot as a WSGI application (``gunicorn 'module:api'``)."""
    bolt_handler = SlackRequestHandler(bot.app, path=events_path)

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in ("GET", "HEAD"):
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            start_response("413 Payload Too Large", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"payload too large\n"]
        return bolt_handler(environ, start_response)

    return application


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per request: a slow request never delays Slack's 3-second acknowledgement of another."""

    daemon_threads = True
    allow_reuse_address = True


class _LoggingRequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        log.debug("%s - " + format, self.address_string(), *args)


class HTTPTransport:
    """The bot on ``host:port`` (port 0 picks a free one; see :attr:`port`)."""

    def __init__(
        self, bot: SlackBot, host: str = "0.0.0.0", port: int = 3000, events_path: str = "/slack/events"
    ):
        self.bot = bot
        self.events_path = events_path
        self._server = make_server(
            host,
            port,
            wsgi_app(bot, events_path),
            server_class=_ThreadingWSGIServer,
            handler_class=_LoggingRequestHandler,
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}{self.events_path}"

    def serve_forever(self) -> None:
        log.info("Slack bot listening (HTTP mode) on %s", self.url)
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> HTTPTransport:
        """Serve in a background thread (tests, embedding)."""
        self._thread = threading.Thread(target=self.serve_forever, name="kqa-slack-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.bot.close(wait=True)


class SocketModeTransport:
    """The bot over a Socket Mode WebSocket (no public URL needed)."""

    def __init__(self, bot: SlackBot, app_token: str):
        self.bot = bot
        self._handler = SocketModeHandler(bot.app, app_token=app_token)
        self._stopped = threading.Event()

    def start(self) -> SocketModeTransport:
        self._handler.connect()
        log.info("Slack bot connected (Socket Mode)")
        return self

    def serve_forever(self) -> None:
        self.start()
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()
        self._handler.close()
        self.bot.close(wait=True)
