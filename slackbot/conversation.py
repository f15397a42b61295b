"""Reading Slack messages back as a conversation: the question in a message and a thread's history.

Follow-ups inside a thread are answered with the thread's earlier turns as history
(``conversations.replies``): people's messages become ``user`` turns and the bot's answers ``assistant``
turns, in the OpenAI-style format :meth:`rag.assistant.Assistant.ask` takes.
"""

from __future__ import annotations

import re

from slackbot.formatting import (
    GREETING_PREFIX,
    NOTICE_PREFIX,
    PROGRESS_PREFIX,
    is_streamed_markdown,
    markdown_to_plain,
    unescape,
)

_USER_MENTION_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_SPECIAL_RE = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_LINK_RE = re.compile(r"<((?:https?|mailto):[^<>|]+)(?:\|([^<>]*))?>")
_CHANNEL_RE = re.compile(r"<#[CG][A-Z0-9]+\|([^>]*)>")


def message_to_plain(text: str, bot_user_id: str | None = None) -> str:
    """Slack message markup -> the plain text a person meant, without the mention of the bot itself."""
    text = text or ""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = _USER_MENTION_RE.sub(lambda m: "@" + m.group(1), text)
    text = _SPECIAL_RE.sub(lambda m: "@" + m.group(1), text)
    text = _CHANNEL_RE.sub(lambda m: "#" + m.group(1), text)
    text = _LINK_RE.sub(lambda m: m.group(2) or m.group(1), text)
    lines = (" ".join(line.split()) for line in unescape(text).splitlines())
    return "\n".join(line for line in lines if line)  # a list answer keeps its lines


def _is_from_bot(message: dict, bot_user_id: str | None, bot_id: str | None) -> bool:
    return bool(
        (bot_user_id and message.get("user") == bot_user_id) or (bot_id and message.get("bot_id") == bot_id)
    )


def thread_history(
    messages: list[dict],
    *,
    before_ts: str,
    bot_user_id: str | None,
    bot_id: str | None,
    direct: bool,
    limit: int,
) -> list[dict]:
    """The turns of a thread before ``before_ts`` as ``[{"role", "content"}]``, oldest first.

    In channels only messages addressed to the bot (mentions) count as questions, so people talking
    among themselves in the thread don't steer the answer; in a DM every message is addressed to it.
    Progress placeholders, notices and greetings are skipped, and an answer split across messages is
    one turn; a streamed answer (markdown) is read back as its plain text.
    """
    turns: list[dict] = []
    for message in sorted(messages, key=lambda m: float(m.get("ts", "0"))):
        if float(message.get("ts", "0")) >= float(before_ts):
            continue
        text = message.get("text") or ""
        if _is_from_bot(message, bot_user_id, bot_id):
            if text.startswith((PROGRESS_PREFIX, NOTICE_PREFIX, GREETING_PREFIX)) or not text.strip():
                continue
            content = markdown_to_plain(text) if is_streamed_markdown(text) else message_to_plain(text)
            if turns and turns[-1]["role"] == "assistant":
                turns[-1]["content"] += "\n" + content
            else:
                turns.append({"role": "assistant", "content": content})
            continue
        if message.get("bot_id") or message.get("subtype"):
            continue  # other bots, joins, edits
        addressed = direct or (bot_user_id is not None and f"<@{bot_user_id}" in text)
        content = message_to_plain(text, bot_user_id)
        if addressed and content:
            turns.append({"role": "user", "content": content})
    return turns[-limit:] if limit else []
