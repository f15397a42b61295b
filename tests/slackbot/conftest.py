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
            **({"progress_update_s": 0} | slack_overrides),
        )
        bot = SlackBot(settings=settings, slack=slack, assistant=assistant)
        transport = HTTPTransport(bot, host="127.0.0.1", port=0).start()
        handle = RunningBot(bot, transport, SignedClient(transport.url), settings)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        handle.transport.stop()


@pytest.fixture
def redis_url(tmp_path) -> Iterator[str]:
    """A real Debian ``redis-server`` on a free loopback port, no persistence; its redis:// URL."""
    import shutil
    import subprocess
    import time

    import redis

    from tests.support.processes import free_port

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is absent (apt-get install redis-server); the Redis de-dup tests need it")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                redis.Redis.from_url(url, socket_connect_timeout=1).ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)

