"""The chat logic over a real Assistant and a real (embedded) Chroma store, without a browser."""

from __future__ import annotations

import json

import pytest

from rag.settings import Settings
from webchat.chat import (
    ALL_EVENTS,
    ANY_YEAR,
    ChatService,
    history_messages,
    parse_filters,
    turn_index_for_message,
)


def _service(settings: Settings) -> ChatService:
    from rag.assistant import Assistant

    return ChatService(Assistant(settings=settings), settings)


@pytest.fixture(scope="module")
def seeded_settings(seed_settings, tmp_path_factory) -> Settings:
    """The session's ingested seed store, answered by the extractive backend, feedback in our own dir."""
    feedback = tmp_path_factory.mktemp("chat-service") / "feedback.jsonl"
    return seed_settings.model_copy(update={"llm_backend": "extractive", "feedback_path": feedback})


@pytest.fixture(scope="module")
def service(seeded_settings) -> ChatService:
    return _service(seeded_settings)


def _run(service: ChatService, question: str, chat=None, turns=None, event=None, year=None):
    steps = list(service.respond(question, chat or [], turns or [], event, year))
    return steps, steps[-1]


def test_parse_filters():
    assert parse_filters(ALL_EVENTS, ANY_YEAR) == {"event": None, "year": None}
    assert parse_filters("KubeCon Europe 2022", "2022") == {"event": "KubeCon Europe 2022", "year": 2022}
    with pytest.raises(Exception, match="Year must be a number"):
        parse_filters(None, "last year")


def test_answer_streams_then_renders_sources(service):
    steps, (chat, turns, answer) = _run(
        service, "What were the three big takeaways from KubeCon Detroit 2022?"
    )
    assert len(steps) >= 3  # placeholder, streamed states, final
    assert [m["role"] for m in chat] == ["user", "assistant", "assistant", "assistant"]
    placeholder = steps[0][0][-1]  # a pending thought first: Gradio shows it with a spinner
    assert placeholder["metadata"] == {"title": "Searching the recaps…", "status": "pending"}
    thought, text, sources = chat[1:]
    assert thought["metadata"]["status"] == "done" and thought["metadata"]["title"].startswith("Answered from")
    assert "Checked every sentence" in thought["content"]
    assert "kqa-sources" not in text["content"] and "kqa-freshness" in text["content"]
    assert "Post from 2022-" in text["content"] and "index updated" in text["content"]
    assert "kqa-cited-post" in sources["content"] and sources["metadata"]["title"].startswith("Sources")
    assert "kqa-date" in sources["content"]
    assert answer["citations"] and answer["citations"][0]["quote"]
    assert turns == [{"question": answer["question"], "filters": {"event": None, "year": None}, "answer": answer,
                      "error": ""}]  # fmt: skip


def test_follow_up_gets_history_and_feedback_records_it(service, seeded_settings):
    _, (chat, turns, first) = _run(
        service, "What did people say about platform engineering at KubeCon Detroit?"
    )
    _, (chat, turns, second) = _run(service, "Why does it matter?", chat, turns)
    assert len(turns) == 2 and len(chat) == 8
    assert second["standalone_question"] != "Why does it matter?"  # condensed with the first turn
    assert history_messages(turns)[:2] == [
        {"role": "user", "content": first["question"]},
        {"role": "assistant", "content": first["text"]},
    ]
    note = service.record_feedback(turns, 1, "up", "good")
    assert "saved" in note
    line = json.loads(seeded_settings.feedback_file.read_text(encoding="utf-8").splitlines()[-1])
    assert line["question"] == "Why does it matter?" and line["history"][0]["content"] == first["question"]
    assert [turn_index_for_message(chat, i) for i in range(8)] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_year_filter_restricts_sources(service):
    _, (_, _, answer) = _run(
        service, "What did people say about platform engineering?", year="2022", event=ALL_EVENTS
    )
    assert answer["sources"]
    assert all(source["year"] == 2022 for source in answer["sources"])


def test_empty_index_is_a_chat_message_and_not_history(settings_factory, tmp_path):
    service = _service(settings_factory(tmp_path, llm_backend="extractive"))
    _, (chat, turns, answer) = _run(service, "What happened at KubeCon Detroit?")
    assert answer is None
    assert "kqa-error" in chat[-1]["content"] and "ingest" in chat[-1]["content"].lower()
    assert turns[0]["error"] and history_messages(turns) == []
    with pytest.raises(Exception, match="error, not an answer"):
        service.record_feedback(turns, 0, "up", "")


def test_llm_down_falls_back_and_says_so(seeded_settings, unused_port):
    settings = seeded_settings.model_copy(
        update={
            "llm_backend": "openai",
            "openai_base_url": f"http://127.0.0.1:{unused_port}/v1",
            "llm_timeout_s": 3.0,
            "llm_retries": 0,
        }
    )
    _, (chat, _, answer) = _run(_service(settings), "What were the takeaways from KubeCon Detroit 2022?")
    assert answer is not None and answer["fallback_reason"]
    assert "kqa-notice" in chat[-2]["content"] and "not available" in chat[-2]["content"]
    assert "not available" in chat[-3]["content"]  # the thought says so too


def test_question_outside_the_posts_abstains_with_closest_posts(service):
    _, (chat, _, answer) = _run(service, "What is the airspeed velocity of an unladen swallow?")
    assert answer["abstained"] and not answer["citations"]
    assert "Closest posts" in chat[-1]["content"] or "No posts matched" in chat[-1]["content"]
    assert "Cited posts" not in chat[-1]["content"]


class _BrokenAssistant:
    """Fails the way an unforeseen bug would: a plain exception whose text must not reach the page."""

    def stream(self, question, history=None, event=None, year=None):
        yield from ()
        raise RuntimeError("boom at /srv/secret/config.py line 3")


def test_unexpected_error_is_a_short_message_without_internals(settings_factory, tmp_path, caplog):
    service = ChatService(_BrokenAssistant(), settings_factory(tmp_path))
    _, (chat, turns, answer) = _run(service, "anything")
    message = chat[-1]["content"]
    assert answer is None and "kqa-error" in message and "RuntimeError" in message
    assert "/srv/secret" not in message and "Traceback" not in message
    assert "boom at /srv/secret" in caplog.text  # the details went to the server log
    assert turns[0]["question"] == "anything"


def test_a_conversation_is_bounded_and_a_long_comment_refused(seeded_settings):
    from rag.errors import KQAError

    service = _service(seeded_settings.model_copy(update={"web_max_turns": 2, "web_max_comment_chars": 50}))
    chat, turns = [], []
    for question in ("What did Datadog say about Cilium?", "And Detroit?", "And WebAssembly?"):
        chat, turns, _ = list(service.respond(question, chat, turns))[-1]
    assert "start a new conversation" in chat[-1]["content"] and turns[-1]["error"]
    assert len(chat) == 4 + 4 + 3 and [bool(t["answer"]) for t in turns] == [True, True, False]
    huge_page = [{"role": "user", "content": "x"}] * 1000  # a client sending back a huge chat is cut to size
    chat, _, _ = list(service.respond("What did Datadog say about Cilium?", huge_page, []))[-1]
    assert len(chat) == 2 + 4  # the last two turns it sent (one message each), then the new turn
    with pytest.raises(KQAError, match="the limit is 50"):
        service.record_feedback(turns, 0, "down", "x" * 51)


def test_a_turned_away_question_is_an_error_message(service):
    from rag.errors import KQAError

    def busy() -> None:
        raise KQAError("Too many requests (1/minute per client); wait a minute and try again.")

    chat, turns, answer = list(service.respond("What is SpinKube?", [], [], admit=busy))[-1]
    assert "Too many requests" in chat[-1]["content"] and answer is None and not turns[-1]["answer"]


def test_the_page_never_shows_the_servers_file_paths(service, seeded_settings):
    *_, (chat, _, answer) = _run(service, "What were the three big takeaways from KubeCon Detroit 2022?")
    root = str(seeded_settings.data_dir.resolve())
    shown = [c["url_or_path"] for c in answer["citations"]] + [s["url_or_path"] for s in answer["sources"]]
    assert shown and not any(root in location or location.startswith("/") for location in shown), shown
    assert root not in chat[-1]["content"] and root not in json.dumps(answer)


def test_closing_the_answer_closes_the_assistants_stream(service):
    """Stop on the page closes this generator; the Assistant's stream (and so the LLM) must close with it."""
    streams = []
    real_stream = service.assistant.stream

    def recording_stream(*args, **kwargs):
        streams.append(real_stream(*args, **kwargs))
        return streams[-1]

    service.assistant.stream = recording_stream
    try:
        answer = service.respond("What were the three big takeaways from KubeCon Detroit 2022?", [], [])
        next(answer), next(answer)  # the placeholder, then the first status from the Assistant
        assert streams and streams[0].gi_frame is not None  # suspended mid-answer
        answer.close()
        assert streams[0].gi_frame is None  # closed, not left for the garbage collector
    finally:
        del service.assistant.stream


def test_stop_retry_undo_and_edit_keep_one_turn_per_question(service):
    question = "What were the three big takeaways from KubeCon Detroit 2022?"
    *_, (chat, turns, _) = service.respond(question, [], [])
    # Stop mid-answer: the page holds the user message and a pending thought; the turn closes as stopped
    partial = service.respond("What did it say about platform engineering (and Backstage)?", chat, turns)
    next(partial)
    in_flight, turns_then, _ = next(partial)
    partial.close()
    chat, turns = service.stopped(in_flight, turns_then)
    assert len(turns) == 2 and turns[1]["error"].startswith("Stopped")
    assert turns[1]["question"] == "What did it say about platform engineering (and Backstage)?"
    assert chat[-2]["metadata"] == {"title": "Stopped", "status": "done"} and "Stopped" in chat[-1]["content"]
    assert service.stopped(chat, turns) == (chat, turns)  # nothing in flight: unchanged
    # Retry (Gradio gives the user message's index): back to before that turn, with its question as asked
    before, kept, asked = service.rewind(chat, turns, 4)
    assert (len(before), len(kept), asked) == (4, 1, turns[1]["question"])
    # Undo of the first answer (any of its messages): the whole conversation goes
    assert service.rewind(chat, turns, 2)[:2] == ([], [])
    from rag.errors import KQAError

    with pytest.raises(KQAError, match="no longer in this conversation"):
        service.rewind(chat[:4], turns[:1], 9)


def test_feedback_records_reasons_and_refuses_unknown_ones(service, seeded_settings):
    _, (_, turns, _) = _run(service, "What were the three big takeaways from KubeCon Detroit 2022?")
    service.record_feedback(turns, 0, "down", "the second takeaway is missing", ["incomplete", "wrong_citation"])
    line = json.loads(seeded_settings.feedback_file.read_text(encoding="utf-8").splitlines()[-1])
    assert line["reasons"] == ["incomplete", "wrong_citation"] and line["comment"] == "the second takeaway is missing"
    from rag.errors import KQAError

    with pytest.raises(KQAError, match="Unknown rating reason 'rude'"):
        service.record_feedback(turns, 0, "down", "", ["rude"])
