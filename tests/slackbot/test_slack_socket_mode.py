"""Socket Mode: the same bot over a real WebSocket (mock Slack endpoint on loopback), no HTTP server."""

from __future__ import annotations

import json
import time

import pytest
from slack_harness import ALICE, CHANNEL, ScriptedAssistant, cited_answer, mention
from slack_mock_api import APP_TOKEN, BOT_TOKEN, BOT_USER_ID, TEAM_ID, MockSocketModeServer

from rag.settings import Settings
from slackbot.bot import SlackBot
from slackbot.config import SlackSettings
from slackbot.server import SocketModeTransport

pytestmark = pytest.mark.server


def events_envelope(envelope_id: str, event: dict, *, event_id: str, retry_attempt: int = 0) -> dict:
    return {
        "envelope_id": envelope_id,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
        "payload": {
            "team_id": TEAM_ID,
            "api_app_id": "A0KQA0001",
            "type": "event_callback",
            "event": event,
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        },  # fmt: skip
    }


@pytest.fixture
def socket_server():
    server = MockSocketModeServer().start()
    yield server
    server.stop()


def test_socket_mode_answers_events_once_and_acks_commands(slack_api, socket_server, tmp_path):
    slack_api.socket_url = socket_server.url
    assistant = ScriptedAssistant(lambda q, h: cited_answer(q, "Wasm went production-ready [1]."))
    slack = SlackSettings(
        bot_token=BOT_TOKEN, app_token=APP_TOKEN, api_url=slack_api.api_url, progress_update_s=0
    )
    assert slack.socket_mode and slack.signing_secret is None
    bot = SlackBot(
        settings=Settings(home=tmp_path, llm_backend="extractive"), slack=slack, assistant=assistant
    )
    transport = SocketModeTransport(bot, APP_TOKEN).start()
    try:
        opened = slack_api.wait_for("apps.connections.open")[0]
        assert opened.headers["authorization"] == f"Bearer {APP_TOKEN}"  # the app token, not the bot token

        event = mention("What about WebAssembly?", "1700000300.000100")
        socket_server.send(events_envelope("env-1", event, event_id="EvSocket1"))
        assert socket_server.wait_for_ack("env-1")
        update = slack_api.wait_for("chat.update", where=lambda c: bool(c.params.get("blocks")))[0].params
        assert update["channel"] == CHANNEL and "<https://example.org" in update["blocks"][0]["text"]["text"]

        socket_server.send(events_envelope("env-2", event, event_id="EvSocket1", retry_attempt=1))
        assert socket_server.wait_for_ack("env-2")

        command = {
            "envelope_id": "env-3", "type": "slash_commands", "accepts_response_payload": True,
            "payload": {
                "team_id": TEAM_ID, "channel_id": CHANNEL, "user_id": ALICE, "command": "/kubecon",
                "text": "", "response_url": slack_api.response_url("socket"), "trigger_id": "trig.socket",
            },
        }  # fmt: skip
        socket_server.send(command)
        ack = socket_server.wait_for_ack("env-3")
        assert ack["payload"]["response_type"] == "ephemeral" and "/kubecon" in ack["payload"]["text"]
        assert bot.wait_idle()
        assert len(assistant.calls) == 1
        assert len([c for c in slack_api.calls("chat.update") if c.params.get("blocks")]) == 1
        assert BOT_TOKEN not in json.dumps(socket_server.acks)
    finally:
        transport.stop()
