"""Fixtures: the mock Slack Web API and the bot served over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slack_harness import SIGNING_SECRET, RunningBot, SignedClient
from slack_mock_api import BOT_TOKEN, MockSlackAPI

from rag.settings import Settings
from slackbot.bot import SlackBot
from slackbot.config import SlackSettings
from slackbot.server import HTTPTransport


@pytest.fixture
def slack_api() -> Iterator[MockSlackAPI]:
    api = MockSlackAPI().start()
    yield api
    api.stop()


@pytest.fixture
def start_bot(slack_api: MockSlackAPI, tmp_path: Path) -> Iterator[Callable[..., RunningBot]]:
    """Start the bot in HTTP mode on a free loopback port, talking to the mock Web API."""
    running: list[RunningBot] = []

    def start(assistant, settings: Settings | None = None, **slack_overrides) -> RunningBot:
        settings = settings or Settings(home=tmp_path / "kqa", llm_backend="extractive")
        slack = SlackSettings(
            bot_token=BOT_TOKEN,
            signing_secret=SIGNING_SECRET,
            api_url=slack_api.api_url,
            host="127.0.0.1",
            port=0,
            progress_update_s=0,
            **slack_overrides,
        )
        bot = SlackBot(settings=settings, slack=slack, assistant=assistant)
        transport = HTTPTransport(bot, host="127.0.0.1", port=0).start()
        handle = RunningBot(bot, transport, SignedClient(transport.url), settings)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        handle.transport.stop()
