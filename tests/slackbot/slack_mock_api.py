"""A mock Slack Web API: a real HTTP server on loopback (like slack_bolt's tests/mock_web_api_server).

It records every call (method, parameters, headers, time), keeps the messages the bot posts so that
``conversations.replies`` returns a real thread, enforces the Slack limits the bot must respect (50 blocks,
3,000 characters per text object) and can be told to fail the next calls of a method: HTTP 429 with
``Retry-After`` or a Slack error such as ``channel_not_found``. ``/response/<name>`` plays a slash
command's ``response_url``. Tests wait on recorded calls with a timeout instead of sleeping.

The AI-app methods are shaped as Slack's method reference gives them: ``assistant.threads.setStatus``
(``channel_id``, ``thread_ts``, ``status``; "" clears), ``.setTitle`` (``title``), ``.setSuggestedPrompts``
(``prompts``: 1-4 ``{title, message}``, optional ``title``), and the streaming trio: ``chat.startStream``
(``channel``, ``thread_ts``; outside a DM ``recipient_user_id`` and ``recipient_team_id``), then
``chat.appendStream`` (``channel``, ``ts``, ``markdown_text`` or ``chunks``, at most 12,000 characters)
and ``chat.stopStream`` (optional final text and ``blocks``). A streamed message only grows: each call's
text is appended, and :meth:`MockSlackAPI.stream_texts` gives the text after every call.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BOT_TOKEN = "xoxb-1111-2222-mocktokenvalue"
APP_TOKEN = "xapp-1-A0KQA0001-3333-mockapptokenvalue"
BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T0TEST01"


@dataclass
class Call:
    method: str  # Web API method, or "response_url:<name>"
    params: dict
    headers: dict
    at: float  # time.monotonic() when received
    status: int = 200  # HTTP status the mock answered
    ok: bool = True  # the body's "ok" (False for Slack errors, which come with HTTP 200)


@dataclass
class Fault:
    status: int = 200
    error: str = ""
    retry_after: int | None = None


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    messages: dict[str, list[dict]] = field(default_factory=dict)  # channel -> messages
    next_ts: int = 1_700_000_000_000_100
    statuses: dict[tuple[str, str], str] = field(default_factory=dict)  # (channel, thread_ts) -> status


def _text_objects(block: dict) -> list[str]:
    texts = []
    if isinstance(block.get("text"), dict):
        texts.append(block["text"].get("text", ""))
    for element in block.get("elements") or []:
        if isinstance(element, dict) and element.get("type") in ("mrkdwn", "plain_text"):
            texts.append(element.get("text", ""))
    return texts


def slack_limit_error(params: dict) -> str | None:
    """The error Slack gives for a message over its limits, or None."""
    blocks = params.get("blocks") or []
    text = params.get("text") or ""
    if not blocks and not text:
        return "no_text"
    if len(text) > 40_000:
        return "msg_too_long"
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        if any(len(t) > 3000 for t in _text_objects(block)):
            return "invalid_blocks"
    return None


class MockSlackAPI:
    def __init__(self, token: str = BOT_TOKEN, app_token: str = APP_TOKEN) -> None:
        self.token = token
        self.app_token = app_token
        self.socket_url: str | None = None  # what apps.connections.open hands out (Socket Mode)
        self._state = _State()
        self._cond = threading.Condition()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                mock._handle(self)

            def do_POST(self) -> None:
                mock._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> MockSlackAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.base + "/api/"

    def response_url(self, name: str) -> str:
        return f"{self.base}/response/{name}"

    # ------------------------------------------------------------------ test controls

    def fail(
        self,
        method: str,
        *,
        times: int = 1,
        status: int = 200,
        error: str = "",
        retry_after: int | None = None,
    ):
        """Make the next ``times`` calls of ``method`` fail (HTTP 429 + Retry-After, or a Slack error)."""
        with self._cond:
            queue = self._state.faults.setdefault(method, deque())
            for _ in range(times):
                queue.append(
                    Fault(
                        status=status,
                        error=error or ("ratelimited" if status == 429 else ""),
                        retry_after=retry_after,
                    )
                )

    def add_message(
        self, channel: str, text: str, *, user: str = "UALICE01", thread_ts: str | None = None
    ) -> str:
        """A message a person wrote (so that ``conversations.replies`` returns it); returns its ts."""
        with self._cond:
            ts = self._new_ts()
            message = {"type": "message", "ts": ts, "user": user, "text": text}
            if thread_ts:
                message["thread_ts"] = thread_ts
            self._state.messages.setdefault(channel, []).append(message)
            return ts

    def calls(self, method: str | None = None) -> list[Call]:
        with self._cond:
            return [c for c in self._state.calls if method is None or c.method == method]

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 20.0,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until ``count`` successful calls of ``method`` (matching ``where``) were recorded."""
        deadline = time.monotonic() + timeout

        def matching() -> list[Call]:
            return [
                c for c in self._state.calls if c.method == method and c.ok and (where is None or where(c))
            ]

        with self._cond:
            while len(matching()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.status) for c in self._state.calls]
                    raise AssertionError(f"timed out waiting for {count} x {method}; calls so far: {seen}")
                self._cond.wait(timeout=left)
            return matching()

    def stream_texts(self, channel: str, ts: str) -> list[str]:
        """A streamed message's whole text after each start/append/stop call, in order."""
        with self._cond:
            message = next(m for m in self._state.messages.get(channel, []) if m["ts"] == ts)
            return list(message.get("stream_history", []))

    def status(self, channel: str, thread_ts: str) -> str:
        """The assistant thread's status as last set ("" when cleared or never set)."""
        with self._cond:
            return self._state.statuses.get((channel, thread_ts), "")

    def thread(self, channel: str, thread_ts: str) -> list[dict]:
        with self._cond:
            return [
                dict(m)
                for m in self._state.messages.get(channel, [])
                if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
            ]

    # ------------------------------------------------------------------ HTTP

    def _new_ts(self) -> str:
        self._state.next_ts += 100
        return f"{self._state.next_ts // 1_000_000}.{self._state.next_ts % 1_000_000:06d}"

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlparse(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode("utf-8") if length else ""
        params: dict = {k: v[0] for k, v in parse_qs(url.query).items()}
        if raw:
            if (request.headers.get("Content-Type") or "").startswith("application/json"):
                params.update(json.loads(raw))
            else:
                params.update({k: v[0] for k, v in parse_qs(raw).items()})
        for key in ("blocks", "metadata"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        headers = {k.lower(): v for k, v in request.headers.items()}

        if url.path.startswith("/response/"):
            method = "response_url:" + url.path[len("/response/") :]
        elif url.path.startswith("/api/"):
            method = url.path[len("/api/") :]
        else:
            self._reply(request, 404, {"ok": False, "error": "not_found"})
            return

        with self._cond:
            call = Call(method=method, params=params, headers=headers, at=time.monotonic())
            status, body, extra_headers = self._respond(method, params, headers)
            call.status, call.ok = status, bool(body.get("ok"))
            self._state.calls.append(call)
            self._cond.notify_all()
        self._reply(request, status, body, extra_headers)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, body: dict, extra: dict | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def _respond(self, method: str, params: dict, headers: dict) -> tuple[int, dict, dict]:
        queue = self._state.faults.get(method)
        if queue:
            fault = queue.popleft()
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return fault.status, {"ok": False, "error": fault.error}, extra

        if method.startswith("response_url:"):
            error = slack_limit_error(params)
            return (400, {"ok": False, "error": error}, {}) if error else (200, {"ok": True}, {})

        if method == "apps.connections.open":
            if headers.get("authorization") != f"Bearer {self.app_token}" or not self.socket_url:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            return 200, {"ok": True, "url": self.socket_url}, {}
        if headers.get("authorization") != f"Bearer {self.token}" and params.get("token") != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}

        if method == "auth.test":
            return (
                200,
                {
                    "ok": True,
                    "url": "https://kqa-test.slack.com/",
                    "team": "KQA Test",
                    "user": "kubecon-qa",
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID,
                    "is_enterprise_install": False,
                },
                {},
            )
        if method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            error = slack_limit_error(params)
            if error:
                return 200, {"ok": False, "error": error}, {}
            channel = params.get("channel", "")
            if method == "chat.postEphemeral":
                return 200, {"ok": True, "message_ts": self._new_ts()}, {}
            messages = self._state.messages.setdefault(channel, [])
            if method == "chat.update":
                target = next((m for m in messages if m["ts"] == params.get("ts")), None)
                if target is None:
                    return 200, {"ok": False, "error": "message_not_found"}, {}
                target.update(text=params.get("text", ""), blocks=params.get("blocks") or [])
                return 200, {"ok": True, "channel": channel, "ts": target["ts"], "text": target["text"]}, {}
            message = {
                "type": "message",
                "ts": self._new_ts(),
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "text": params.get("text", ""),
                "blocks": params.get("blocks") or [],
            }
            if params.get("thread_ts"):
                message["thread_ts"] = params["thread_ts"]
            messages.append(message)
            return 200, {"ok": True, "channel": channel, "ts": message["ts"], "message": message}, {}
        if method.startswith("assistant.threads."):
            return self._assistant_thread(method, params)
        if method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            return self._stream(method, params)
        if method == "chat.delete":
            messages = self._state.messages.get(params.get("channel", ""), [])
            target = next((m for m in messages if m["ts"] == params.get("ts")), None)
            if target is None:
                return 200, {"ok": False, "error": "message_not_found"}, {}
            messages.remove(target)
            return 200, {"ok": True, "channel": params["channel"], "ts": target["ts"]}, {}
        if method in ("reactions.add", "reactions.remove"):
            return 200, {"ok": True}, {}
        if method == "conversations.replies":
            channel, root = params.get("channel", ""), params.get("ts", "")
            thread = [
                m
                for m in self._state.messages.get(channel, [])
                if m["ts"] == root or m.get("thread_ts") == root
            ]
            if not thread:
                return 200, {"ok": False, "error": "thread_not_found"}, {}
            return 200, {"ok": True, "messages": thread, "has_more": False}, {}
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _assistant_thread(self, method: str, params: dict) -> tuple[int, dict, dict]:
        channel, thread_ts = params.get("channel_id"), params.get("thread_ts")
        if not channel:
            return 200, {"ok": False, "error": "invalid_arguments"}, {}
        if method == "assistant.threads.setStatus":
            if not thread_ts or "status" not in params:
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            self._state.statuses[(channel, thread_ts)] = params["status"]
            return 200, {"ok": True}, {}
        if method == "assistant.threads.setTitle":
            if not thread_ts or not params.get("title"):
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            return 200, {"ok": True}, {}
        if method == "assistant.threads.setSuggestedPrompts":
            prompts = params.get("prompts")
            if (
                not isinstance(prompts, list)
                or not 1 <= len(prompts) <= 4
                or not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts)
            ):
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            return 200, {"ok": True}, {}
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _stream(self, method: str, params: dict) -> tuple[int, dict, dict]:
        channel = params.get("channel", "")
        if not channel:
            return 200, {"ok": False, "error": "invalid_arguments"}, {}
        text = params.get("markdown_text") or ""
        for chunk in params.get("chunks") or []:  # slack_sdk's ChatStream sends markdown_text chunks
            if not isinstance(chunk, dict) or chunk.get("type") != "markdown_text":
                return 200, {"ok": False, "error": "invalid_chunks"}, {}
            text += chunk.get("text", "")
        if len(text) > 12_000:
            return 200, {"ok": False, "error": "msg_too_long"}, {}
        messages = self._state.messages.setdefault(channel, [])
        if method == "chat.startStream":
            if not params.get("thread_ts"):
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            if not channel.startswith("D"):  # outside a DM the stream goes to one recipient
                if not params.get("recipient_user_id"):
                    return 200, {"ok": False, "error": "missing_recipient_user_id"}, {}
                if not params.get("recipient_team_id"):
                    return 200, {"ok": False, "error": "missing_recipient_team_id"}, {}
            message = {
                "type": "message", "ts": self._new_ts(), "user": BOT_USER_ID, "bot_id": BOT_ID, "text": text,
                "blocks": [], "thread_ts": params["thread_ts"], "streaming": True, "stream_history": [text],
            }  # fmt: skip
            messages.append(message)
            return 200, {"ok": True, "channel": channel, "ts": message["ts"]}, {}
        target = next((m for m in messages if m["ts"] == params.get("ts")), None)
        if target is None:
            return 200, {"ok": False, "error": "message_not_found"}, {}
        if not target.get("streaming"):
            return 200, {"ok": False, "error": "message_not_in_streaming_state"}, {}
        if method == "chat.appendStream" and not text:
            return 200, {"ok": False, "error": "invalid_arguments"}, {}
        blocks = params.get("blocks") or []
        if method == "chat.stopStream" and blocks:
            error = slack_limit_error({"text": target["text"] + text, "blocks": blocks})
            if error:
                return 200, {"ok": False, "error": error}, {}
        target["text"] += text
        target["stream_history"].append(target["text"])
        if method == "chat.stopStream":
            target["streaming"] = False
            target["blocks"] = blocks
            shown = {k: v for k, v in target.items() if k not in ("streaming", "stream_history")}
            return 200, {"ok": True, "channel": channel, "ts": target["ts"], "message": shown}, {}
        return 200, {"ok": True, "channel": channel, "ts": target["ts"]}, {}


class MockSocketModeServer:
    """Slack's Socket Mode WebSocket endpoint: says hello, pushes envelopes, records the bot's acks."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self._outbox: deque[dict] = deque()
        self.acks: list[dict] = []
        self.connections = 0
        self._cond = threading.Condition()
        self._server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link/?ticket=test"

    def start(self) -> MockSocketModeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def send(self, envelope: dict) -> None:
        with self._cond:
            self._outbox.append(envelope)

    def wait_for_ack(self, envelope_id: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [a for a in self.acks if a.get("envelope_id") == envelope_id]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ack for envelope {envelope_id}; acks: {self.acks}")
                self._cond.wait(timeout=left)

    def _handle(self, connection) -> None:
        with self._cond:
            self.connections += 1
        connection.send(
            json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0KQA0001"}})
        )
        while True:
            with self._cond:
                outgoing = list(self._outbox)
                self._outbox.clear()
            for envelope in outgoing:
                connection.send(json.dumps(envelope))
            try:
                message = connection.recv(timeout=0.05)
            except TimeoutError:
                continue
            except Exception:  # the client went away
                return
            with self._cond:
                self.acks.append(json.loads(message))
                self._cond.notify_all()
