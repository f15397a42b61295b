"""``python app.py api`` as a real process: the OpenAI client, curl-style HTTP, SSE streams, keys, limits."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import openai
import pytest

from rag.types import Answer, StreamEvent
from tests.support.apiserver import API_KEY, OTHER_KEY, REPO, base_env

pytestmark = [pytest.mark.server, pytest.mark.timeout(600)]

DETROIT = "What were the three big takeaways from KubeCon Detroit 2022?"
VALENCIA = "What did Datadog highlight at KubeCon Valencia?"


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def ask(api, body: dict, key: str = API_KEY) -> httpx.Response:
    return httpx.post(f"{api.url}/v1/ask", json=body, headers=auth(key), timeout=120)


def sse_data(response: httpx.Response) -> list[str]:
    return [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]


def test_health_models_and_docs(api):
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}  # no key: probes need none
    assert httpx.get(f"{api.url}/docs").status_code == 200
    paths = httpx.get(f"{api.url}/openapi.json").json()["paths"]
    assert {"/v1/chat/completions", "/v1/ask", "/v1/ask/stream", "/v1/status", "/v1/models"} <= set(paths)
    models = openai.OpenAI(base_url=f"{api.url}/v1", api_key=API_KEY).models.list()
    assert [m.id for m in models.data] == ["kubecon-qa"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": API_KEY}])
def test_missing_or_wrong_key_is_401_with_a_clear_json_error(api, headers):
    for method, path in (("GET", "/v1/status"), ("POST", "/v1/ask"), ("POST", "/mcp"), ("GET", "/v1/models")):
        response = httpx.request(method, f"{api.url}{path}", headers=headers, json={"question": DETROIT})
        assert response.status_code == 401, (path, response.text)
        error = response.json()["error"]
        assert error["type"] == "authentication_error" and "KQA_API_KEYS" in error["message"]
        assert API_KEY not in response.text


def test_the_openai_client_gets_401_for_a_wrong_key(api):
    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key="sk-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="kubecon-qa", messages=[{"role": "user", "content": DETROIT}])


def test_openai_completion_is_the_verified_answer_with_citations(api):
    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=OTHER_KEY)  # any of the keys
    completion = client.chat.completions.create(model="kubecon-qa", messages=[{"role": "user", "content": DETROIT}])
    native = Answer.from_dict(ask(api, {"question": DETROIT}).json())
    text = completion.choices[0].message.content
    assert text == native.text and completion.model == "kubecon-qa"
    extra = completion.model_extra
    assert extra["abstained"] is False and extra["verified_text"] == text
    citations = extra["citations"]
    assert [c["number"] for c in citations] == [c.n for c in native.citations] and citations
    for c in citations:
        assert set(c) == {"number", "source_id", "title", "event", "url", "quote", "start", "end"}
        assert f"[{c['number']}]" in text
        assert c["source_id"] == "seed-kubecon-detroit-2022-three-takeaways"
        assert c["url"] == "seed-kubecon-detroit-2022-three-takeaways.md"  # a name, never the server's path
        post = (REPO / "data" / c["url"]).read_text(encoding="utf-8")
        assert c["quote"].split()[-1] in post and c["end"] > c["start"]


def test_earlier_messages_are_the_history(api):
    history = [{"role": "user", "content": DETROIT}]
    first = ask(api, {"question": DETROIT}).json()
    history.append({"role": "assistant", "content": first["text"]})
    follow_up = "What did it say about WebAssembly?"
    native = ask(api, {"question": follow_up, "history": history}).json()
    assert native["standalone_question"] != follow_up  # condensed with the history
    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=API_KEY)
    completion = client.chat.completions.create(
        model="kubecon-qa",
        messages=[{"role": "system", "content": "ignored"}, *history, {"role": "user", "content": follow_up}],
    )
    assert completion.choices[0].message.content == native["text"]


def test_openai_stream_sends_the_text_then_a_last_chunk_with_the_citations(api):
    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=API_KEY)
    chunks = list(client.chat.completions.create(
        model="kubecon-qa", messages=[{"role": "user", "content": VALENCIA}], stream=True,
    ))  # fmt: skip
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    native = ask(api, {"question": VALENCIA}).json()
    # the extractive backend streams no tokens, so the verified text is sent as the content
    assert streamed == last.model_extra["verified_text"] == native["text"]
    assert [c["quote"] for c in last.model_extra["citations"]] == [c["quote"] for c in native["citations"]]
    assert last.model_extra["abstained"] is False


def test_native_stream_is_stream_events_ending_with_the_answer(api):
    with httpx.stream("POST", f"{api.url}/v1/ask/stream", json={"question": DETROIT}, headers=auth(),
                      timeout=120) as response:  # fmt: skip
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = [StreamEvent.from_dict(json.loads(d)) for d in sse_data(response)]
    assert events[0].kind == "status" and events[-1].kind == "answer"
    assert all(e.kind in ("status", "token") for e in events[:-1])
    assert events[-1].answer.text == ask(api, {"question": DETROIT}).json()["text"]
    assert events[-1].answer.citations[0].url_or_path == "seed-kubecon-detroit-2022-three-takeaways.md"


def test_no_secret_or_server_path_in_any_answer(api):
    home = str(api.home)
    texts = [
        httpx.get(f"{api.url}/v1/status", headers=auth()).text,
        ask(api, {"question": DETROIT}).text,
        ask(api, {"question": "What is the best pizza recipe?"}).text,  # an abstention lists the closest posts
        httpx.post(f"{api.url}/v1/chat/completions", headers=auth(), timeout=120,
                   json={"model": "kubecon-qa", "messages": [{"role": "user", "content": VALENCIA}]}).text,
    ]  # fmt: skip
    status = json.loads(texts[0])
    assert status["posts"] == 2 and status["store"] == "embedded Chroma"
    for text in texts:
        assert home not in text and str(REPO) not in text and "/tmp/" not in text
        assert API_KEY not in text and OTHER_KEY not in text
    assert json.loads(texts[2])["abstained"] is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"question": "x" * 2001}, "The question is 2,001 characters long; the limit is 2,000."),
        ({"question": "   "}, "The question is empty: ask something about the KubeCon recaps."),
        ({"question": DETROIT, "history": [{"role": "robot", "content": "hi"}]}, "Each history message must be"),
        ({"question": DETROIT, "year": 1999}, "year must be an int such as 2022, not 1999."),
        ({"question": DETROIT, "history": [{"role": "user", "content": "q"}] * 101}, "the limit is 100"),
        ({"history": []}, "question: Field required"),
    ],
)
def test_bad_questions_are_400_with_the_library_text(api, body, message):
    response = ask(api, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]
    streamed = httpx.post(f"{api.url}/v1/ask/stream", json=body, headers=auth(), timeout=60)
    assert streamed.status_code == 400 and message in streamed.json()["error"]["message"]


def test_chat_completion_requests_that_cannot_be_answered(api):
    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError, match="kubecon-qa"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": DETROIT}])
    with pytest.raises(openai.BadRequestError, match="last message must be the user's question"):
        client.chat.completions.create(model="kubecon-qa", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="the limit is 2,000"):
        client.chat.completions.create(model="kubecon-qa", messages=[{"role": "user", "content": "q" * 2500}])


def test_a_body_over_the_cap_is_413(api):
    big = {"question": DETROIT, "history": [{"role": "user", "content": "x" * 600_000}] * 2}
    response = ask(api, big)
    assert response.status_code == 413 and "1,000,000 bytes" in response.json()["error"]["message"]


def test_empty_index_is_503_and_each_key_is_rate_limited(start_api_server, tmp_path):
    server = start_api_server(tmp_path / "empty-home", keys=(API_KEY, OTHER_KEY), KQA_API_RATE_LIMIT="3/minute")
    for _ in range(3):
        response = ask(server, {"question": DETROIT})
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "EmptyIndexError"
        assert "ingest" in response.json()["error"]["message"]
    limited = ask(server, {"question": DETROIT})
    assert limited.status_code == 429 and "3/minute" in limited.json()["error"]["message"]
    assert ask(server, {"question": DETROIT}, key=OTHER_KEY).status_code == 503  # the other key has its own
    assert str(server.home) not in response.text


def test_a_non_loopback_host_without_keys_is_refused(tmp_path):
    done = subprocess.run(
        [sys.executable, "app.py", "api", "--host", "0.0.0.0", "--port", "1"], cwd=REPO,
        env=base_env(tmp_path, tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Refusing to serve the API on 0.0.0.0 without API keys" in done.stderr and "KQA_API_KEYS" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_names_the_api_and_mcp_commands():
    top = subprocess.run([sys.executable, "app.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "app.py api" in top.stdout and "app.py mcp" in top.stdout
    api_help = subprocess.run([sys.executable, "app.py", "api", "--help"], cwd=REPO, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
    assert "--port" in api_help.stdout and "/v1/chat/completions" in api_help.stdout
