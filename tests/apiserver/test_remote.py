"""``rag.remote.RemoteAssistant`` against a real ``python app.py api``: the Assistant surface over HTTP, the
library's errors rebuilt on the client side, and the web chat's conversation logic answering through it."""

from __future__ import annotations

import pytest

from rag.assistant import Assistant, IndexStatus
from rag.errors import EmptyIndexError, InvalidQuestionError
from rag.remote import AnswerServiceAuthError, AnswerServiceError, RemoteAssistant, answer_service
from tests.support.apiserver import API_KEY
from tests.support.processes import free_port
from webchat.chat import ChatService

pytestmark = [pytest.mark.server, pytest.mark.timeout(600)]

DETROIT = "What were the three big takeaways from KubeCon Detroit 2022?"


@pytest.fixture
def remote(api):
    client = RemoteAssistant(api.url, API_KEY)
    yield client
    client.close()


def test_ask_stream_and_status_are_the_services(remote, api):
    answer = remote.ask(DETROIT)
    assert answer.citations and answer.citations[0].source_id == "seed-kubecon-detroit-2022-three-takeaways"
    events = list(remote.stream(DETROIT))
    assert events[0].kind == "status" and events[-1].kind == "answer"
    assert events[-1].answer.text == answer.text
    follow_up = remote.ask("And what about WebAssembly?", history=[
        {"role": "user", "content": DETROIT}, {"role": "assistant", "content": answer.text}])  # fmt: skip
    assert "WebAssembly" in follow_up.text
    scoped = remote.ask("What did Datadog highlight?", event="KubeCon EU 2022")
    assert {c.event for c in scoped.citations} == {"KubeCon + CloudNativeCon Europe 2022 (Valencia)"}
    status = remote.index_status()
    assert isinstance(status, IndexStatus) and (status.posts, status.years) == (2, [2022])


def test_the_services_errors_are_the_librarys(remote):
    with pytest.raises(InvalidQuestionError, match="the limit is 2,000"):
        remote.ask("q" * 2001)
    with pytest.raises(InvalidQuestionError, match="The question is empty"):
        list(remote.stream("   "))


def test_a_wrong_key_and_a_down_service_say_so(api):
    wrong = RemoteAssistant(api.url, "not-the-key-at-all")
    with pytest.raises(AnswerServiceAuthError, match="KQA_ANSWER_API_KEY") as caught:
        wrong.ask(DETROIT)
    assert "not-the-key-at-all" not in str(caught.value)
    with pytest.raises(AnswerServiceAuthError):
        list(wrong.stream(DETROIT))
    down = RemoteAssistant(f"http://user:secret-pw@127.0.0.1:{free_port()}", API_KEY, timeout=10)
    for call in (lambda: down.ask(DETROIT), lambda: list(down.stream(DETROIT)), down.index_status):
        with pytest.raises(AnswerServiceError, match="Cannot reach the answer service at http://127.0.0.1:") as e:
            call()
        assert "secret-pw" not in str(e.value) and "python app.py api" in str(e.value)


def test_an_empty_service_index_is_an_empty_index_error(start_api_server, tmp_path):
    server = start_api_server(tmp_path / "empty-home", keys=(API_KEY,))
    remote = RemoteAssistant(server.url, API_KEY)
    with pytest.raises(EmptyIndexError, match="ingest"):
        remote.ask(DETROIT)
    assert remote.index_status().chunks == 0


def test_answer_service_picks_remote_or_local(settings_factory, tmp_path, api):
    remote = answer_service(settings_factory(tmp_path, answer_url=api.url, answer_api_key=API_KEY))
    assert isinstance(remote, RemoteAssistant) and remote.ask(DETROIT).citations
    assert isinstance(answer_service(settings_factory(tmp_path)), Assistant)
    assert not (tmp_path / "chroma").exists()  # neither opened a store in this process


def test_the_web_chat_answers_through_the_service(remote, settings_factory, tmp_path):
    service = ChatService(remote, settings_factory(tmp_path, answer_url="http://unused"))
    *_, (chat, turns, answer) = service.respond(DETROIT, [], [])
    assert answer is not None and answer["citations"], chat[-1]
    assert answer["citations"][0]["url_or_path"] == "seed-kubecon-detroit-2022-three-takeaways.md"
    assert "kqa-cited-post" in chat[-1]["content"]
    *_, (_, _, follow_up) = service.respond("And WebAssembly?", chat, turns)
    assert "WebAssembly" in follow_up["text"]
    status, error = service.status()
    assert error == "" and status.posts == 2
