"""``python app.py slack`` as a real process: starts in HTTP mode, verifies signatures, answers, keeps
tokens out of its (DEBUG) logs, stops on SIGTERM. And the app manifest matches what the bot handles."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml
from slack_harness import SIGNING_SECRET, SignedClient, mention
from slack_mock_api import BOT_TOKEN

from slackbot.config import SlackSettings
from tests.support.processes import free_port, start_server

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "slackbot" / "manifest.yaml"


def test_manifest_matches_the_bot():
    manifest = yaml.safe_load(MANIFEST.read_text())
    defaults = SlackSettings(_env_file=None)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [defaults.command]
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.im",  # DMs, and the questions of assistant threads
        "assistant_thread_started",  # what bolt's Assistant middleware listens to
        "assistant_thread_context_changed",
    }
    assert manifest["features"]["assistant_view"]["assistant_description"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {
        "app_mentions:read",
        "chat:write",
        "commands",
        "reactions:write",
        "assistant:write",
        "im:history",
        "channels:history",
    } <= scopes
    urls = [
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["settings"]["interactivity"]["request_url"],
        *[c["url"] for c in manifest["features"]["slash_commands"]],
    ]
    assert all(url.endswith(defaults.events_path) for url in urls)
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True  # people can DM the bot


@pytest.mark.server
def test_app_py_slack_serves_http_mode_and_never_logs_tokens(slack_api, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KQA_"))} | {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "KQA_SLACK_API_URL": slack_api.api_url,
        "KQA_HOME": str(tmp_path / "home"),  # empty: the bot must say so, not crash
        "KQA_LLM_BACKEND": "extractive",
    }
    log_path = tmp_path / "bot.log"
    command = [sys.executable, "app.py", "slack", "--host", "127.0.0.1", "--port", str(port), "--log-level", "DEBUG"]
    process = start_server(
        command, health_url=f"http://127.0.0.1:{port}/healthz", log_path=log_path, env=env, cwd=REPO, timeout=90
    )
    try:
        client = SignedClient(f"http://127.0.0.1:{port}/slack/events")
        assert (
            client.post(json.dumps({"type": "event_callback"}), "application/json", signature="v0=00")[0]
            == 401
        )
        assert client.event(mention("What happened at KubeCon Detroit 2022?", "1700000400.000100"))[0] == 200
        notice = slack_api.wait_for("chat.update", timeout=60)[0].params["text"]
        assert notice.startswith(":warning:") and "index is empty" in notice
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=20) == 0
        finally:
            if process.poll() is None:
                process.kill()
    logged = log_path.read_text()
    assert "Sending a request" in logged and "Invalid request signature" in logged  # DEBUG/INFO really on
    assert BOT_TOKEN not in logged and SIGNING_SECRET not in logged
