"""Test harness: signed requests to the bot (as Slack sends them), event builders, a scripted assistant."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from urllib.parse import urlencode

from slack_mock_api import BOT_USER_ID, TEAM_ID
from slack_sdk.signature import SignatureVerifier

from rag.settings import Settings
from rag.types import Answer, Citation, Source, StreamEvent
from slackbot.bot import SlackBot
from slackbot.server import HTTPTransport

SIGNING_SECRET = "a3f5e1d9c0b24f6e8d7c6b5a4f3e2d1c"
CHANNEL = "C0GENERAL"
DM_CHANNEL = "D0ALICE01"
ALICE = "UALICE01"

_event_numbers = count(1)


@dataclass
class SignedClient:
    """Posts requests to the bot the way Slack does: signed with the signing secret."""

    url: str
    secret: str = SIGNING_SECRET

    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict | None = None,
    ) -> tuple[int, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = signature or SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body)
        request = urllib.request.Request(
            self.url,
            data=body.encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sig,
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode("utf-8")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8")

    def event(
        self, event: dict, *, event_id: str | None = None, retry_num: int | None = None, **kwargs
    ) -> tuple[int, str]:
        envelope = {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": "A0KQA0001",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_event_numbers):08d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        }
        headers = kwargs.pop("headers", {}) or {}
        if retry_num is not None:
            headers |= {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(json.dumps(envelope), "application/json", headers=headers, **kwargs)

    def command(
        self, text: str, *, response_url: str, user: str = ALICE, channel: str = CHANNEL
    ) -> tuple[int, str]:
        form = {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "channel_id": channel,
            "user_id": user,
            "command": "/kubecon",
            "text": text,
            "response_url": response_url,
            "trigger_id": f"trig.{next(_event_numbers)}",
        }
        return self.post(urlencode(form), "application/x-www-form-urlencoded")

    def action(self, payload: dict) -> tuple[int, str]:
        return self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


def mention(
    text: str, ts: str, *, channel: str = CHANNEL, thread_ts: str | None = None, user: str = ALICE
) -> dict:
    event = {
        "type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> {text}", "ts": ts,
        "channel": channel, "event_ts": ts,
    }  # fmt: skip
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def direct_message(text: str, ts: str, *, thread_ts: str | None = None, user: str = ALICE) -> dict:
    event = {
        "type": "message", "channel_type": "im", "user": user, "text": text, "ts": ts,
        "channel": DM_CHANNEL, "event_ts": ts, "client_msg_id": hashlib.md5(ts.encode()).hexdigest(),
    }  # fmt: skip
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def assistant_thread_started(thread_ts: str, *, channel: str = DM_CHANNEL, user: str = ALICE) -> dict:
    """Slack's ``assistant_thread_started``: the user opened the app's assistant split view."""
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user, "channel_id": channel, "thread_ts": thread_ts,
            "context": {"channel_id": CHANNEL, "team_id": TEAM_ID, "enterprise_id": None},
        },
        "event_ts": thread_ts,
    }  # fmt: skip


def feedback_buttons_click(
    value: str, *, channel: str, message_ts: str, thread_ts: str, user: str = ALICE
) -> dict:
    """The ``block_actions`` payload of a click on a ``feedback_buttons`` element (its button's value)."""
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user},
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "message": {"ts": message_ts, "thread_ts": thread_ts, "text": ""},
        "actions": [
            {"type": "feedback_buttons", "action_id": "kqa_feedback", "block_id": "kqa_feedback",
             "value": value, "action_ts": f"{time.time():.6f}"},
        ],
    }  # fmt: skip


@dataclass
class ScriptedAssistant:
    """Stands in for the rag layer where a test needs an answer the real corpus cannot produce (a 6,000-
    character answer, a failure). Streams like :meth:`rag.assistant.Assistant.stream` and records calls."""

    make_answer: Callable[[str, list[dict] | None], Answer]
    tokens: list[str] = field(default_factory=list)  # raw model text streamed before the verified answer
    calls: list[tuple[str, list[dict] | None]] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event | None = None  # when set, answers wait for it (to hold a generation open)

    def stream(self, question: str, history: list[dict] | None = None, event=None, year=None):
        self.calls.append((question, history))
        self.started.set()
        yield StreamEvent(kind="status", text="Searching the recaps…")
        if self.release is not None:
            assert self.release.wait(timeout=20), "test never released the answer"
        if self.tokens:
            yield StreamEvent(kind="status", text="Writing the answer…")
        for token in self.tokens:
            yield StreamEvent(kind="token", text=token)
        yield StreamEvent(kind="answer", answer=self.make_answer(question, history))


def cited_answer(question: str, text: str, quote: str = "Platform engineering is here to stay.") -> Answer:
    citation = Citation(
        n=1, source_id="seed-kubecon-detroit-2022-three-takeaways",
        title="KubeCon + CloudNativeCon 2022: Three Big Takeaways",
        event="KubeCon + CloudNativeCon North America 2022 (Detroit)",
        url_or_path="https://example.org/posts/three-takeaways?a=1&b=2", quote=quote, start=0, end=len(quote),
    )  # fmt: skip
    source = Source(
        source_id=citation.source_id, title=citation.title, event=citation.event,
        url_or_path=citation.url_or_path, score=1.0, dense_similarity=0.8, snippet=quote, cited=True,
        citation_numbers=(1,),
    )  # fmt: skip
    return Answer(question=question, text=text, citations=[citation], sources=[source], backend="scripted")


@dataclass
class RunningBot:
    bot: SlackBot
    transport: HTTPTransport
    client: SignedClient
    settings: Settings
