"""``python app.py slack [--port N]`` / ``python -m slackbot``: start the Slack bot.

Socket Mode when ``SLACK_APP_TOKEN`` is set, otherwise HTTP mode on ``--host``/``--port``
(``KQA_SLACK_HOST``/``KQA_SLACK_PORT``). Exit status 2 means a configuration problem (message on stderr).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from pydantic import ValidationError
from slack_bolt.error import BoltError

from rag.errors import KQAError
from rag.remote import answer_service
from rag.settings import get_settings
from rag.version import add_version_argument
from slackbot.bot import SlackBot
from slackbot.config import SlackConfigError, SlackSettings
from slackbot.logsafe import install_redaction
from slackbot.server import HTTPTransport, SocketModeTransport

log = logging.getLogger("slackbot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py slack",
        description="Answer questions about KubeCon recaps in Slack "
        "(mentions, DMs, slash command, AI assistant threads).",
        epilog="Tokens come from SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_APP_TOKEN (Socket Mode).",
    )
    parser.add_argument(
        "--port", type=int, help="HTTP mode port (default: KQA_SLACK_PORT or 3000; 0 = any free)"
    )
    parser.add_argument("--host", help="HTTP mode bind address (default: KQA_SLACK_HOST or 0.0.0.0)")
    parser.add_argument(
        "--mode",
        choices=("auto", "http", "socket"),
        default="auto",
        help="auto: Socket Mode when SLACK_APP_TOKEN is set, else HTTP (default: auto)",
    )
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    add_version_argument(parser)
    return parser


def _validation_message(err: ValidationError) -> str:
    # Never str(err): pydantic quotes the rejected input, which may be a token.
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in err.errors())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["slack"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)

    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        slack = SlackSettings(**overrides)
        if args.mode == "http" and slack.app_token is not None:
            slack = slack.model_copy(update={"app_token": None})
        if args.mode == "socket" and slack.app_token is None:
            raise SlackConfigError("--mode socket needs SLACK_APP_TOKEN (an app-level token, xapp-...)")
        slack.require()
        settings = get_settings()
    except ValidationError as err:
        print(f"error: invalid Slack settings: {_validation_message(err)}", file=sys.stderr)
        return 2
    except SlackConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    install_redaction(slack.secrets())

    try:
        return _run(settings, slack)
    except KQAError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(settings, slack: SlackSettings) -> int:
    assistant = answer_service(settings)  # KQA_ANSWER_URL: a RemoteAssistant; no index or LLM in this process
    try:
        status = assistant.index_status()
        log.info("Index: %s posts, %s chunks (%s)", status.posts, status.chunks, status.store)
        if not status.chunks:
            log.warning(
                "The index is empty: run `python -m ingest` first, or every question gets that advice"
            )
    except KQAError as err:
        log.warning("Index not ready: %s", err)

    try:
        bot = SlackBot(settings=settings, slack=slack, assistant=assistant)
    except BoltError as err:
        print(f"error: Slack rejected the bot token or could not be reached: {err}", file=sys.stderr)
        return 2

    if slack.socket_mode:
        transport = SocketModeTransport(bot, slack.app_token.get_secret_value())
    else:
        transport = HTTPTransport(bot, host=slack.host, port=slack.port, events_path=slack.events_path)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        transport.serve_forever()
    except KeyboardInterrupt:
        log.info("Stopping the Slack bot")
    finally:
        transport.stop()
    return 0


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
