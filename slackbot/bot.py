"""The Slack bot: a slack_bolt ``App`` whose listeners acknowledge at once and answer in the background.

Flow for a mention or a DM: bolt acknowledges the event before any listener runs; the listener claims
the delivery in :class:`~slackbot.dedup.DeliveryDedup` (duplicates and retries stop here), reacts to the
question, posts a placeholder and queues the question. A worker reads the thread's earlier turns as
history, streams the answer from the :class:`rag.assistant.Assistant` (editing the placeholder with
progress), and replaces the placeholder with the formatted answer (more messages if it is long).

The slash command acknowledges with an ephemeral "searching" note and delivers through its
``response_url``. Feedback buttons are acknowledged, logged, and thanked ephemerally.

In an AI assistant thread (bolt's ``Assistant`` middleware: the app's split-view DM), a new thread gets a
greeting and suggested prompts about the indexed events; a question sets the thread's title and native
status (``assistant.threads.setStatus``), and the answer is streamed (``chat.startStream`` /
``appendStream`` / ``stopStream``) one sentence per append, but only once verification has produced the
final answer, so nothing verification removes is ever shown; sources and ``feedback_buttons`` close the
stream. Where streaming is refused the answer is posted the usual way.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from slack_bolt import App, BoltContext
from slack_bolt import Assistant as AssistantThreads
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.webhook import WebhookClient

from rag.errors import EmptyIndexError, InvalidQuestionError, KQAError
from rag.redaction import protect_logs
from rag.remote import answer_service
from rag.settings import Settings
from rag.types import Answer, StreamEvent
from slackbot.config import SlackSettings
from slackbot.conversation import message_to_plain, thread_history
from slackbot.dedup import make_dedup
from slackbot.feedback import AnsweredQuestion, AnswerMemory, append_feedback, slack_feedback_record
from slackbot.formatting import (
    FEEDBACK_NATIVE,
    FEEDBACK_UP,
    MARKDOWN_TEXT_LIMIT,
    MAX_BLOCKS_PER_MESSAGE,
    SlackMessage,
    answer_trailer,
    escape,
    greeting_message,
    markdown_pieces,
    notice_message,
    plain_message,
    progress_text,
    render_answer,
    suggested_prompts,
)
from slackbot.logsafe import TOKEN_RE

log = logging.getLogger(__name__)
bolt_log = logging.getLogger("slackbot.bolt")


class _DropClientTokenNotice(logging.Filter):
    """bolt reads SLACK_BOT_TOKEN itself, then warns that our client (built from that same token) wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


bolt_log.addFilter(_DropClientTokenNotice())

APOLOGY = "Sorry, something went wrong while answering your question. Please try again in a minute."
USAGE = (
    "Ask me about KubeCon + CloudNativeCon recap posts, for example "
    "“What were the big themes at KubeCon Detroit 2022?”. Mention me in a channel, message me directly, "
    "or use `{command} <question>` (add `--public` to share the answer with the channel). "
    "Reply in the thread to ask a follow-up."
)
THANKS = "Thanks for the feedback! It helps us improve the answers."
SEARCHING = "Searching the recaps…"
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]+$")


class AnswerSource(Protocol):
    """What the bot needs from :class:`rag.assistant.Assistant` (``stream`` is used when present)."""

    def ask(self, question: str, history: list[dict] | None = None) -> Answer: ...


class DeliveryError(RuntimeError):
    """Slack did not accept a message sent through a ``response_url``."""


def make_web_client(slack: SlackSettings) -> WebClient:
    """A WebClient for ``KQA_SLACK_API_URL`` that waits out HTTP 429 (``Retry-After``) and retries once
    on a dropped connection."""
    return WebClient(
        token=slack.bot_token.get_secret_value() if slack.bot_token else None,
        base_url=slack.api_url,
        timeout=30,
        retry_handlers=retry_handlers(slack),
    )


def retry_handlers(slack: SlackSettings) -> list[RetryHandler]:
    return [
        ConnectionErrorRetryHandler(max_retry_count=1),
        RateLimitErrorRetryHandler(max_retry_count=slack.rate_limit_retries),
    ]


def slack_error(err: Exception) -> str:
    """The short Slack error code (``channel_not_found``), never the request."""
    if isinstance(err, SlackApiError):
        return str(err.response.get("error") or f"HTTP {err.response.status_code}")
    return f"{type(err).__name__}: {err}"


@dataclass
class Reply:
    """Where an answer goes: thread messages through the Web API, or a slash command's ``response_url``."""

    channel: str
    user: str
    thread_ts: str | None = None  # None: top level (a DM outside a thread)
    placeholder_ts: str | None = None  # the progress message to replace with the answer
    response_url: str | None = None
    response_type: str = "ephemeral"
    asked_by: str | None = None  # shown above public slash command answers
    question: str = ""
    assistant_thread: bool = False  # an AI assistant thread: native status, streamed answer
    team: str | None = None  # the asker's team: a stream's recipient outside a DM


@dataclass(frozen=True)
class BotIdentity:
    user_id: str | None
    bot_id: str | None


class SlackBot:
    """Owns the bolt ``App``, the answer workers, the dedup memory and the feedback log."""

    def __init__(
        self,
        *,
        settings: Settings,
        slack: SlackSettings,
        assistant: AnswerSource | None = None,
        assistant_factory: Callable[[], AnswerSource] | None = None,
        client: WebClient | None = None,
    ) -> None:
        slack.require()
        self.settings = settings
        self.slack = slack
        self._assistant = assistant
        self._assistant_factory = assistant_factory or self._default_assistant
        self._assistant_lock = threading.Lock()
        self.client = client or make_web_client(slack)
        protect_logs(slack.secrets(), TOKEN_RE)  # every entry point (CLI, gunicorn's wsgi_app, tests)
        self.dedup = make_dedup(slack.dedup_url, settings.home, slack.dedup_ttl_s)
        self.memory = AnswerMemory()
        self._jobs = ThreadPoolExecutor(max_workers=slack.workers, thread_name_prefix="kqa-slack-answer")
        self._pending: set[Future] = set()
        self._pending_lock = threading.Lock()
        self.app = App(
            name="kubecon-qa",
            client=self.client,
            signing_secret=slack.signing_secret.get_secret_value() if slack.signing_secret else "",
            process_before_response=False,
            logger=bolt_log,
        )
        self._register_listeners()

    # ------------------------------------------------------------------ lifecycle

    def _default_assistant(self) -> AnswerSource:
        return answer_service(self.settings)

    @property
    def assistant(self) -> AnswerSource:
        with self._assistant_lock:
            if self._assistant is None:
                self._assistant = self._assistant_factory()
            return self._assistant

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until queued answers are delivered (tests, graceful shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._pending_lock:
                if not self._pending:
                    return True
            time.sleep(0.02)
        return False

    def close(self, wait: bool = True) -> None:
        self._jobs.shutdown(wait=wait, cancel_futures=not wait)

    def _submit(self, fn: Callable[..., None], *args: Any) -> None:
        # Submitted and counted under the lock: a job that starts (and posts) before it is counted let
        # wait_idle() return while it was still delivering.
        with self._pending_lock:
            future = self._jobs.submit(fn, *args)
            self._pending.add(future)

        def done(f: Future) -> None:
            with self._pending_lock:
                self._pending.discard(f)

        future.add_done_callback(done)

    # ------------------------------------------------------------------ listeners

    def _register_listeners(self) -> None:
        app = self.app
        threads = AssistantThreads(logger=bolt_log)  # runs before the listeners below: DM threads go here

        @threads.thread_started
        def on_thread_started(event: dict, body: dict) -> None:
            self._greet_thread(event.get("assistant_thread") or {}, body.get("event_id"))

        @threads.thread_context_changed
        def on_thread_context_changed() -> None:
            """The channel the user is viewing does not steer answers: nothing to save."""

        @threads.user_message
        def on_thread_message(event: dict, body: dict, context: BoltContext, request: BoltRequest) -> None:
            if event.get("subtype"):
                return
            self._accept_message(event, body, context, request, direct=True, assistant_thread=True)

        app.assistant(threads)

        @app.event("app_mention")
        def on_mention(event: dict, body: dict, context: BoltContext, request: BoltRequest) -> None:
            if event.get("bot_id") or event.get("subtype") == "bot_message":  # no bot-to-bot loops
                log.info("Ignoring a mention from another bot (%s)", event.get("bot_id"))
                return
            self._accept_message(event, body, context, request, direct=False)

        @app.event("message")
        def on_message(event: dict, body: dict, context: BoltContext, request: BoltRequest) -> None:
            # Channel questions arrive as app_mention; here only people's DMs (no edits, joins, bots).
            if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
                return
            self._accept_message(event, body, context, request, direct=True)

        @app.command(self.slack.command)
        def on_command(ack: Callable[..., None], command: dict) -> None:
            self._accept_command(ack, command)

        @app.action(re.compile(r"^kqa_feedback_(up|down)$"))
        def on_feedback(ack: Callable[..., None], body: dict, action: dict) -> None:
            ack()
            self._record_feedback(body, action)

        @app.action(FEEDBACK_NATIVE)
        def on_feedback_buttons(ack: Callable[..., None], body: dict, action: dict) -> None:
            ack()
            self._record_feedback(body, action)

    def _accept_message(
        self,
        event: dict,
        body: dict,
        context: BoltContext,
        request: BoltRequest,
        *,
        direct: bool,
        assistant_thread: bool = False,
    ) -> None:
        channel, ts = event.get("channel", ""), event.get("ts", "")
        event_id = body.get("event_id")
        if not self.dedup.claim(f"event:{event_id}" if event_id else None, f"message:{channel}:{ts}"):
            retry = (request.headers.get("x-slack-retry-num") or ["0"])[0]
            log.info("Ignoring a repeated delivery of event %s (retry %s)", event_id, retry)
            return
        identity = BotIdentity(context.bot_user_id, context.bot_id)
        question = message_to_plain(event.get("text", ""), identity.user_id)
        thread_ts = event.get("thread_ts")
        reply = Reply(
            channel=channel,
            user=event.get("user", ""),
            thread_ts=thread_ts or (None if direct else ts),
            question=question,
            assistant_thread=assistant_thread,
            team=context.team_id or body.get("team_id"),
        )
        if not question:
            self._send_notice(reply, plain_message(USAGE.format(command=self.slack.command)))
            return
        if assistant_thread:  # Slack shows the status under the question: no reaction, no placeholder
            self._update_progress(reply, SEARCHING)
        else:
            self._react(channel, ts)
            reply.placeholder_ts = self._post_placeholder(reply)
        follow_up = (thread_ts, ts) if thread_ts and thread_ts != ts else None
        self._submit(self._answer, reply, follow_up, direct, identity)

    def _accept_command(self, ack: Callable[..., None], command: dict) -> None:
        public, question = parse_command_text(command.get("text", ""))
        if not question or question.lower() in {"help", "-h", "--help"}:
            ack(response_type="ephemeral", text=escape(USAGE.format(command=self.slack.command)))
            return
        if not self.dedup.claim(
            f"command:{command.get('trigger_id')}" if command.get("trigger_id") else None
        ):
            ack()
            return
        ack(response_type="ephemeral", text=progress_text(SEARCHING))
        user = command.get("user_id", "")
        reply = Reply(
            channel=command.get("channel_id", ""),
            user=user,
            response_url=command.get("response_url"),
            response_type="in_channel" if public else "ephemeral",
            asked_by=user if public and _USER_ID_RE.match(user) else None,
            question=question,
        )
        self._submit(self._answer, reply, None, False, BotIdentity(None, None))

    # ------------------------------------------------------------------ answering (worker threads)

    def _answer(
        self, reply: Reply, follow_up: tuple[str, str] | None, direct: bool, identity: BotIdentity
    ) -> None:
        try:
            history = self._thread_history(reply.channel, follow_up, direct, identity) if follow_up else []
            if reply.assistant_thread and not any(turn["role"] == "user" for turn in history):
                self._set_title(reply)
            answer = self._generate(reply, history)
            answer_id = self.memory.remember(
                AnsweredQuestion(
                    answer=answer, history=history, channel=reply.channel, thread_ts=reply.thread_ts
                )
            )
            messages = render_answer(answer, answer_id, native_feedback=reply.assistant_thread)
        except KQAError as err:
            log.warning("Could not answer %r: %s", reply.question[:80], err)
            self._send_notice(reply, notice_message(user_message(err)))
            self._clear_status(reply)
            return
        except Exception:
            log.exception("Answering failed")
            self._send_notice(reply, notice_message(APOLOGY))
            self._clear_status(reply)
            return
        if reply.assistant_thread:
            try:
                if self._stream_answer(reply, answer, answer_id):
                    return
            finally:
                self._clear_status(reply)
        if reply.asked_by:
            asked = {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"<@{reply.asked_by}> asked: {escape(reply.question)}"}
                ],
            }
            messages[0].blocks.insert(0, asked)
        delivered = 0
        try:
            for message in messages:
                self._deliver(reply, message, replace_placeholder=delivered == 0)
                delivered += 1
        except (SlackApiError, DeliveryError) as err:
            log.error(
                "Slack did not accept answer part %d/%d: %s", delivered + 1, len(messages), slack_error(err)
            )
            self._send_notice(
                reply,
                notice_message(
                    f"Sorry, Slack did not accept my answer ({slack_error(err)}). Please try again."
                ),
                replace_placeholder=delivered == 0,
            )

    def _generate(self, reply: Reply, history: list[dict]) -> Answer:
        assistant = self.assistant
        stream: Callable[..., Iterable[StreamEvent]] | None = getattr(assistant, "stream", None)
        if stream is None:
            return assistant.ask(reply.question, history=history or None)
        last_update = time.monotonic()
        last_status = SEARCHING
        for item in stream(reply.question, history=history or None):
            if item.kind == "answer" and item.answer is not None:
                return item.answer
            # A thread's status is a few calls per answer; only placeholder edits need spacing out.
            due = reply.assistant_thread or time.monotonic() - last_update >= self.slack.progress_update_s
            if (
                item.kind == "status"
                and item.text
                and item.text != last_status
                and (reply.placeholder_ts or reply.assistant_thread)
                and due
            ):
                last_status, last_update = item.text, time.monotonic()
                self._update_progress(reply, item.text)
        raise RuntimeError("the assistant's stream ended without an answer")

    def _thread_history(
        self, channel: str, follow_up: tuple[str, str], direct: bool, identity: BotIdentity
    ) -> list[dict]:
        """Earlier turns of the thread; on a Slack error the question is answered without them."""
        thread_ts, current_ts = follow_up
        messages: list[dict] = []
        cursor = None
        try:
            for _ in range(5):  # up to 1,000 messages
                response = self.client.conversations_replies(
                    channel=channel, ts=thread_ts, limit=200, cursor=cursor
                )
                messages.extend(response.get("messages") or [])
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as err:
            log.warning("Could not read thread %s for history: %s", thread_ts, slack_error(err))
        return thread_history(
            messages,
            before_ts=current_ts,
            bot_user_id=identity.user_id,
            bot_id=identity.bot_id,
            direct=direct,
            limit=self.slack.history_messages,
        )

    # ------------------------------------------------------------------ Slack output

    def _react(self, channel: str, ts: str) -> None:
        if not self.slack.progress_reaction:
            return
        try:
            self.client.reactions_add(channel=channel, timestamp=ts, name=self.slack.progress_reaction)
        except SlackApiError as err:  # cosmetic: never stop the answer for it
            log.warning("Could not add the progress reaction: %s", slack_error(err))

    def _post_placeholder(self, reply: Reply) -> str | None:
        try:
            response = self.client.chat_postMessage(
                channel=reply.channel, thread_ts=reply.thread_ts, text=progress_text(SEARCHING)
            )
            return response.get("ts")
        except SlackApiError as err:
            log.warning("Could not post the progress placeholder: %s", slack_error(err))
            return None

    def _update_progress(self, reply: Reply, status: str) -> None:
        if reply.assistant_thread:
            self._set_status(reply, status)
            return
        try:
            self.client.chat_update(
                channel=reply.channel, ts=reply.placeholder_ts, text=progress_text(status)
            )
        except SlackApiError as err:
            log.warning("Could not update progress: %s", slack_error(err))

    # ------------------------------------------------------------------ assistant threads

    def _greet_thread(self, thread: dict, event_id: str | None) -> None:
        """A new assistant thread: a greeting, and prompts about the events the index covers."""
        channel, thread_ts = thread.get("channel_id", ""), thread.get("thread_ts", "")
        if not channel or not thread_ts or not self.dedup.claim(f"event:{event_id}" if event_id else None):
            return
        greeting = greeting_message()
        try:
            self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=greeting.text, blocks=greeting.blocks
            )
        except SlackApiError as err:
            log.warning("Could not greet the assistant thread: %s", slack_error(err))
        index_status = getattr(self.assistant, "index_status", None)
        try:
            prompts = suggested_prompts(index_status().events) if index_status else []
        except Exception as err:  # prompts are a courtesy: a store or answer service down costs only them
            log.warning("No suggested prompts: %s", slack_error(err))
            prompts = []
        if not prompts:
            return
        try:
            self.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, thread_ts=thread_ts, prompts=prompts, title="Ask about an event:"
            )
        except SlackApiError as err:
            log.warning("Could not set suggested prompts: %s", slack_error(err))

    def _set_title(self, reply: Reply) -> None:
        try:
            self.client.assistant_threads_setTitle(
                channel_id=reply.channel, thread_ts=reply.thread_ts, title=reply.question[:100]
            )
        except SlackApiError as err:  # cosmetic
            log.warning("Could not set the thread title: %s", slack_error(err))

    def _set_status(self, reply: Reply, status: str) -> None:
        try:
            self.client.assistant_threads_setStatus(
                channel_id=reply.channel, thread_ts=reply.thread_ts, status=status
            )
        except SlackApiError as err:
            log.warning("Could not set the thread status: %s", slack_error(err))

    def _clear_status(self, reply: Reply) -> None:
        if reply.assistant_thread:
            self._set_status(reply, "")

    def _stream_answer(self, reply: Reply, answer: Answer, answer_id: str) -> bool:
        """Stream the verified answer one sentence per append, sources and feedback on stop. False when
        Slack refused to start a stream (the caller posts the answer instead); a stream broken midway
        is completed by editing its message."""
        pieces = markdown_pieces(answer)
        trailer = answer_trailer(answer, answer_id, native_feedback=True)
        if sum(map(len, pieces)) > MARKDOWN_TEXT_LIMIT or len(trailer) > MAX_BLOCKS_PER_MESSAGE:
            return False
        try:
            started = self.client.chat_startStream(
                channel=reply.channel,
                thread_ts=reply.thread_ts,
                recipient_user_id=reply.user or None,
                recipient_team_id=reply.team,
                markdown_text=pieces[0],
            )
        except SlackApiError as err:
            log.warning("Slack refused to stream the answer (%s); posting it instead", slack_error(err))
            return False
        ts = started["ts"]
        try:
            for piece in pieces[1:]:
                self.client.chat_appendStream(channel=reply.channel, ts=ts, markdown_text=piece)
            self.client.chat_stopStream(channel=reply.channel, ts=ts, blocks=trailer)
            return True
        except SlackApiError as err:
            log.error("The answer's stream broke (%s); replacing its message", slack_error(err))
        try:  # end the stream if Slack still holds it open; the edit below carries the whole answer
            self.client.chat_stopStream(channel=reply.channel, ts=ts)
        except SlackApiError as err:
            log.info("Could not stop the broken stream: %s", slack_error(err))
        messages = render_answer(answer, answer_id, native_feedback=True)
        reply.placeholder_ts = ts
        try:
            for number, message in enumerate(messages):
                self._deliver(reply, message, replace_placeholder=number == 0)
        except SlackApiError as err:
            log.error("Could not complete the broken stream: %s", slack_error(err))
        return True

    def _deliver(self, reply: Reply, message: SlackMessage, *, replace_placeholder: bool) -> None:
        if reply.response_url:
            self._send_to_response_url(
                reply.response_url, message, response_type=reply.response_type, replace_original=False
            )
        elif replace_placeholder and reply.placeholder_ts:
            self.client.chat_update(
                channel=reply.channel, ts=reply.placeholder_ts, text=message.text, blocks=message.blocks
            )
        else:
            self.client.chat_postMessage(
                channel=reply.channel,
                thread_ts=reply.thread_ts,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
            )

    def _send_notice(self, reply: Reply, message: SlackMessage, *, replace_placeholder: bool = True) -> None:
        """Best effort: a notice replaces the placeholder, else is posted; failures are only logged."""
        attempts = [replace_placeholder and bool(reply.placeholder_ts), False]
        for replace in dict.fromkeys(attempts):
            try:
                self._deliver(reply, message, replace_placeholder=replace)
                return
            except (SlackApiError, DeliveryError) as err:
                log.error("Could not tell the user about a problem: %s", slack_error(err))

    def _send_to_response_url(
        self, url: str, message: SlackMessage, *, response_type: str, replace_original: bool
    ) -> None:
        webhook = WebhookClient(url, timeout=30, retry_handlers=retry_handlers(self.slack))
        response = webhook.send(
            text=message.text,
            blocks=message.blocks,
            response_type=response_type,
            replace_original=replace_original,
        )
        if response.status_code != 200:
            raise DeliveryError(f"response_url answered HTTP {response.status_code}: {response.body[:200]}")

    # ------------------------------------------------------------------ feedback

    def _record_feedback(self, body: dict, action: dict) -> None:
        user_id = (body.get("user") or {}).get("id", "")
        click = f"click:{user_id}:{action.get('action_id')}:{action.get('action_ts')}" if action.get("action_ts") else None
        if not self.dedup.claim(click):  # Slack replays an unacknowledged click: one record per click
            log.info("Ignoring a replayed feedback click %s", click)
            return
        if action.get("type") == "feedback_buttons":  # Slack's own buttons: the value says which
            rating, _, answer_id = (action.get("value") or "").partition(":")
            rating = "up" if rating == "up" else "down"
        else:
            rating = "up" if action.get("action_id") == FEEDBACK_UP else "down"
            answer_id = action.get("value", "")
        container = body.get("container") or {}
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        user = (body.get("user") or {}).get("id", "")
        item = self.memory.get(answer_id)
        record = slack_feedback_record(
            rating=rating,
            item=item,
            settings=self.settings,
            message_text=message.get("text", ""),
            slack={
                "team": (body.get("team") or {}).get("id"),
                "channel": channel,
                "user": user,
                "message_ts": container.get("message_ts") or message.get("ts"),
                "thread_ts": message.get("thread_ts") or (item.thread_ts if item else None),
                "answer_id": answer_id,
            },
        )
        try:
            append_feedback(self.settings.feedback_file, record)
            thanks = THANKS
            log.info("Feedback %s recorded for answer %s", rating, answer_id)
        except OSError as err:
            log.error("Could not write feedback to %s: %s", self.settings.feedback_file, err)
            thanks = "Sorry, I could not record your feedback right now."
        try:
            if container.get("is_ephemeral") and body.get("response_url"):
                self._send_to_response_url(
                    body["response_url"],
                    plain_message(thanks),
                    response_type="ephemeral",
                    replace_original=False,
                )
            else:
                self.client.chat_postEphemeral(
                    channel=channel,
                    user=user,
                    text=thanks,
                    thread_ts=message.get("thread_ts") or (item.thread_ts if item else None),
                )
        except (SlackApiError, DeliveryError) as err:
            log.warning("Could not thank for feedback: %s", slack_error(err))


def user_message(err: KQAError) -> str:
    """What a Slack user is told: question problems verbatim; operational details stay in the log."""
    if isinstance(err, InvalidQuestionError):
        return str(err)
    if isinstance(err, EmptyIndexError):
        return (
            "I can't answer yet: the recap index is empty. Ask whoever runs this bot to run the ingest job "
            "(`python -m ingest`)."
        )
    return "Sorry, the recap index or the language model is unavailable right now. Please try again later."


def parse_command_text(text: str) -> tuple[bool, str]:
    """``--public what is ...`` -> (True, "what is ..."): slash answers are private unless asked."""
    words = (text or "").strip()
    public = False
    for flag in ("--public", "-p"):
        if words == flag or words.startswith(flag + " "):
            public, words = True, words[len(flag) :].strip()
            break
    return public, words
