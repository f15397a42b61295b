"""Reading questions and thread history back from Slack messages."""

from __future__ import annotations

from rag.types import Answer
from slackbot.conversation import message_to_plain, thread_history
from slackbot.formatting import escape, notice_message, progress_text, render_answer

BOT = "UBOT0001"


def test_message_to_plain_strips_the_bot_mention_and_markup():
    text = f"<@{BOT}> what did <@U123|bob> say about <https://kubecon.io|KubeCon> in <#C1|general> &amp; <!here>?"
    assert message_to_plain(text, BOT) == "what did @U123 say about KubeCon in #general & @here?"
    assert message_to_plain(f"<@{BOT}>", BOT) == ""


def test_thread_history_pairs_questions_with_the_bots_answers():
    answer_parts = render_answer(Answer(question="q", text="Platform engineering [1].\n\n" + "More. " * 800))
    messages = [
        {"ts": "1.0", "user": "UALICE", "text": f"<@{BOT}> What about platform engineering?"},
        {"ts": "1.1", "user": BOT, "bot_id": "B1", "text": answer_parts[0].text},
        {"ts": "1.2", "user": BOT, "bot_id": "B1", "text": answer_parts[1].text},
        {"ts": "1.3", "user": "UBOB", "text": "lunch anyone?"},  # not addressed to the bot
        {
            "ts": "1.4",
            "user": BOT,
            "bot_id": "B1",
            "text": notice_message("Sorry, something went wrong").text,
        },
        {"ts": "1.5", "user": "UOTHERBOT", "bot_id": "B2", "text": "I am another bot"},
        {"ts": "1.6", "user": BOT, "bot_id": "B1", "text": progress_text("Searching the recaps…")},
        {"ts": "1.7", "user": "UALICE", "text": f"<@{BOT}> And at Valencia?"},  # the current question
        {"ts": "1.8", "user": "UALICE", "text": f"<@{BOT}> later"},
    ]
    history = thread_history(messages, before_ts="1.7", bot_user_id=BOT, bot_id="B1", direct=False, limit=12)
    assert [t["role"] for t in history] == ["user", "assistant"]
    assert history[0]["content"] == "What about platform engineering?"
    assert history[1]["content"].startswith("Platform engineering [1].") and "More." in history[1]["content"]


def test_in_a_dm_every_message_is_a_question_and_history_is_limited():
    messages = [{"ts": f"2.{i}", "user": "UALICE", "text": escape(f"question {i} <x>")} for i in range(1, 9)]
    history = thread_history(messages, before_ts="2.8", bot_user_id=BOT, bot_id=None, direct=True, limit=3)
    assert [t["content"] for t in history] == ["question 5 <x>", "question 6 <x>", "question 7 <x>"]
    assert thread_history(messages, before_ts="2.8", bot_user_id=BOT, bot_id=None, direct=True, limit=0) == []
