"""Slack settings, log redaction and the command line: clear errors, no secrets printed."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from slackbot.cli import main
from slackbot.config import SlackConfigError, SlackSettings
from slackbot.logsafe import RedactSecrets, install_redaction

BOT_TOKEN = "xoxb-9999-8888-verysecretbottoken"
APP_TOKEN = "xapp-1-A111-2222-verysecretapptoken"
SECRET = "signing-secret-abcdef0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "KQA_SLACK_API_URL",
        "KQA_SLACK_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_settings_come_from_slacks_standard_variables(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("KQA_SLACK_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("KQA_SLACK_PORT", "3210")
    slack = SlackSettings()
    assert slack.api_url == "http://127.0.0.1:9/api/" and slack.port == 3210
    assert not slack.socket_mode
    slack.require()
    assert BOT_TOKEN not in repr(slack) and SECRET not in str(slack)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    assert SlackSettings().socket_mode


def test_missing_or_mixed_up_tokens_get_clear_errors():
    with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN is not set"):
        SlackSettings().require()
    with pytest.raises(SlackConfigError, match="SLACK_SIGNING_SECRET is not set"):
        SlackSettings(bot_token=BOT_TOKEN).require()
    SlackSettings(bot_token=BOT_TOKEN, app_token=APP_TOKEN).require()  # Socket Mode needs no signing secret
    with pytest.raises(ValidationError, match="app-level token"):
        SlackSettings(bot_token=APP_TOKEN)
    with pytest.raises(ValidationError, match="xapp-"):
        SlackSettings(app_token=BOT_TOKEN)
    with pytest.raises(ValidationError, match="http"):
        SlackSettings(api_url="slack.com/api")


def test_cli_reports_configuration_errors_without_printing_tokens(monkeypatch, capsys):
    assert main(["slack", "--port", "0"]) == 2
    assert "SLACK_BOT_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("SLACK_BOT_TOKEN", APP_TOKEN)  # the app token pasted in the wrong place
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "app-level token" in err and APP_TOKEN not in err
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    assert main(["--mode", "socket"]) == 2
    assert "SLACK_APP_TOKEN" in capsys.readouterr().err


def test_redaction_filter_removes_secrets_and_token_shapes(caplog):
    # The filter alone: a bot built by an earlier test installs rag.redaction's record factory, which
    # masks the same secrets first (with "***"), so this test runs on the plain factory.
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    logger = logging.getLogger("kqa.test.redaction")
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(handler.format(record))  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        install_redaction([SECRET, "short"], logger)
        logger.warning("token %s secret %s other xoxp-1234-abcdef-token short", BOT_TOKEN, SECRET)
        try:
            raise RuntimeError(f"bad token {APP_TOKEN}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logging.setLogRecordFactory(factory)
    joined = "\n".join(seen)
    assert (
        BOT_TOKEN not in joined and SECRET not in joined and APP_TOKEN not in joined and "xoxp-" not in joined
    )
    assert "token [redacted] secret [redacted] other [redacted] short" in seen[0]
    assert "RuntimeError: bad token [redacted]" in seen[1]
    assert RedactSecrets([]).redact("no secrets here") == "no secrets here"
