"""The bot over real HTTP against the mock Web API, with scripted answers: security, exactly-once
delivery, Slack's limits, escaping, rate limits and errors (the parts that don't depend on the corpus)."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request

import pytest
from slack_harness import (
    ALICE,
    CHANNEL,
    SIGNING_SECRET,
    ScriptedAssistant,
    cited_answer,
    direct_message,
    mention,
)
from slack_mock_api import BOT_TOKEN, BOT_USER_ID, slack_limit_error

from rag.errors import EmptyIndexError, InvalidQuestionError, StoreUnavailableError

pytestmark = pytest.mark.server

PLATFORM = "Platform engineering went mainstream at KubeCon Detroit [1]."


def scripted(text: str = PLATFORM, **kwargs) -> ScriptedAssistant:
    return ScriptedAssistant(lambda question, history: cited_answer(question, text), **kwargs)


def answer_updates(slack_api, count: int = 1, **kwargs):
    """chat.update calls that carry an answer (blocks), not progress text."""
    return slack_api.wait_for("chat.update", count, where=lambda c: bool(c.params.get("blocks")), **kwargs)


def test_mention_is_acknowledged_at_once_and_answered_in_its_thread(slack_api, start_bot):
    assistant = scripted(release=threading.Event())
    bot = start_bot(assistant)

    status, _ = bot.client.event(mention("What happened with platform engineering?", "1700000001.000100"))

    # Acknowledged while the answer is still being generated (the assistant is blocked).
    assert status == 200
    assert assistant.started.wait(10)
    reaction = slack_api.wait_for("reactions.add")[0].params
    assert reaction == {"channel": CHANNEL, "timestamp": "1700000001.000100", "name": "eyes"}
    placeholder = slack_api.wait_for("chat.postMessage")[0]
    assert placeholder.params["thread_ts"] == "1700000001.000100"
    assert placeholder.params["text"].startswith(":hourglass_flowing_sand:")
    assert not answer_updates(slack_api, 0)

    assistant.release.set()
    update = answer_updates(slack_api)[0].params
    assert update["channel"] == CHANNEL
    assert update["ts"] == slack_api.thread(CHANNEL, "1700000001.000100")[0]["ts"]
    section = update["blocks"][0]["text"]["text"]
    assert "<https://example.org/posts/three-takeaways?a=1&amp;b=2|[1]>" in section
    assert update["text"] == PLATFORM  # the notification text keeps the plain [1]
    assert assistant.calls == [("What happened with platform engineering?", None)]
    assert bot.bot.wait_idle()


def test_forged_or_stale_requests_get_401_and_reach_no_handler(slack_api, start_bot):
    assistant = scripted()
    bot = start_bot(assistant)

    body = json.dumps({"type": "event_callback", "event_id": "EvForged", "event": mention("hi", "1.1")})
    status, _ = bot.client.post(body, "application/json", signature="v0=" + "0" * 64)
    assert status == 401
    status, _ = bot.client.post(body, "application/json", timestamp=int(time.time()) - 10 * 60)
    assert status == 401
    wrong_secret = type(bot.client)(bot.client.url, secret="not-the-signing-secret")
    status, _ = wrong_secret.event(mention("hello", "1700000002.000100"))
    assert status == 401
    status, _ = bot.client.post(body, "application/json", headers={"X-Slack-Signature": ""}, signature="")
    assert status == 401

    # A genuine request afterwards is answered, and it is the only thing that reached a handler.
    status, _ = bot.client.event(mention("genuine question", "1700000003.000100"))
    assert status == 200
    answer_updates(slack_api)
    assert bot.bot.wait_idle()
    assert [q for q, _ in assistant.calls] == ["genuine question"]
    assert len(slack_api.calls("reactions.add")) == 1
    assert len(slack_api.calls("chat.postMessage")) == 1


def test_retries_and_duplicate_deliveries_answer_exactly_once(slack_api, start_bot):
    assistant = scripted(release=threading.Event())
    bot = start_bot(assistant)
    event = mention("What is new in WebAssembly?", "1700000010.000100")

    assert bot.client.event(event, event_id="EvRetried")[0] == 200
    assert assistant.started.wait(10)
    # Slack retries up to 3 times while the first delivery is still generating; all are acknowledged.
    results = []
    threads = [
        threading.Thread(
            target=lambda n=n: results.append(bot.client.event(event, event_id="EvRetried", retry_num=n))
        )
        for n in (1, 2, 3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200, 200, 200]
    # The same message delivered again under another event id (e.g. as a DM "message" event) too.
    assert bot.client.event(event, event_id="EvOtherCopy")[0] == 200

    assistant.release.set()
    answer_updates(slack_api)
    assert bot.bot.wait_idle()
    # A late retry after the answer was delivered is still recognised.
    assert bot.client.event(event, event_id="EvRetried", retry_num=3)[0] == 200
    assert bot.bot.wait_idle()
    assert len(assistant.calls) == 1
    assert len(slack_api.calls("chat.postMessage")) == 1
    assert len(slack_api.calls("reactions.add")) == 1
    assert len([c for c in slack_api.calls("chat.update") if c.params.get("blocks")]) == 1


def test_direct_message_is_answered_in_the_conversation(slack_api, start_bot):
    assistant = scripted()
    bot = start_bot(assistant)
    assert bot.client.event(direct_message("Tell me about Detroit", "1700000020.000100"))[0] == 200
    update = answer_updates(slack_api)[0].params
    placeholder = slack_api.calls("chat.postMessage")[0].params
    assert placeholder["channel"] == update["channel"] == "D0ALICE01"
    assert placeholder.get("thread_ts") is None  # top level of the DM, like a chat
    assert [q for q, _ in assistant.calls] == ["Tell me about Detroit"]

    # The bot's own messages and edits arrive as message events too: never answered.
    own = direct_message("an answer", "1700000021.000100", user=BOT_USER_ID) | {"bot_id": "BBOT0001"}
    edited = direct_message("edited", "1700000022.000100") | {"subtype": "message_changed"}
    assert bot.client.event(own)[0] == 200
    assert bot.client.event(edited)[0] == 200
    assert bot.bot.wait_idle()
    assert len(assistant.calls) == 1


def test_empty_mention_gets_usage_not_an_answer(slack_api, start_bot):
    assistant = scripted()
    bot = start_bot(assistant)
    assert bot.client.event(mention("", "1700000030.000100"))[0] == 200
    post = slack_api.wait_for("chat.postMessage")[0].params
    assert "/kubecon" in post["text"] and "&lt;question&gt;" in post["text"]
    assert assistant.calls == []


def test_rate_limited_web_api_call_is_retried_after_retry_after(slack_api, start_bot):
    slack_api.fail("chat.update", status=429, retry_after=1)
    bot = start_bot(scripted())
    bot.client.event(mention("question", "1700000040.000100"))
    answer_updates(slack_api)
    attempts = slack_api.calls("chat.update")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0  # waited for Retry-After
    assert bot.bot.wait_idle()


def test_web_api_error_is_logged_and_the_user_gets_an_apology(slack_api, start_bot, caplog):
    slack_api.fail("chat.update", error="invalid_blocks")
    bot = start_bot(scripted())
    with caplog.at_level(logging.ERROR, logger="slackbot"):
        bot.client.event(mention("question", "1700000050.000100"))
        apology = slack_api.wait_for("chat.update")[0].params
        assert bot.bot.wait_idle()
    assert apology["text"].startswith(":warning: Sorry") and "invalid_blocks" in apology["text"]
    assert any("invalid_blocks" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("error", "told"),
    [
        (RuntimeError("index exploded at /srv/kqa"), ":warning: Sorry, something went wrong"),
        (
            InvalidQuestionError("Unrecognised event 'Mars 2031': name a city"),
            "Unrecognised event 'Mars 2031'",
        ),
        (EmptyIndexError("The index at /srv/kqa/chroma is empty"), "the recap index is empty"),
        (StoreUnavailableError("Chroma at http://10.0.0.5:8000 refused"), "unavailable right now"),
    ],
)
def test_answer_failure_gets_a_short_notice_not_silence(slack_api, start_bot, error, told):
    def fail(question, history):
        raise error

    bot = start_bot(ScriptedAssistant(fail))
    bot.client.event(mention("question", "1700000060.000100"))
    notice = slack_api.wait_for("chat.update")[0].params["text"]
    assert notice.startswith(":warning:") and told in notice
    assert "/srv/kqa" not in notice and "10.0.0.5" not in notice  # internals stay in the log


def test_long_answer_is_split_across_messages_within_slack_limits(slack_api, start_bot):
    paragraphs = [
        f"Paragraph {i}: platform teams described golden paths, self-service portals and guardrails [1]. "
        + "They measured developer experience with surveys and DORA metrics. " * 12
        for i in range(12)
    ]
    text = "\n\n".join(paragraphs)
    assert len(text) > 3 * 3000
    bot = start_bot(scripted(text))
    bot.client.event(mention("Tell me everything", "1700000070.000100"))
    first = answer_updates(slack_api)[0].params
    assert bot.bot.wait_idle()
    rest = [c.params for c in slack_api.calls("chat.postMessage")][1:]  # [0] is the placeholder
    assert len(rest) >= 2
    parts = [first, *rest]
    for part in parts:
        assert slack_limit_error(part) is None
        assert part is first or part["thread_ts"] == "1700000070.000100"
    sections = [b["text"]["text"] for p in parts for b in p["blocks"] if b["type"] == "section"]
    assert " ".join(" ".join(sections).split()) == " ".join(
        text.replace("[1]", "<https://example.org/posts/three-takeaways?a=1&amp;b=2|[1]>").split()
    )
    # Sources and the feedback buttons come once, after the whole answer.
    assert [b["type"] for b in parts[-1]["blocks"]][-2:] == ["context", "actions"]
    assert all(b["type"] == "section" for p in parts[:-1] for b in p["blocks"])


def test_post_content_is_escaped(slack_api, start_bot):
    hostile = "Ping <!channel> & @here, see <@U0VICTIM1> or <https://evil.example|click> [1]."
    quote = "Join @everyone at <!here> & win > 5 prizes"
    bot = start_bot(ScriptedAssistant(lambda q, h: cited_answer(q, hostile, quote=quote)))
    bot.client.event(mention("question", "1700000080.000100"))
    blocks = answer_updates(slack_api)[0].params["blocks"]
    section = blocks[0]["text"]["text"]
    source = blocks[1]["elements"][0]["text"]
    payload = json.dumps(blocks, ensure_ascii=False)
    assert "<!channel>" not in payload and "<!here>" not in payload and "<@U0VICTIM1>" not in payload
    assert "<https://evil.example" not in payload
    assert "&lt;!channel&gt; &amp; @\u2060here" in section
    assert "@\u2060everyone at &lt;!here&gt; &amp; win &gt; 5 prizes" in source


def test_slash_command_answers_ephemerally_through_response_url(slack_api, start_bot):
    assistant = scripted()
    bot = start_bot(assistant)
    status, body = bot.client.command("What about WebAssembly?", response_url=slack_api.response_url("cmd1"))
    assert status == 200
    ack = json.loads(body)
    assert ack["response_type"] == "ephemeral" and "Searching" in ack["text"]
    reply = slack_api.wait_for("response_url:cmd1")[0].params
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert "<https://example.org/posts/three-takeaways?a=1&amp;b=2|[1]>" in reply["blocks"][0]["text"]["text"]
    assert [q for q, _ in assistant.calls] == ["What about WebAssembly?"]

    # --public shares the answer with the channel and says who asked.
    bot.client.command("--public What about WebAssembly?", response_url=slack_api.response_url("cmd2"))
    public = slack_api.wait_for("response_url:cmd2")[0].params
    assert public["response_type"] == "in_channel"
    assert public["blocks"][0]["elements"][0]["text"] == f"<@{ALICE}> asked: What about WebAssembly?"

    # No question: usage, privately, and no answer.
    status, body = bot.client.command("", response_url=slack_api.response_url("cmd3"))
    assert status == 200 and "/kubecon" in json.loads(body)["text"]
    assert bot.bot.wait_idle()
    assert len(assistant.calls) == 2
    assert not slack_api.calls("response_url:cmd3")


def test_feedback_buttons_are_acknowledged_and_logged(slack_api, start_bot):
    bot = start_bot(scripted())
    bot.client.event(mention("What happened with platform engineering?", "1700000090.000100"))
    update = answer_updates(slack_api)[0].params
    buttons = update["blocks"][-1]["elements"]
    assert [b["action_id"] for b in buttons] == ["kqa_feedback_up", "kqa_feedback_down"]
    message = slack_api.thread(CHANNEL, "1700000090.000100")[0]

    for button in (buttons[0], buttons[1]):
        payload = {
            "type": "block_actions",
            "team": {"id": "T0TEST01"},
            "user": {"id": ALICE},
            "channel": {"id": CHANNEL},
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": CHANNEL},
            "message": {**message, "thread_ts": "1700000090.000100"},
            "response_url": slack_api.response_url("fb"),
            "trigger_id": "trig.fb",
            "actions": [{**button, "block_id": "kqa_feedback", "type": "button", "action_ts": "1.2"}],
        }
        status, _ = bot.client.action(payload)
        assert status == 200
    thanks = slack_api.wait_for("chat.postEphemeral", 2)
    assert thanks[0].params["user"] == ALICE and thanks[0].params["thread_ts"] == "1700000090.000100"

    records = [json.loads(line) for line in bot.settings.feedback_file.read_text().splitlines()]
    assert [r["rating"] for r in records] == ["up", "down"]
    first = records[0]
    assert first["question"] == "What happened with platform engineering?"
    assert first["answer"] == PLATFORM
    assert first["citations"][0]["n"] == 1 and first["citations"][0]["quote"]
    assert first["settings"]["llm_backend"] == "extractive" and "openai_api_key" not in first["settings"]
    assert first["slack"]["channel"] == CHANNEL and first["slack"]["user"] == ALICE


def test_url_verification_and_health(start_bot):
    bot = start_bot(scripted())
    status, body = bot.client.post(
        json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"}), "application/json"
    )
    assert status == 200 and "c-123" in body
    health = bot.transport.url.replace("/slack/events", "/healthz")
    with urllib.request.urlopen(health, timeout=5) as response:
        assert response.status == 200


def test_tokens_never_appear_in_logs(slack_api, start_bot, caplog):
    caplog.set_level(logging.DEBUG)
    slack_api.fail("chat.update", error="invalid_blocks")
    bot = start_bot(scripted())
    bot.client.post("{}", "application/json", signature="v0=bad")
    bot.client.event(mention("question", "1700000100.000100"))
    slack_api.wait_for("chat.update")
    bot.client.command("a question", response_url=slack_api.response_url("logs"))
    slack_api.wait_for("response_url:logs")
    assert bot.bot.wait_idle()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Sending a request" in logged  # the Web API client really logged its requests at DEBUG
    assert BOT_TOKEN not in logged and SIGNING_SECRET not in logged


def test_a_retry_after_a_restart_is_not_answered_again(slack_api, start_bot):
    first = start_bot(scripted())
    event = mention("What is new in WebAssembly?", "1700000100.000100")
    assert first.client.event(event, event_id="EvBeforeRestart")[0] == 200
    answer_updates(slack_api)
    assert first.bot.wait_idle()
    first.transport.stop()  # the bot restarts (same KQA_HOME: the SQLite claims survive)

    assistant = scripted()
    second = start_bot(assistant)
    assert second.client.event(event, event_id="EvBeforeRestart", retry_num=1)[0] == 200
    assert second.bot.wait_idle()
    assert assistant.calls == [] and len(slack_api.calls("chat.postMessage")) == 1


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_one_event_delivered_to_two_bot_processes_at_once_is_answered_once(slack_api, start_bot, store, request):
    overrides = {"dedup_url": request.getfixturevalue("redis_url")} if store == "redis" else {}
    assistants = [scripted(), scripted()]
    bots = [start_bot(assistant, **overrides) for assistant in assistants]
    event = mention("What happened with platform engineering?", "1700000110.000100")
    results = []
    threads = [threading.Thread(target=lambda b=b: results.append(b.client.event(event, event_id="EvTwice"))) for b in bots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200, 200]
    answer_updates(slack_api)
    assert all(b.bot.wait_idle() for b in bots)
    assert sum(len(a.calls) for a in assistants) == 1
    assert len(slack_api.calls("chat.postMessage")) == 1


def test_mentions_from_other_bots_are_not_answered(slack_api, start_bot):
    assistant = scripted()
    bot = start_bot(assistant)
    from_bot = {**mention("Answer me, fellow bot", "1700000120.000100"), "bot_id": "B0OTHER01"}
    assert bot.client.event(from_bot)[0] == 200
    assert bot.client.event({**from_bot, "ts": "1700000121.000100", "subtype": "bot_message"})[0] == 200
    assert bot.bot.wait_idle()
    assert assistant.calls == [] and slack_api.calls("chat.postMessage") == []


def test_a_replayed_feedback_click_is_recorded_once(slack_api, start_bot):
    bot = start_bot(scripted())
    bot.client.event(mention("What happened with platform engineering?", "1700000130.000100"))
    button = answer_updates(slack_api)[0].params["blocks"][-1]["elements"][0]
    message = slack_api.thread(CHANNEL, "1700000130.000100")[0]
    payload = {
        "type": "block_actions", "team": {"id": "T0TEST01"}, "user": {"id": ALICE}, "channel": {"id": CHANNEL},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": CHANNEL},
        "message": {**message, "thread_ts": "1700000130.000100"}, "trigger_id": "trig.replay",
        "actions": [{**button, "block_id": "kqa_feedback", "type": "button", "action_ts": "1700000131.5"}],
    }  # fmt: skip
    assert [bot.client.action(payload)[0] for _ in range(3)] == [200, 200, 200]
    slack_api.wait_for("chat.postEphemeral", 1)
    assert len(bot.settings.feedback_file.read_text().splitlines()) == 1


def test_tokens_are_redacted_by_the_wsgi_entry_point_too(slack_api, start_bot, caplog):
    from slackbot.server import wsgi_app

    bot = start_bot(scripted())
    wsgi_app(bot.bot)  # what gunicorn imports; the redaction is the bot's own, whatever the entry point
    with caplog.at_level(logging.INFO):
        logging.getLogger("third.party").info("calling Slack with %s and %s", BOT_TOKEN, SIGNING_SECRET)
    assert BOT_TOKEN not in caplog.text and SIGNING_SECRET not in caplog.text and "***" in caplog.text
