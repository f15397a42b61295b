"""``python app.py slack`` with ``KQA_ANSWER_URL``: the bot answers a mention through a real
``python app.py api`` and opens no index of its own."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from slack_harness import SIGNING_SECRET, SignedClient, mention
from slack_mock_api import BOT_TOKEN

from tests.support.apiserver import API_KEY, answer_service
from tests.support.processes import free_port, start_server

pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]


def test_the_bot_answers_through_the_answer_service(slack_api, tmp_path):
    with answer_service(tmp_path / "service", REPO / "data") as service:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "KQA_"))} | {
            "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "KQA_SLACK_API_URL": slack_api.api_url, "KQA_HOME": str(tmp_path / "bot-home"),
            "KQA_ANSWER_URL": service.url, "KQA_ANSWER_API_KEY": API_KEY,
        }  # fmt: skip
        log_path = tmp_path / "bot.log"
        command = [sys.executable, "app.py", "slack", "--host", "127.0.0.1", "--port", str(port)]
        process = start_server(command, health_url=f"http://127.0.0.1:{port}/healthz", log_path=log_path, env=env,
                               cwd=REPO, timeout=120)  # fmt: skip
        try:
            client = SignedClient(f"http://127.0.0.1:{port}/slack/events")
            question = "What were the big takeaways from KubeCon Detroit 2022?"
            assert client.event(mention(question, "1700000500.000100"))[0] == 200
            final = slack_api.wait_for("chat.update", where=lambda c: bool(c.params.get("blocks")), timeout=120)[-1]
            text = final.params["text"] + str(final.params["blocks"])
            assert "Platform Engineering" in text and "Three Big Takeaways" in text
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        assert "Index: 2 posts" in log_path.read_text()  # the service's index, read over HTTP
        assert not (tmp_path / "bot-home" / "chroma").exists()
        assert '"POST /v1/ask/stream HTTP/1.1" 200' in service.log()
