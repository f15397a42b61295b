"""``python app.py`` with ``KQA_ANSWER_URL``: the web chat answers through a real ``python app.py api`` and
loads neither the index nor the LLM (its own home gets no store; its data dir is empty)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.apiserver import API_KEY, answer_service

pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]

REPO_DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    with answer_service(tmp_path_factory.mktemp("web-answer-service"), REPO_DATA) as server:
        yield server


def test_the_web_chat_answers_through_the_answer_service(service, start_app, tmp_path):
    from gradio_client import Client

    empty_data = tmp_path / "data"
    empty_data.mkdir()
    app = start_app(tmp_path / "home", empty_data, {"KQA_ANSWER_URL": service.url, "KQA_ANSWER_API_KEY": API_KEY})
    client = Client(app.url, verbose=False)
    _, chat, answer = client.predict(
        "What were the three big takeaways from KubeCon Detroit 2022?", [], "All events", "Any year", api_name="/chat"
    )
    assert answer["citations"] and answer["citations"][0]["source_id"] == "seed-kubecon-detroit-2022-three-takeaways"
    assert "kqa-cited-post" in chat[-1]["content"][0]["text"]
    log = app.log_tail(30_000)
    assert f"answers from the answer service at {service.url}" in log
    assert "ingesting" not in log and API_KEY not in log
    assert not (tmp_path / "home" / "chroma").exists()  # no index opened in the web chat's process
    assert '"POST /v1/ask/stream HTTP/1.1" 200' in service.log()
